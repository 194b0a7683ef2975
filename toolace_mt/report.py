"""The reproduce report: built only from a reproduce run directory's saved files (no model, no data run).

`write_report(run_dir, results_dir)` writes ``report.md``, ``summary.json`` and PNG plots:

* the comparison table laid out like the paper's main table (paper §7.1: rows = benchmark metric, columns =
  Base / MAS / ToolACE-MT);
* generation cost per kept dialogue for both methods (LLM calls, prompt and completion tokens, wall time) and
  the verification pass rate (paper §7.3);
* dataset statistics (paper §7.4: user turns per dialogue, tool calls per user turn, ...);
* the ablation curve when the run has one (paper §7.2, Fig. 5);
* the recipe and the machine it ran on.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import yaml

from .runs import atomic_write_json, atomic_write_text

ARM_ORDER = ["base", "mas", "toolace_mt"]
ARM_LABELS = {"base": "Base", "mas": "MAS", "toolace_mt": "ToolACE-MT"}


def _load(p: Path) -> Optional[dict[str, Any]]:
    return json.loads(p.read_text()) if p.is_file() else None


def collect(run_dir: Path) -> dict[str, Any]:
    """Everything the report shows, as one JSON-able dict (this is `summary.json`)."""
    run_dir = Path(run_dir)
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    arms = [a for a in ARM_ORDER if a in recipe.get("arms", ARM_ORDER)]
    out: dict[str, Any] = {"name": recipe.get("name"), "arms": arms, "recipe": recipe,
                           "evaluation": {}, "generation": {}, "training": {}, "ablation": {}}
    for name in list(recipe.get("evaluate") or {}):
        for arm in arms:
            s = _load(run_dir / "evaluate" / arm / name / "summary.json")
            if s is not None:
                out["evaluation"].setdefault(name, {})[arm] = s
            elif (run_dir / "evaluate" / arm / name / "not_run.json").is_file():  # its data was missing
                out.setdefault("not_run", {})[name] = _load(run_dir / "evaluate" / arm / name / "not_run.json")
    # the paper's table order: BFCL, ACEBench, tau-bench; own task sets before official ones within a suite
    rank = {"bfcl": 0, "ace": 1, "tau": 2}
    first = lambda by_arm: next(iter(by_arm.values()))  # noqa: E731
    out["evaluation"] = dict(sorted(out["evaluation"].items(), key=lambda kv: (
        rank.get(first(kv[1]).get("suite"), 9), first(kv[1]).get("source") != "own", kv[0])))
    for arm in arms:
        t = _load(run_dir / "train" / arm / "summary.json")
        if t is not None:
            out["training"][arm] = t
    for name in ["toolace_mt", "mas", "base_data"]:
        g = run_dir / "generate" / name
        card, summ = _load(g / "card.json"), _load(g / "summary.json")
        if card is not None:
            out["generation"][name] = {"card": card, "summary": summ or {}}
    ab = run_dir / "ablation"
    if ab.is_dir():
        for sweep in sorted(ab.iterdir()):
            for ver in sorted(sweep.glob("verify=*")):
                for ev in sorted((ver / "evaluate").glob("*")):
                    s = _load(ev / "summary.json")
                    if s is not None:
                        out["ablation"].setdefault(ev.name, {})[f"{sweep.name}/{ver.name}"] = s
            card = _load(sweep / "generate" / "card.json")
            if card is not None:
                out["ablation"].setdefault("_cards", {})[sweep.name] = card["counts"]
    steps = _load(run_dir / "steps.json") or {}
    out["machine"] = steps.get("machine")
    out["wall_s"] = steps.get("wall_s")
    return out


def _pct(v: Any) -> str:
    return f"{100 * v:.1f}" if isinstance(v, (int, float)) else "–"


# ACEBench's "Multi-turn" and "Agent PA" columns of the paper's Table 1 (paper §7.1), from our categories
ACE_MULTI_TURN = ["normal_multi_turn_user_adjust", "normal_multi_turn_user_switch"]
ACE_AGENT = ["agent_multi_turn", "agent_multi_step"]


def _mean(xs: list[Any]) -> Optional[float]:
    xs = [x for x in xs if isinstance(x, (int, float))]
    return sum(xs) / len(xs) if xs else None


def comparison_rows(data: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(benchmark, metric, {arm: value}) in the paper's order: overall first, then categories, then pass^k."""
    rows = []
    for name, by_arm in data["evaluation"].items():
        any_s = next(iter(by_arm.values()))
        bench = f"{name} ({any_s.get('suite')}, {any_s.get('source')})"
        rows.append((bench, "overall", {a: s.get("overall") for a, s in by_arm.items()}))
        if isinstance(any_s.get("groups"), dict):
            # ACE-style: the paper reports groups and two headline metrics, not the 17 categories (those stay
            # in the evaluation's own report.md)
            for g in any_s["groups"]:
                rows.append((bench, g, {a: (s.get("groups") or {}).get(g) for a, s in by_arm.items()}))
            for metric, cats, key in (("multi-turn (paper)", ACE_MULTI_TURN, "categories"),
                                      ("agent PA (paper)", ACE_AGENT, "process_accuracy")):
                vals = {a: _mean([(s.get(key) or {}).get(c) for c in cats]) for a, s in by_arm.items()}
                if any(v is not None for v in vals.values()):
                    rows.append((bench, metric, vals))
        else:
            for cat in any_s.get("categories", {}):
                rows.append((bench, cat, {a: s.get("categories", {}).get(cat) for a, s in by_arm.items()}))
        for key in sorted(k for k in any_s if k.startswith("pass^")):
            rows.append((bench, key, {a: s.get(key) for a, s in by_arm.items()}))
        # graded diagnostics (not official), overall means, after the official rows
        diag = {a: (s.get("diagnostics") or {}).get("overall") or {} for a, s in by_arm.items()}
        for key in dict.fromkeys(k for d in diag.values() for k in d):
            rows.append((bench, f"diag: {key}", {a: d.get(key) for a, d in diag.items()}))
    return rows


