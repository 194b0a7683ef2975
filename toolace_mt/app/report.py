"""The reproduce report: built only from a reproduce run directory's saved files (no model, no data run).

`write_report(run_dir, results_dir)` writes ``report.md``, ``summary.json`` and PNG plots:

* the comparison table laid out like the paper's main table (paper §7.1: rows = benchmark metric, columns =
  Base / MAS / ToolACE-MT);
* generation cost per kept dialogue for both methods (LLM calls, prompt and completion tokens, wall time) and
  the verification pass rate (paper §7.3);
* dataset statistics (paper §7.4: user turns per dialogue, tool calls per user turn, ...);
* the ablation curve when the run has one (paper §7.2, Fig. 5);
* for own-task BFCL-style evaluations: per arm the official score, the per-turn accuracy and the teacher-forced
  exact-call rate on the tasks' gold dialogues, each with a 95% paired-bootstrap interval over tasks, and the
  differences between arms with theirs (`toolace_mt.app.uncertainty`); the spread over training seeds when the run
  has ``train_seeds``; evaluations named in the recipe's ``smoke`` list are marked as smoke rows;
* the data-level comparison of the generation runs (`toolace_mt.app.datacompare`: pass rate, cost per generated
  and per kept dialogue, coverage of the benchmark behaviours, diversity);
* the recipe and the machine it ran on.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import yaml

from ..runs import atomic_write_json, atomic_write_text

ARM_ORDER = ["base", "mas", "toolace_mt"]
ARM_LABELS = {"base": "Base", "mas": "MAS", "toolace_mt": "ToolACE-MT"}


def _base_data_names(run_dir: Path) -> list[str]:
    """``base_data``, ``base_data_2``, ...: the base model's data runs (one per recipe in the reproduce recipe)."""
    names = [p.name for p in (run_dir / "generate").glob("base_data*") if p.is_dir()]
    return sorted(names, key=lambda n: (n != "base_data", int(n.rsplit("_", 1)[1]) if n != "base_data" else 0))


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
    # the suites' table order (each suite says where its rows go); own task sets before official ones
    first = lambda by_arm: next(iter(by_arm.values()))  # noqa: E731
    out["evaluation"] = dict(sorted(out["evaluation"].items(), key=lambda kv: (
        _suite(first(kv[1]).get("suite")).table_rank, first(kv[1]).get("source") != "own", kv[0])))
    for arm in arms:
        t = _load(run_dir / "train" / arm / "summary.json")
        if t is not None:
            out["training"][arm] = t
    for name in ["toolace_mt", "mas"] + _base_data_names(run_dir):
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
                out["ablation"].setdefault("_quality", {})[sweep.name] = _quality(card)
    for arm in arms:
        lc = _load(run_dir / "train" / arm / "learning_curve.json")
        if lc is not None:
            out.setdefault("learning_curves", {})[arm] = lc
    _collect_tasks(run_dir, out, arms)
    from .datacompare import compare_runs

    out["data_comparison"] = compare_runs({n: run_dir / "generate" / n
                                           for n in ["toolace_mt", "mas"] + _base_data_names(run_dir)})
    if ab.is_dir():
        out["ablation_data"] = compare_runs({sweep.name: sweep / "generate" for sweep in sorted(ab.iterdir())})
    out["paper_table"] = paper_table(out)
    steps = _load(run_dir / "steps.json") or {}
    out["machine"] = steps.get("machine")
    out["wall_s"] = steps.get("wall_s")
    out["invocations"] = [r.get("wall_s") for r in steps.get("invocations") or []]
    out["phases"] = ((steps.get("invocations") or [{}])[-1]).get("phases") or []  # the last invocation's
    # every invocation's: a resumed run that only re-scored must not hide where the first one spent its time
    out["invocation_phases"] = [r.get("phases") or [] for r in steps.get("invocations") or []]
    return out


def _quality(card: dict[str, Any]) -> dict[str, Any]:
    """The data-quality figures that explain an ablation setting (from its dataset card)."""
    r = card.get("refinement") or {}
    return {"pass_rate": (card.get("counts") or {}).get("pass_rate"),
            "rejections": dict(list((card.get("rejection_reasons") or {}).items())[:3]),
            "injections": (card.get("injections_realised") or {}).get("all"),
            "judge_acceptance": r.get("judge_acceptance"), "turns_changed": r.get("turns_changed")}


def _per_task(eval_dir: Path) -> dict[str, dict[str, Any]]:
    """task_id -> {category, score, turn_accuracy, tf_calls, tf_exact} for a finished evaluation run."""
    from ..runs import read_jsonl

    rows: dict[str, dict[str, Any]] = {}
    if (eval_dir / "results.jsonl").is_file():
        for r in read_jsonl(eval_dir / "results.jsonl"):
            if r.get("trial", 0) != 0:
                continue
            rows[r["task_id"]] = {"category": r.get("category", ""), "score": r.get("score"),
                                  "turn_accuracy": (r.get("diagnostics") or {}).get("turn_accuracy")}
    tf = _load(eval_dir / "teacher_forced.json")
    for t in (tf or {}).get("per_task", []):
        if t["task_id"] in rows:
            rows[t["task_id"]].update(tf_calls=t["calls"] - t.get("skipped", 0), tf_exact=t["exact"])
            if "exact_any_order" in t:  # scored before 2026-12-07 evening: not there
                rows[t["task_id"]]["tf_any_order"] = t["exact_any_order"]
    return rows


