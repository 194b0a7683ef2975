"""`toolace-mt bench generation`: what ToolACE-MT and MAS spend per generated and per kept dialogue, by length.

Both methods run with the `llm` engine on the `simulated` backend (offline stand-ins that answer each real
prompt from what it shows, so the numbers of calls and prompt tokens are what a real model would be sent; see
toolace_mt/llm/simulated.py), on the same seeds, through the normal run machinery (`run_generation`,
verification included), once per number of subtasks m. Per generated and per kept dialogue it reports LLM
calls, prompt and completion tokens, wall time, and the verification pass rate (a mechanism check of the
pipelines on offline answers, not evidence about the methods), with the ratios ToolACE-MT / MAS. Output: a rich table, ``bench.json`` and
``bench.png`` in the run directory (plus one run directory per method and m under it).

``--set refinement_steps=0`` gives the no-refinement ablation of ToolACE-MT (refill + judge calls; since
tmt-refill/2 and tmt-judge/2 they carry only the masked turns' bounded local context, see generation/context.py). The paper's figures (§7.3): 188k vs 275k API calls for the ~8k-dialogue sets (ratio ~0.68), pass rate
72.3% vs 61.1%. Wall time here is this machine's CPU time for the rules answers and the pipeline itself,
not a model's generation time.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from toolace_mt.config import apply_overrides
from toolace_mt.runs import atomic_write_json, machine_info

METHODS = ("toolace_mt", "mas")
PAPER = {"calls_ratio": round(188 / 275, 3), "pass_rate": {"toolace_mt": 0.723, "mas": 0.611}}  # paper §7.3
GOAL = {"calls_ratio_max": 0.6, "prompt_tokens_ratio_max": 0.4, "at_subtasks": [4, 5]}  # chosen: the cost goals this bench reports against (paper §5 reports 0.68x calls)


def _cfg(method: str, m: int, n: int, seed: int, overrides: Optional[list[str]]):
    from ..config import parse_recipe

    raw = {"name": f"bench-{method}-m{m}", "method": method, "engine": "llm", "n_dialogues": n, "seed": seed,
           "subtasks": [m, m], "llm": {"backend": "simulated", "model": "rules"}, "progress": False}
    return parse_recipe(apply_overrides(raw, overrides or []))


def run_one(method: str, m: int, n: int, out: Path, seed: int = 0, overrides: Optional[list[str]] = None) -> dict[str, Any]:
    """One (method, m) cell: a fresh run directory, a fresh uncached client, its ledger and the dataset card."""
    from toolace_mt.llm.client import make_client

    from ..run import run_generation

    cfg = _cfg(method, m, n, seed, overrides)
    client = make_client(cfg.llm)  # no disk cache: every request is a real (simulated) call
    t0 = time.perf_counter()
    summary = run_generation(cfg, out, restart=True, client=client)
    wall = time.perf_counter() - t0
    tot = client.ledger.summary()["total"]
    counts = summary["counts"]
    total = int(counts.get("generated", counts.get("total", n)))
    kept = int(counts.get("kept", 0))
    per = max(kept, 1)
    return {"method": method, "subtasks": m, "dialogues": total, "kept": kept,
            "pass_rate": round(kept / max(total, 1), 4),
            "calls": int(tot["calls"]), "prompt_tokens": int(tot["prompt_tokens"]),
            "completion_tokens": int(tot["completion_tokens"]), "wall_s": round(wall, 3),
            "calls_per_generated": round(tot["calls"] / max(total, 1), 2),
            "prompt_tokens_per_generated": round(tot["prompt_tokens"] / max(total, 1), 1),
            "completion_tokens_per_generated": round(tot["completion_tokens"] / max(total, 1), 1),
            "calls_per_kept": round(tot["calls"] / per, 2), "prompt_tokens_per_kept": round(tot["prompt_tokens"] / per, 1),
            "completion_tokens_per_kept": round(tot["completion_tokens"] / per, 1),
            "wall_s_per_kept": round(wall / per, 4), "failures": int(tot["failures"]),
            "by_stage": {s: {"calls": int(v["calls"]), "prompt_tokens": int(v["prompt_tokens"]),
                             "completion_tokens": int(v["completion_tokens"])}
                         for s, v in client.ledger.summary()["by_stage"].items()},
            "run_dir": str(out)}


def ratios(rows: list[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """ToolACE-MT / MAS per m, for each per-generated and per-kept figure and the pass rate."""
    by = {(r["method"], r["subtasks"]): r for r in rows}
    out = {}
    for m in sorted({r["subtasks"] for r in rows}):
        a, b = by.get(("toolace_mt", m)), by.get(("mas", m))
        if not a or not b:
            continue
        out[m] = {k: round(a[k] / b[k], 3) if b[k] else float("nan")
                  for k in ("calls_per_generated", "prompt_tokens_per_generated", "completion_tokens_per_generated",
                            "calls_per_kept", "prompt_tokens_per_kept", "completion_tokens_per_kept",
                            "wall_s_per_kept", "pass_rate")}
    return out


def table(res: dict[str, Any]):
    from rich.table import Table

    t = Table(title=f"generation cost per generated | per kept dialogue ({res['n']} dialogues per cell, simulated "
                    f"backend, tokens: {res['tokenizer']}); pass rates are mechanism checks, not evidence")
    for c in ("m", "method", "kept/total", "pass*", "calls gen|kept", "prompt tok gen|kept", "compl. tok gen|kept",
              "wall s/kept"):
        t.add_column(c, justify="right" if c not in ("method",) else "left")
    rat = res["ratios"]
    for m in res["subtasks"]:
        for r in [x for x in res["rows"] if x["subtasks"] == m]:
            t.add_row(str(m), r["method"], f"{r['kept']}/{r['dialogues']}", f"{r['pass_rate']:.1%}",
                      f"{r['calls_per_generated']:.1f} | {r['calls_per_kept']:.1f}",
                      f"{r['prompt_tokens_per_generated']:,.0f} | {r['prompt_tokens_per_kept']:,.0f}",
                      f"{r['completion_tokens_per_generated']:,.0f} | {r['completion_tokens_per_kept']:,.0f}",
                      f"{r['wall_s_per_kept']:.3f}")
        if m in rat or str(m) in rat:
            q = rat.get(m) or rat.get(str(m))
            t.add_row(str(m), "[b]TMT/MAS[/b]", "", f"{q['pass_rate']:.2f}x",
                      f"{q['calls_per_generated']:.2f}x | {q['calls_per_kept']:.2f}x",
                      f"{q['prompt_tokens_per_generated']:.2f}x | {q['prompt_tokens_per_kept']:.2f}x",
                      f"{q['completion_tokens_per_generated']:.2f}x | {q['completion_tokens_per_kept']:.2f}x",
                      f"{q['wall_s_per_kept']:.2f}x", end_section=True)
    return t


def plot(res: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    panels = [("calls_per_generated", "LLM calls / generated dialogue"),
              ("prompt_tokens_per_generated", "prompt tokens / generated"),
              ("calls_per_kept", "LLM calls / kept dialogue"), ("pass_rate", "pass rate (mechanism check)")]
    for ax, (key, title) in zip(axes, panels):
        for method, style in (("toolace_mt", "o-"), ("mas", "s--")):
            rows = sorted([r for r in res["rows"] if r["method"] == method], key=lambda r: r["subtasks"])
            ax.plot([r["subtasks"] for r in rows], [r[key] for r in rows], style,
                    label="ToolACE-MT" if method == "toolace_mt" else "MAS")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("subtasks per dialogue (m)")
        ax.set_xticks(res["subtasks"])
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"ToolACE-MT vs MAS generation cost (simulated backend, {res['n']} dialogues per point)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _warm_up(overrides: Optional[list[str]]) -> None:
    """Imports, schema derivation and the tokenizer load once, outside the timed cells."""
    from toolace_mt.llm.client import make_client

    from .. import pipeline
    from . import run_batch

    for method, mod in (("toolace_mt", pipeline), ("mas", None)):
        cfg = _cfg(method, 2, 1, 0, overrides)
        client = make_client(cfg.llm)
        (mod.run_batch if mod is not None else run_batch)(cfg, [0], client)


def bench_generation(n: int = 50, subtasks: tuple[int, ...] = (2, 3, 4, 5), out: Path = Path("runs/bench/generation"),
                     seed: int = 0, overrides: Optional[list[str]] = None, console=None) -> dict[str, Any]:
    """Run every (m, method) cell, write bench.json and bench.png under `out`, print the table."""
    from rich.console import Console

    from toolace_mt.llm.simulated import VERSION, tokenizer

    console = console or Console(width=110)
    out = Path(out)
    _warm_up(overrides)
    rows = []
    for m in subtasks:
        for method in METHODS:
            console.print(f"[dim]bench generation: {method}, m={m}, n={n}[/dim]")
            rows.append(run_one(method, m, n, out / f"{method}-m{m}", seed, overrides))
    res = {"n": n, "seed": seed, "subtasks": list(subtasks), "backend": VERSION, "tokenizer": tokenizer()[0],
           "rows": rows, "ratios": ratios(rows), "paper": PAPER, "goal": GOAL, "machine": machine_info(),
           "note": "calls and prompt tokens are those of the real prompts; answers come from offline stand-ins that "
                   "see only what each prompt shows; pass rates are mechanism checks of the pipelines, not evidence "
                   "about the methods; wall time is this machine's, not a model's"}
    atomic_write_json(out / "bench.json", res)
    res["plot"] = str(plot(res, out / "bench.png"))
    atomic_write_json(out / "bench.json", res)
    console.print(table(res))
    console.print(f"bench.json and bench.png in {out}")
    return res