def _ablation_sort_key(tag: str) -> tuple:
    """`refinement_steps=10/verify=on` sorts by the swept value as a number, then verification."""
    sweep, _, ver = tag.partition("/")
    val = sweep.split("=", 1)[-1]
    try:
        return (0, float(val), ver)
    except ValueError:
        return (1, val, ver)


def render_markdown(data: dict[str, Any], plots: list[str]) -> str:
    arms = data["arms"]
    L = [f"# Reproduce report: {data['name']}", ""]
    notes = (data["recipe"] or {}).get("notes")
    if notes:
        L += [notes.strip(), ""]
    L += ["## Comparison (accuracy, %)", "",
          "Laid out like the paper's main table (ToolACE-MT §4, Table 1): the same start model without "
          "multi-turn fine-tuning (Base), fine-tuned on MAS data, and fine-tuned on ToolACE-MT data. "
          "Rows `diag: <name>` are graded diagnostics (not official, not in any overall): partial credit from the "
          "same trajectories, so models that all score 0 on the official metrics can still be told apart.", "",
          "| benchmark | metric | " + " | ".join(ARM_LABELS[a] for a in arms) + " |",
          "|---|---|" + "---:|" * len(arms)]
    for bench, metric, vals in comparison_rows(data):
        cells = [_pct(vals.get(a)) for a in arms]
        if metric == "overall":
            cells = [f"**{c}**" for c in cells]
        L.append(f"| {bench} | {metric} | " + " | ".join(cells) + " |")
    L.append("")
    for name, nr in (data.get("not_run") or {}).items():
        L.append(f"- **{name}: not run** ({nr.get('recipe')}): {nr.get('reason')}")
    if data.get("not_run"):
        L.append("")
    gen = data["generation"]
    if gen:
        L += ["## Generation cost per kept dialogue", "",
              "| method | generated | kept | pass rate | LLM calls | prompt tokens | completion tokens | wall s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, g in gen.items():
            c, s = g["card"], g["summary"]
            per = c.get("cost", {}).get("per_kept_dialogue", {})
            kept = c["counts"]["kept"] or 0
            wall = (s.get("timing") or {}).get("total_s")
            wall_per = f"{wall / kept:.3f}" if (wall and kept) else "–"
            L.append(f"| {name} ({c.get('engine')}) | {c['counts']['generated']} | {kept} | "
                     f"{_pct(c['counts'].get('pass_rate'))}% | {per.get('llm_calls', '–')} | "
                     f"{per.get('prompt_tokens', '–')} | {per.get('completion_tokens', '–')} | {wall_per} |")
        L += ["", "## Dataset statistics (kept dialogues; mean)", "",
              "| method | messages | user turns | tool calls | tool calls / user turn | subtasks | injections |",
              "|---|---:|---:|---:|---:|---:|---:|"]
        for name, g in gen.items():
            k = g["card"].get("kept_stats", {})
            m = lambda key: (k.get(key) or {}).get("mean", 0) or 0  # noqa: E731
            per_turn = f"{m('tool_calls') / m('user_turns'):.2f}" if m("user_turns") else "–"
            inj = (g["card"].get("injections", {}).get("per_dialogue_kept") or {}).get("mean", "–")
            L.append(f"| {name} | {m('messages')} | {m('user_turns')} | {m('tool_calls')} | {per_turn} | "
                     f"{m('subtasks')} | {inj} |")
        L.append("")
        for name, g in gen.items():
            rr = g["card"].get("rejection_reasons") or {}
            if rr:
                L.append(f"- {name} rejection reasons: " + ", ".join(f"{k} {v}" for k, v in rr.items()))
        L.append("")
    if data["training"]:
        L += ["## Training", "", "| arm | steps | train tokens | loss first → last | token acc. first → last | tokens/s |",
              "|---|---:|---:|---|---|---:|"]
        f3 = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "–"  # noqa: E731
        for arm, t in data["training"].items():
            L.append(f"| {ARM_LABELS.get(arm, arm)} ({t.get('mode', '')}) | {t.get('steps', '–')} | "
                     f"{t.get('tokens_seen', '–')} | "
                     f"{f3(t.get('train_loss_first'))} → {f3(t.get('train_loss_last'))} | "
                     f"{f3(t.get('token_accuracy_first'))} → {f3(t.get('token_accuracy_last'))} | "
                     f"{t.get('tokens_per_s', '–')} |")
        L.append("")
    ab = {k: v for k, v in data["ablation"].items() if not k.startswith("_")}
    if ab:
        L += ["## Ablation", ""]
        cards = data["ablation"].get("_cards", {})
        for name, by_tag in ab.items():
            diag_keys = list(dict.fromkeys(k for s in by_tag.values()
                                           for k in ((s.get("diagnostics") or {}).get("overall") or {})))
            L += [f"### {name}", "", "| setting | kept / generated | overall | " + " | ".join(f"diag: {k}" for k in diag_keys)
                  + " |", "|---|---:|---:|" + "---:|" * len(diag_keys)]
            for tag in sorted(by_tag, key=_ablation_sort_key):
                s = by_tag[tag]
                c = cards.get(tag.split("/")[0], {})
                d = (s.get("diagnostics") or {}).get("overall") or {}
                L.append(f"| {tag} | {c.get('kept', '–')} / {c.get('generated', '–')} | {_pct(s.get('overall'))} | "
                         + " | ".join(_pct(d.get(k)) for k in diag_keys) + " |")
            L.append("")
    for p in plots:
        L.append(f"![{Path(p).stem}]({Path(p).name})")
    L += ["", "## Recipe and machine", "", "```yaml", yaml.safe_dump(data["recipe"], sort_keys=False).strip(), "```",
          "", "```json", json.dumps(data.get("machine"), indent=2), "```", ""]
    if data.get("wall_s") is not None:
        L.append(f"Total wall time of the reproduce run (this session's part): {data['wall_s']:.0f} s.")
    return "\n".join(L) + "\n"


def make_plots(data: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    arms = data["arms"]
    evals = list(data["evaluation"])
    if evals:
        fig, ax = plt.subplots(figsize=(1.6 + 1.8 * len(evals), 3.6))
        w = 0.8 / max(1, len(arms))
        for i, arm in enumerate(arms):
            ys = [100 * (data["evaluation"][e].get(arm, {}).get("overall") or 0) for e in evals]
            ax.bar([j + i * w for j in range(len(evals))], ys, w, label=ARM_LABELS[arm])
        ax.set_xticks([j + w * (len(arms) - 1) / 2 for j in range(len(evals))], evals, rotation=15)
        ax.set_ylabel("accuracy (%)")
        ax.set_title("Base vs MAS vs ToolACE-MT")
        ax.legend()
        fig.tight_layout()
        p = out / "comparison.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(str(p))
    ab = {k: v for k, v in data["ablation"].items() if not k.startswith("_")}
    if ab:
        fig, ax = plt.subplots(figsize=(6.0, 3.8))
        for name, by_tag in ab.items():
            # the official overall, plus the graded diagnostics (dotted) that move where the overall cannot
            series = [("overall", lambda s: s.get("overall"))]
            for k in ("call_rate", "name_recall", "exact_call_recall"):
                if any(((s.get("diagnostics") or {}).get("overall") or {}).get(k) is not None for s in by_tag.values()):
                    series.append((f"diag: {k}", lambda s, k=k: ((s.get("diagnostics") or {}).get("overall") or {}).get(k)))
            for ver in ("verify=on", "verify=off"):
                for label, get in series:
                    pts = []
                    for tag, s in by_tag.items():
                        sweep, v = tag.split("/")
                        if v == ver and get(s) is not None:
                            pts.append((float(sweep.split("=", 1)[1]), 100 * get(s)))
                    if pts:
                        pts.sort()
                        ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o",
                                ls=("-" if label == "overall" else ":") if ver == "verify=on" else "--",
                                label=f"{name} {label} {ver}")
        ax.set_xlabel("refinement steps")
        ax.set_ylabel("accuracy (%)")
        ax.set_title("Scaling refinement (paper Fig. 5)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = out / "ablation.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(str(p))
    return paths


def write_report(run_dir: Path, results_dir: Path) -> Path:
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    data = collect(Path(run_dir))
    plots = make_plots(data, results_dir)
    atomic_write_json(results_dir / "summary.json", {k: v for k, v in data.items() if k != "recipe"} |
                      {"recipe_name": data["name"]})
    atomic_write_text(results_dir / "report.md", render_markdown(data, plots))
    (results_dir / "recipe.yaml").write_text(yaml.safe_dump(data["recipe"], sort_keys=False))
    return results_dir / "report.md"