def uncertainty(per_arm_tasks: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """95% paired-bootstrap intervals over the tasks every arm was evaluated on (see toolace_mt.app.uncertainty)."""
    from .uncertainty import paired_bootstrap

    arms = list(per_arm_tasks)
    ids = sorted(set.intersection(*(set(v) for v in per_arm_tasks.values()))) if arms else []
    if not ids:
        return {}
    first = per_arm_tasks[arms[0]]
    cats = [first[i]["category"] for i in ids]
    official = {a: [per_arm_tasks[a][i]["score"] for i in ids] for a in arms}
    turn = {a: [per_arm_tasks[a][i]["turn_accuracy"] for i in ids] for a in arms}
    res = {"official": exact_tests(paired_bootstrap(official, cats), official),
           "turn_accuracy": exact_tests(paired_bootstrap(turn), turn)}
    res["official"]["per_category"] = per_category_wilson(official, cats)
    res["official"]["per_category_diffs"] = per_category_diffs(official, cats)
    if all("tf_calls" in per_arm_tasks[a][i] for a in arms for i in ids):
        tf = {a: [per_arm_tasks[a][i]["tf_exact"] / per_arm_tasks[a][i]["tf_calls"]
                  if per_arm_tasks[a][i]["tf_calls"] else None for i in ids] for a in arms}
        weights = {a: [per_arm_tasks[a][i]["tf_calls"] for i in ids] for a in arms}
        res["teacher_forced_exact_calls"] = exact_tests(paired_bootstrap(tf, weights=weights), tf)
        if all("tf_any_order" in per_arm_tasks[a][i] for a in arms for i in ids):
            anyo = {a: [per_arm_tasks[a][i]["tf_any_order"] / per_arm_tasks[a][i]["tf_calls"]
                        if per_arm_tasks[a][i]["tf_calls"] else None for i in ids] for a in arms}
            res["teacher_forced_exact_any_order"] = exact_tests(paired_bootstrap(anyo, weights=weights), anyo)
    return res


def per_category_diffs(per_arm: dict[str, list[Optional[float]]], cats: list[str]) -> dict[str, Any]:
    """category -> pair -> the paired difference of the official verdicts on that category's tasks alone: bootstrap
    interval, exact McNemar p, ``resolved`` where both agree, and the tasks of that category 80% power would need.
    The methods differ by construction on some categories (miss_param: clarification; miss_func: tool updates),
    so a difference there can be real while the overall (a mean of four categories) hides it; with four
    categories tested per pair, a single p just under 0.05 is weak evidence (no multiplicity correction here)."""
    from .uncertainty import paired_bootstrap

    out: dict[str, Any] = {}
    for c in dict.fromkeys(cats):
        sub = {a: [v for v, cc in zip(vs, cats) if cc == c] for a, vs in per_arm.items()}
        out[c] = exact_tests(paired_bootstrap(sub), sub)["diffs"]
    return out


def per_category_wilson(per_arm: dict[str, list[Optional[float]]], cats: list[str]) -> dict[str, Any]:
    """category -> arm -> {k, n, wilson95}: the official verdicts of each category with a Wilson 95% interval
    (the categories where the methods differ by construction, miss_param and miss_func, get their own n)."""
    from ..evaluation.stats import wilson

    out: dict[str, Any] = {}
    for c in dict.fromkeys(cats):
        out[c] = {}
        for a, vs in per_arm.items():
            xs = [v for v, cc in zip(vs, cats) if cc == c and v is not None]
            k = int(sum(1 for v in xs if v == 1))
            lo, hi = wilson(k, len(xs)) if xs else (None, None)
            out[c][a] = {"k": k, "n": len(xs), "wilson95": [lo, hi]}
    return out


def exact_tests(boot: dict[str, Any], per_arm: dict[str, list[Optional[float]]]) -> dict[str, Any]:
    """Adds to every pair of `boot` (a `paired_bootstrap` result, difference b - a) an exact test on the same
    tasks: McNemar on per-task verdicts when every value is 0 or 1 (the official score), else the sign test on
    per-task values (ties dropped); both are the two-sided binomial test of the discordant counts.

    A percentile bootstrap on a handful of discordant tasks can exclude 0 where the exact test does not (4
    successes against 0: interval [1, 8] points, McNemar p = 0.125), so a difference is called resolved only
    where both agree (``resolved``)."""
    from ..evaluation.stats import mcnemar_exact, mcnemar_tasks_needed

    binary = all(v in (0, 1, 0.0, 1.0) for vs in per_arm.values() for v in vs if v is not None)
    for pair, d in boot.get("diffs", {}).items():
        b, a = pair.split("-")
        better = worse = 0
        for x, y in zip(per_arm[a], per_arm[b]):
            if x is None or y is None or x == y:
                continue
            better, worse = better + (y > x), worse + (y < x)
        d.update(exact_test="exact McNemar" if binary else "exact sign test", exact_p=mcnemar_exact(worse, better),
                 discordant={"b_better": better, "b_worse": worse})
        d["resolved"] = bool(d.get("excludes_0")) and d["exact_p"] < 0.05
        n = sum(1 for x, y in zip(per_arm[a], per_arm[b]) if x is not None and y is not None)
        if binary and n:  # what it would take: tasks for 80% power at the rates this run observed
            need = mcnemar_tasks_needed((better + worse) / n, (better - worse) / n)
            d["tasks_for_power80"] = None if math.isinf(need) else int(need)  # None: no difference observed
    return boot


def _collect_tasks(run_dir: Path, out: dict[str, Any], arms: list[str]) -> None:
    """Per-task results -> intervals (main run) and the seed spread (``seeds/seed=S``)."""
    out["uncertainty"], out["teacher_forced"], out["seeds"] = {}, {}, {}
    for name, by_arm in out["evaluation"].items():
        if next(iter(by_arm.values())).get("suite") != "bfcl":
            continue
        per = {a: _per_task(run_dir / "evaluate" / a / name) for a in by_arm}
        if all(per.values()):
            out["uncertainty"][name] = uncertainty(per)
        for a in by_arm:
            tf = _load(run_dir / "evaluate" / a / name / "teacher_forced.json")
            if tf is not None:
                out["teacher_forced"].setdefault(name, {})[a] = {k: v for k, v in tf.items() if k != "per_task"}
    seeds_dir = run_dir / "seeds"
    if seeds_dir.is_dir():
        for sd in sorted(seeds_dir.glob("seed=*")):
            for ev in sorted(sd.glob("evaluate/*/*")):
                s = _load(ev / "summary.json")
                if s is None:
                    continue
                tf = _load(ev / "teacher_forced.json") or {}
                rec = {"overall": s.get("overall"),
                       "turn_accuracy": ((s.get("diagnostics") or {}).get("overall") or {}).get("turn_accuracy"),
                       "teacher_forced_exact_calls": tf.get("exact_call_rate")}
                out["seeds"].setdefault(ev.name, {}).setdefault(ev.parent.name, {})[sd.name.split("=", 1)[1]] = rec
        # the main run is one more seed (its train recipe's): the spread covers all the seeds trained
        for name, by_arm in out["seeds"].items():
            for arm, by_seed in by_arm.items():
                s = (out["evaluation"].get(name) or {}).get(arm)
                rc = run_dir / "train" / arm / "recipe.yaml"
                if s is None or not rc.is_file():
                    continue
                seed = str((yaml.safe_load(rc.read_text()) or {}).get("seed", 0))
                tf = _load(run_dir / "evaluate" / arm / name / "teacher_forced.json") or {}
                by_seed.setdefault(seed, {
                    "overall": s.get("overall"),
                    "turn_accuracy": ((s.get("diagnostics") or {}).get("overall") or {}).get("turn_accuracy"),
                    "teacher_forced_exact_calls": tf.get("exact_call_rate")})


def _pct(v: Any) -> str:
    return f"{100 * v:.1f}" if isinstance(v, (int, float)) else "–"


def _suite(name: Optional[str]):
    """The suite that wrote a summary (its report hook); the generic rows for a suite this install lacks."""
    from ..evaluation.suites import Suite, get_suite

    try:
        return get_suite(name or "")
    except ValueError:
        return Suite()


def comparison_rows(data: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(benchmark, metric, {arm: value}) in the paper's order: overall first, then categories, then pass^k."""
    rows = []
    smoke = set((data.get("recipe") or {}).get("smoke") or [])
    for name, by_arm in data["evaluation"].items():
        any_s = next(iter(by_arm.values()))
        bench = f"{name} ({any_s.get('suite')}, {any_s.get('source')})" + (" [smoke]" if name in smoke else "")
        rows.append((bench, *_suite(any_s.get("suite")).overall_row(by_arm)))
        rows += [(bench, metric, vals) for metric, vals in _suite(any_s.get("suite")).report_rows(by_arm)]
        # graded diagnostics (not official), overall means, after the official rows
        diag = {a: (s.get("diagnostics") or {}).get("overall") or {} for a, s in by_arm.items()}
        for key in dict.fromkeys(k for d in diag.values() for k in d):
            rows.append((bench, f"diag: {key}", {a: d.get(key) for a, d in diag.items()}))
    return rows


def paper_table(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The tau-bench and ACEBench cells laid out as the paper's table (the suites' `paper_rows`): per
    evaluation and metric, each arm's value with its n and 95% interval, and the data version."""
    out = []
    for name, by_arm in data["evaluation"].items():
        any_s = next(iter(by_arm.values()))
        suite = _suite(any_s.get("suite"))
        per_arm = {a: {r["metric"]: r for r in suite.paper_rows(s)} for a, s in by_arm.items()}
        metrics = list(dict.fromkeys(m for rows in per_arm.values() for m in rows))
        versions = sorted({str(s.get("task_set_version")) for s in by_arm.values()})
        for m in metrics:
            out.append({"evaluation": name, "suite": any_s.get("suite"), "source": any_s.get("source"),
                        "metric": m, "data_version": ", ".join(versions),
                        "arms": {a: rows.get(m) for a, rows in per_arm.items()}})
    return out


def _paper_cell(r: Optional[dict[str, Any]]) -> str:
    if not r or r.get("value") is None:
        return "–"
    ci = r.get("ci95")
    if r.get("count"):  # a count (turns per task), not a rate
        return f"{r['value']:.1f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "") + f" (n={r.get('n')})"
    return f"{_pct(r['value'])}" + (f" [{_pct(ci[0])}, {_pct(ci[1])}]" if ci else "") + f" (n={r.get('n')})"


def _paper_table_markdown(data: dict[str, Any], arms: list[str]) -> list[str]:
    rows = data.get("paper_table") or []
    if not rows:
        return []
    L = ["## tau-bench and ACEBench as in the paper's table", "",
         "Each cell: value [95% interval] (n). Rates in %: Wilson intervals over the units scored (tau: each "
         "(task, trial) episode's pass^1; ACE multi-turn: whole conversations, official-compatible verdicts); a "
         "mean of two categories' rates (tau average, ACE multi-turn, ACE agent end-to-end) gets the interval of "
         "that mean (Jeffreys draws per category, seeded). Agent PA is a mean of per-item fractions: percentile "
         "bootstrap over items. Efficiency = assistant turns per task (lower is fewer turns): mean with a 95% "
         "t-interval over episodes.", "",
         "| benchmark | metric | data version | " + " | ".join(ARM_LABELS[a] for a in arms) + " |",
         "|---|---|---|" + "---:|" * len(arms)]
    for r in rows:
        L.append(f"| {r['evaluation']} ({r['suite']}, {r['source']}) | {r['metric']} | {r['data_version']} | "
                 + " | ".join(_paper_cell(r["arms"].get(a)) for a in arms) + " |")
    return L + [""]


def _overall_ci(summary: dict[str, Any]) -> str:
    """The official overall with a Wilson 95% interval pooled over the categories' tasks (equal-size categories:
    the pooled rate is the overall)."""
    from ..evaluation.stats import wilson

    cats = (summary.get("intervals") or {}).values()
    k, n = sum(c.get("correct", 0) for c in cats), sum(c.get("n", 0) for c in cats)
    if not n:
        return _pct(summary.get("overall"))
    lo, hi = wilson(k, n)
    return f"{_pct(summary.get('overall'))} [{_pct(lo)}, {_pct(hi)}]"


def _ablation_sort_key(tag: str) -> tuple:
    """`refinement_steps=10/verify=on` sorts by the swept value as a number, then verification."""
    sweep, _, ver = tag.partition("/")
    val = sweep.split("=", 1)[-1]
    try:
        return (0, float(val), ver)
    except ValueError:
        return (1, val, ver)


def _ci_cell(r: Optional[dict[str, Any]]) -> str:
    if not r or r.get("value") is None:
        return "–"
    lo, hi = r.get("ci95") or [None, None]
    return f"{100 * r['value']:.1f} [{_pct(lo)}, {_pct(hi)}]"


METRIC_LABELS = {"official": "official overall", "turn_accuracy": "per-turn accuracy (diag)",
                 "teacher_forced_exact_calls": "teacher-forced exact calls (diag)",
                 "teacher_forced_exact_any_order": "teacher-forced exact calls, any call order (diag)"}


def seeds_of(by_arm: dict[str, dict[str, Any]]) -> list[str]:
    return sorted({s for v in by_arm.values() for s in v}, key=lambda x: (not x.isdigit(), int(x) if x.isdigit() else 0, x))


def _per_category_diff_markdown(by_cat: dict[str, Any]) -> list[str]:
    """One row per pair, one column per category: difference [95% bootstrap] p (exact McNemar), `*` where both
    agree, and for an unresolved one the category's task count 80% power would need."""
    if not by_cat:
        return []
    cats = list(by_cat)
    pairs = list(dict.fromkeys(p for d in by_cat.values() for p in d))
    L = ["Official verdicts per category (the same tasks, that category only; n per category in the rows above): "
         "difference [95% paired bootstrap] p (exact McNemar); `*` where both agree; (~N: the category's tasks an "
         "unresolved difference would need for 80% power at the observed discordant rates). Four categories per "
         "pair: one p just under 0.05 is weak evidence (no multiplicity correction).", "",
         "| difference | " + " | ".join(f"official {c}" for c in cats) + " |", "|---|" + "---:|" * len(cats)]
    for pair in pairs:
        b, a = pair.split("-")
        cells = []
        for c in cats:
            d = by_cat[c].get(pair)
            if not d:
                cells.append("–")
                continue
            cell = _ci_cell(d) + (f" p={d['exact_p']:.3g}" if d.get("exact_p") is not None else "")
            if d.get("resolved"):
                cell += " *"
            elif "tasks_for_power80" in d:
                n = d["tasks_for_power80"]
                cell += " (no difference observed)" if n is None else f" (~{int(n):,})"
            cells.append(cell)
        L.append(f"| {ARM_LABELS.get(b, b)} − {ARM_LABELS.get(a, a)} | " + " | ".join(cells) + " |")
    return L + [""]


def _uncertainty_markdown(data: dict[str, Any], arms: list[str]) -> list[str]:
    L: list[str] = []
    for name, unc in (data.get("uncertainty") or {}).items():
        if not unc:
            continue
        n = next(iter(unc.values()))["n_tasks"]
        L += [f"## {name}: comparison with 95% confidence intervals", "",
              f"Paired bootstrap over the {n} tasks every arm was evaluated on ({next(iter(unc.values()))['n_boot']} "
              "resamples; the official overall resampled within each category). Teacher-forced exact calls: the "
              "share of the gold dialogues' call messages the model reproduces token for token given the gold "
              "history (rendered as in training); *any call order*: the same, where a message's calls may come in "
              "another order than the gold's (the official multi-turn checker does not enforce the order of a "
              "turn's calls).", "",
              "| metric | " + " | ".join(ARM_LABELS[a] for a in arms) + " |", "|---|" + "---:|" * len(arms)]
        for key, r in unc.items():
            L.append(f"| {METRIC_LABELS.get(key, key)} | " + " | ".join(_ci_cell(r["arms"].get(a)) for a in arms) + " |")
        for cat, by_arm in ((unc.get("official") or {}).get("per_category") or {}).items():
            cells = []
            for a in arms:
                c = by_arm.get(a) or {}
                lo, hi = c.get("wilson95") or (None, None)
                cells.append(f"{c['k']}/{c['n']} [{100 * lo:.1f}, {100 * hi:.1f}]" if c.get("n") else "–")
            L.append(f"| official {cat} (k/n, Wilson 95%) | " + " | ".join(cells) + " |")
        L += ["", "| difference | " + " | ".join(METRIC_LABELS.get(k, k) for k in unc) + " |",
              "|---|" + "---:|" * len(unc)]
        pairs = list(next(iter(unc.values()))["diffs"])
        for pair in pairs:
            b, a = pair.split("-")
            cells = []
            for r in unc.values():
                d = r["diffs"].get(pair)
                p_exact = f" p={d['exact_p']:.3g}" if d and d.get("exact_p") is not None else ""
                cells.append(_ci_cell(d) + p_exact + (" *" if d and d.get("resolved") else ""))
            L.append(f"| {ARM_LABELS.get(b, b)} − {ARM_LABELS.get(a, a)} | " + " | ".join(cells) + " |")
        L += ["", "p: exact two-sided test on the same tasks (McNemar on the per-task official verdicts; the sign "
              "test on per-task values for the diagnostics). `*`: resolved, i.e. the 95% bootstrap interval of the "
              "difference excludes 0 AND p < 0.05; an interval that excludes 0 with p ≥ 0.05 (a few discordant "
              "tasks) is not called a difference.", ""]
        L += _per_category_diff_markdown((unc.get("official") or {}).get("per_category_diffs") or {})
        need = [(pair, d["tasks_for_power80"]) for pair, d in (unc.get("official") or {}).get("diffs", {}).items()
                if not d.get("resolved") and "tasks_for_power80" in d]
        if need:
            fmt = lambda n: "no difference observed" if n is None else f"~{int(n):,} tasks"  # noqa: E731
            L += ["Tasks an official difference would need (exact McNemar at 5%, power 0.8, normal approximation "
                  "at this run's discordant rates; an order of magnitude): " + "; ".join(
                      f"{ARM_LABELS.get(p.split('-')[0], p)} − {ARM_LABELS.get(p.split('-')[1], p)}: {fmt(n)}"
                      for p, n in need) + ".", ""]
    for name, by_arm in (data.get("seeds") or {}).items():
        L += [f"## {name}: spread over training seeds", "",
              "Each fine-tuned arm trained again per seed on the same data from the same base model (the main "
              "run's seed included).", "",
              "| arm | metric | " + " | ".join(f"seed {s}" for s in seeds_of(by_arm)) +
              " | mean | sd | min–max |", "|---|---|" + "---:|" * (len(seeds_of(by_arm)) + 3)]
        for arm, by_seed in by_arm.items():
            for key in ("overall", "turn_accuracy", "teacher_forced_exact_calls"):
                vals = [(by_seed.get(s) or {}).get(key) for s in seeds_of(by_arm)]
                xs = [v for v in vals if isinstance(v, (int, float))]
                if not xs:
                    continue
                m = sum(xs) / len(xs)
                sd = (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 if len(xs) > 1 else 0.0
                L.append(f"| {ARM_LABELS.get(arm, arm)} | {METRIC_LABELS.get(key, key)} | "
                         + " | ".join(_pct(v) for v in vals) + f" | {_pct(m)} | {_pct(sd)} | {_pct(min(xs))}–{_pct(max(xs))} |")
        L.append("")
    return L


def _first_miss_markdown(tf: dict[str, dict[str, Any]]) -> list[str]:
    """Per evaluation and arm: where each teacher-forced call message that is not exact first goes wrong."""
    from ..evaluation.bfcl.teacher_forced import MISS_PARTS

    L: list[str] = []
    for name, by_arm in tf.items():
        if not any((t or {}).get("first_miss") for t in by_arm.values()):
            continue  # scored before first_miss existed
        L += [f"## {name}: where the teacher-forced calls first go wrong (diagnostic)", "",
              "Every gold call message the model does not reproduce exactly, by the part of the call its first "
              "wrong token falls in: *call start* (answers in text or opens no call), *call frame* (the call's fixed "
              "`{\"name\": \"` before the tool's name), *name* (a wrong tool), *call order* (the name of another "
              "call of the same message: it starts the calls in another order; *exact, any order* counts the "
              "messages then right to the end), *arg key* / *arg value* (an argument's key or value: a value is usually a copy from the user's text), *structure* (JSON punctuation), "
              "*call count* (one call too few or too many).", "",
              "*exact, any order*: exact with the message's calls in the gold order or in another.", "",
              "| arm | exact | exact, any order | " + " | ".join(p.replace("_", " ") for p in MISS_PARTS) + " |",
              "|---|---:|---:|" + "---:|" * len(MISS_PARTS)]
        for arm, t in by_arm.items():
            fm = t.get("first_miss") or {}
            anyo = t.get("exact_any_order")
            L.append(f"| {ARM_LABELS.get(arm, arm)} | {t.get('exact')}/{t.get('calls')} | "
                     f"{'–' if anyo is None else anyo} | " + " | ".join(str(fm.get(p, 0)) for p in MISS_PARTS) + " |")
        L.append("")
        chain = {a: t for a, t in by_arm.items() if t.get("chain_dependent")}
        if chain:
            opened = lambda t: ("" if t.get("chain_dependent_opened") is None else  # noqa: E731
                                f", a call opened at {t['chain_dependent_opened']}/{t['chain_dependent'][1]}")
            L += ["Turns with a dependent second step (tasks built with `chain_prob`; the second call needs the "
                  "first one's result): exact first steps, exact dependent steps, and the dependent steps where the "
                  "model opens a call at all instead of ending the turn in text, of those scored: " + "; ".join(
                      f"{ARM_LABELS.get(a, a)} {t['chain_first'][0]}/{t['chain_first'][1]} and "
                      f"{t['chain_dependent'][0]}/{t['chain_dependent'][1]}{opened(t)}" for a, t in chain.items())
                  + ".", ""]
    return L


def _learning_curve_markdown(curves: dict[str, dict[str, Any]]) -> list[str]:
    """Teacher-forced exact calls and call-token accuracy at every saved checkpoint (a diagnostic, not official):
    how far each training got, which the official score hides while it is 0."""
    L = ["## Learning curves (teacher-forced on the BFCL-style tasks' gold dialogues; diagnostic)", "",
         "Each row is a saved checkpoint of the run, scored on the gold dialogues of the tasks the arms were "
         "evaluated on: *exact calls* = call messages whose every token the model predicts given the gold "
         "history; *call tokens* = share of those messages' tokens predicted right. The fine-tuned arms start "
         "from the base's last point; *any order*: exact calls where a message's calls may come in another order.", "",
         "| model | step | exact calls | any order | call tokens |", "|---|---:|---:|---:|---:|"]
    for arm, lc in curves.items():
        for p in lc.get("points", []):
            anyo = p.get("exact_any_order")
            L.append(f"| {ARM_LABELS.get(arm, arm)} | {p['step']} | {p['exact']}/{p['calls']} "
                     f"({_pct(p.get('exact_call_rate'))}%) | {'–' if anyo is None else anyo} | "
                     f"{_pct(p.get('token_accuracy'))}% |")
    return L + [""]


def _phase_steps(p: dict[str, Any]) -> str:
    """' (6 steps)', or ' (6 steps, 1 run)' when some of a phase's steps were reused from an earlier invocation."""
    if not p.get("steps"):
        return ""
    ran = p.get("ran")
    return f" ({p['steps']} steps" + (f", {ran} run" if ran is not None and ran < p["steps"] else "") + ")"


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
          "same trajectories, so models that all score 0 on the official metrics can still be told apart. "
          "Rows marked `[smoke]` come from suites whose prompts and formats appear in no training row of this "
          "run: they show that the suite runs, not a difference between the arms.", "",
          "| benchmark | metric | " + " | ".join(ARM_LABELS[a] for a in arms) + " |",
          "|---|---|" + "---:|" * len(arms)]
    for bench, metric, vals in comparison_rows(data):
        # a suite row may carry {"value", "ci95"} (BFCL's paper columns): shown with its interval
        cells = [_ci_cell(v) if isinstance(v, dict) else _pct(v) for v in (vals.get(a) for a in arms)]
        if metric == "overall":
            cells = [f"**{c}**" for c in cells]
        L.append(f"| {bench} | {metric} | " + " | ".join(cells) + " |")
    L.append("")
    L += _paper_table_markdown(data, arms)
    for name, nr in (data.get("not_run") or {}).items():
        L.append(f"- **{name}: not run** ({nr.get('recipe')}): {nr.get('reason')}")
    if data.get("not_run"):
        L.append("")
    L += _uncertainty_markdown(data, arms)
    dc = data.get("data_comparison") or {}
    if dc:
        from .datacompare import markdown as dc_markdown

        L += ["## Data-level comparison (no training)", "",
              "Deterministic figures of the generated data itself (`toolace_mt.app.datacompare`): verifier pass rate, "
              "cost per generated and per kept dialogue, coverage of the behaviours the BFCL-style categories "
              "test, and diversity.", ""] + dc_markdown(dc) + [""]
    gen = data["generation"]
    if gen:
        L += ["## Generation cost per generated | per kept dialogue", "",
              "| method | generated | kept | pass rate | LLM calls | prompt tokens | completion tokens | wall s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, g in gen.items():
            c, s = g["card"], g["summary"]
            per = c.get("cost", {}).get("per_kept_dialogue", {})
            pg = c.get("cost", {}).get("per_generated_dialogue") or {}
            per = {k: f"{pg.get(k, '–')} \\| {per.get(k, '–')}" for k in ("llm_calls", "prompt_tokens", "completion_tokens")} \
                if c.get("cost", {}).get("llm_calls") else per
            kept = c["counts"]["kept"] or 0
            wall = (s.get("timing") or {}).get("total_s")
            wall_per = f"{wall / kept:.3f}" if (wall and kept) else "–"
            L.append(f"| {name} ({c.get('engine')}) | {c['counts']['generated']} | {kept} | "
                     f"{_pct(c['counts'].get('pass_rate'))}%{'*' if c.get('simulated') else ''} | {per.get('llm_calls', '–')} | "
                     f"{per.get('prompt_tokens', '–')} | {per.get('completion_tokens', '–')} | {wall_per} |")
        if any(g["card"].get("simulated") for g in gen.values()):
            L += ["", "\\* simulated backend: offline stand-ins answer each prompt from what it shows; this pass rate "
                      "is a mechanism check of the pipeline, not evidence about the method."]
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
        L += ["## Training", "", "Global batch = per device x gradient accumulation x devices (the paper's: 64).", "",
              "| arm | steps | global batch | train tokens | loss first → last | token acc. first → last | tokens/s "
              "| s/step | rows truncated |", "|---|---:|---|---:|---|---|---:|---:|---:|"]
        f3 = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "–"  # noqa: E731
        for arm, t in data["training"].items():
            b = t.get("batch") or {}
            batch = (f"{t['global_batch']} = {b.get('per_device')} x {b.get('accumulation')} x {b.get('devices')}"
                     if t.get("global_batch") else "–")  # runs from before the batch was recorded: not known
            L.append(f"| {ARM_LABELS.get(arm, arm)} ({t.get('mode', '')}) | {t.get('steps', '–')} | {batch} | "
                     f"{t.get('tokens_seen', '–')} | "
                     f"{f3(t.get('train_loss_first'))} → {f3(t.get('train_loss_last'))} | "
                     f"{f3(t.get('token_accuracy_first'))} → {f3(t.get('token_accuracy_last'))} | "
                     f"{t.get('tokens_per_s', '–')} | {t.get('s_per_step', '–')} | "
                     f"{_pct(t.get('rows_truncated_share'))}% (max_length {t.get('max_length', '–')}) |")
        L.append("")
    if data.get("learning_curves"):
        L += _learning_curve_markdown(data["learning_curves"])
    L += _first_miss_markdown(data.get("teacher_forced") or {})
    ab = {k: v for k, v in data["ablation"].items() if not k.startswith("_")}
    if ab:
        L += ["## Ablation", ""]
        cards = data["ablation"].get("_cards", {})
        for name, by_tag in ab.items():
            diag_keys = list(dict.fromkeys(k for s in by_tag.values()
                                           for k in ((s.get("diagnostics") or {}).get("overall") or {})))
            L += [f"### {name}", "", "Official overall with a Wilson 95% interval over the n tasks each setting was "
                  "evaluated on; the diagnostics are means over the same tasks (no interval: read them as noisy at "
                  "this n).", "",
                  "| setting | kept / generated | n tasks | overall [95% CI] | "
                  + " | ".join(f"diag: {k}" for k in diag_keys) + " |", "|---|---:|---:|---:|" + "---:|" * len(diag_keys)]
            for tag in sorted(by_tag, key=_ablation_sort_key):
                s = by_tag[tag]
                c = cards.get(tag.split("/")[0], {})
                d = (s.get("diagnostics") or {}).get("overall") or {}
                L.append(f"| {tag} | {c.get('kept', '–')} / {c.get('generated', '–')} | {s.get('n_tasks', '–')} | "
                         f"{_overall_ci(s)} | " + " | ".join(_pct(d.get(k)) for k in diag_keys) + " |")
            L.append("")
        qual = data["ablation"].get("_quality") or {}
        if qual:
            L += ["### Data quality per setting", "", "| setting | pass rate | top rejections | injections | "
                  "judge acceptance | turns changed by refinement |", "|---|---:|---|---:|---:|---:|"]
            for tag, q in sorted(qual.items()):
                rej = ", ".join(f"{k} {v}" for k, v in (q.get("rejections") or {}).items()) or "none"
                L.append(f"| {tag} | {_pct(q.get('pass_rate'))} | {rej} | {q.get('injections', '–')} | "
                         f"{_pct(q.get('judge_acceptance'))} | {q.get('turns_changed', '–')} |")
            L.append("")
    abd = data.get("ablation_data") or {}
    if abd:
        from .datacompare import markdown as dc_markdown

        L += ["### Ablation: data-level comparison (no training)", ""] + dc_markdown(
            dict(sorted(abd.items(), key=lambda kv: _ablation_sort_key(kv[0] + "/")))) + [""]
    for p in plots:
        L.append(f"![{Path(p).stem}]({Path(p).name})")
    L += ["", "## Recipe and machine", "", "```yaml", yaml.safe_dump(data["recipe"], sort_keys=False).strip(), "```",
          "", "```json", json.dumps(data.get("machine"), indent=2), "```", ""]
    if data.get("wall_s") is not None:
        runs = data.get("invocations") or []
        parts = (f" over {len(runs)} invocations (a resumed run reuses finished steps: "
                 + " + ".join(f"{w:.0f} s" for w in runs) + ")") if len(runs) > 1 else ""
        L.append(f"Total wall time of the reproduce run: {data['wall_s']:.0f} s{parts}.")
        by_run = data.get("invocation_phases") or [data.get("phases") or []]
        for i, run_phases in enumerate(by_run):
            # a phase that took time, or ran steps (`ran`, older steps.json lack it) however fast they were
            phases = [p for p in run_phases if p.get("wall_s") or p.get("ran")]
            if not phases:
                continue
            total = sum(p["wall_s"] for p in phases)
            top = max(phases, key=lambda p: p["wall_s"])
            who = f"invocation {i + 1} of {len(by_run)}" if len(by_run) > 1 else "the run"
            L.append(f"Where {who}'s time went: " + ", ".join(
                p["kind"] + _phase_steps(p) + f" {p['wall_s']:.0f} s" for p in phases)
                + (f"; the dominant phase is {top['kind']} ({100 * top['wall_s'] / total:.0f} %)." if total > 0
                   else "; every phase under 0.05 s."))
        L.append("Per-step times: steps.json (`step_times`).")
    return "\n".join(L) + "\n"


def _save_plot(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def make_plots(data: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    arms = data["arms"]
    smoke = set((data.get("recipe") or {}).get("smoke") or [])
    # groups of bars: each non-smoke evaluation's official overall, and for own-task BFCL-style ones also the
    # per-turn accuracy and teacher-forced exact calls; error bars = 95% paired-bootstrap intervals
    groups: list[tuple[str, dict[str, tuple[float, Optional[list]]]]] = []
    for e, by_arm in data["evaluation"].items():
        if e in smoke:
            continue
        unc = (data.get("uncertainty") or {}).get(e) or {}
        if unc:
            for key, r in unc.items():
                groups.append((f"{e}\n{METRIC_LABELS.get(key, key).replace(' (diag)', '')}",
                               {a: (r["arms"][a]["value"], r["arms"][a]["ci95"]) for a in arms if a in r["arms"]}))
        else:
            head = _suite(next(iter(by_arm.values())).get("suite")).overall_row(by_arm)[1]  # the suite's headline
            groups.append((e, {a: (head.get(a), None) for a in arms}))
    if groups:
        fig, ax = plt.subplots(figsize=(1.6 + 1.9 * len(groups), 3.8))
        w = 0.8 / max(1, len(arms))
        tops: list[float] = []
        for i, arm in enumerate(arms):
            xs, ys, err = [], [], [[], []]
            for j, (_, vals) in enumerate(groups):
                v, ci = vals.get(arm, (None, None))
                y = 100 * (v or 0)
                xs.append(j + i * w)
                ys.append(y)
                lo, hi = (ci or [None, None])
                err[0].append(max(0.0, y - 100 * lo) if lo is not None else 0.0)
                err[1].append(max(0.0, 100 * hi - y) if hi is not None else 0.0)
            bars = ax.bar(xs, ys, w, yerr=err, capsize=3, label=ARM_LABELS[arm])
            # chosen: every bar carries its value, so a bar at 0 reads as a measured 0, not as missing data
            missing = [vals.get(arm, (None, None))[0] is None for _, vals in groups]
            ax.bar_label(bars, labels=["n/a" if m else f"{y:.1f}" for y, m in zip(ys, missing)],
                         padding=2, fontsize=7)
            tops.extend(y + e for y, e in zip(ys, err[1]))
        ax.set_xticks([j + w * (len(arms) - 1) / 2 for j in range(len(groups))], [g for g, _ in groups], fontsize=8)
        ax.set_ylim(0, max(5.0, max(tops, default=0) * 1.15 + 2))  # room for the labels above the error bars
        ax.set_xlabel("evaluation and metric")
        ax.set_ylabel("% of tasks / calls (error bars: 95% CI)")
        ax.set_title("Base vs MAS vs ToolACE-MT: per-metric scores")
        ax.legend(fontsize=8, loc="upper left")
        paths.append(_save_plot(fig, out / "comparison.png"))
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
        ax.set_ylim(0, max([y for line in ax.get_lines() for y in line.get_ydata()] + [5.0]) * 1.1)
        ax.set_ylabel("accuracy (%)")
        ax.set_title("Scaling refinement (paper Fig. 5)")
        ax.legend(fontsize=7)
        paths.append(_save_plot(fig, out / "ablation.png"))
    curves = data.get("learning_curves") or {}
    if curves:
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.8))
        # chosen: a marker and line style per arm (and hollow markers), so an arm drawn under another stays visible
        styles = {"base": ("o", "-"), "mas": ("s", "--"), "toolace_mt": ("^", ":")}
        tops = {0: 0.0, 1: 0.0}
        for arm, lc in curves.items():
            pts = [p for p in lc.get("points", []) if p.get("exact_call_rate") is not None]
            if arm != "base" and "base" in curves and curves["base"].get("points"):
                pts = [{**curves["base"]["points"][-1], "step": 0}] + pts  # an arm starts where the base ended
            marker, ls = styles.get(arm, ("D", "-."))
            for i, (ax, key) in enumerate(zip(axes, ("exact_call_rate", "token_accuracy"))):
                ys = [100 * p[key] for p in pts]
                tops[i] = max([tops[i]] + ys)
                ax.plot([p["step"] for p in pts], ys, marker=marker, ls=ls, mfc="none", mew=1.4, ms=6,
                        label=ARM_LABELS.get(arm, arm))
        for i, (ax, title, ylabel) in enumerate(zip(
                axes, ("Teacher-forced exact tool calls", "Tool-call tokens predicted right"),
                ("exact calls (% of gold calls)", "call tokens right (%)"))):
            ax.set_xlabel("training step (arms: LoRA steps on the base)")
            ax.set_ylabel(ylabel)
            ax.set_ylim(0, min(105.0, max(5.0, tops[i] * 1.12)))  # the highest point inside the frame
            ax.set_title(title, fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="lower right")
        fig.suptitle("Learning curves on the BFCL-style tasks' gold dialogues", fontsize=10)
        paths.append(_save_plot(fig, out / "learning_curves.png"))
    return paths


def headline(data: dict[str, Any]) -> list[str]:
    """The closing lines of a reproduce run: each (non-smoke) evaluation's official overall per arm, with its 95%
    paired-bootstrap interval where the report has one, and the steps that did not run."""
    smoke = set((data.get("recipe") or {}).get("smoke") or [])
    lines = []
    for e, by_arm in data["evaluation"].items():
        if e in smoke:
            continue
        unc = ((data.get("uncertainty") or {}).get(e) or {}).get("official") or {}
        cells = []
        for arm in data["arms"]:
            r = (unc.get("arms") or {}).get(arm)
            v = r["value"] if r else (by_arm.get(arm) or {}).get("overall")
            ci = f" [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}]" if r and r.get("ci95") else ""
            cells.append(f"{ARM_LABELS.get(arm, arm)} " + (f"{100 * v:.1f}%{ci}" if v is not None else "n/a"))
        n = unc.get("n_tasks") or next((s.get("n_tasks") for s in by_arm.values() if s.get("n_tasks")), None)
        lines.append(f"{e} official overall{f' ({n} tasks, 95% CI)' if n else ''}: " + " | ".join(cells))
    for name, nr in (data.get("not_run") or {}).items():
        lines.append(f"{name}: not run ({(nr or {}).get('reason', 'data missing')})")
    return lines


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
