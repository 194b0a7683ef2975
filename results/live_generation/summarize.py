"""Figures of the live generation runs: kept share, rejection reasons, cost per generated and per kept dialogue.

    python results/live_generation/summarize.py RUN_DIR [RUN_DIR ...] > results/live_generation/figures.md

Reads each run's summary.json, usage.json and rejected.jsonl (`toolace-mt generate` writes them); prints
markdown. The method ratio (ToolACE-MT / MAS) is printed when both a toolace_mt and a mas run are given.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from toolace_mt.evaluation.stats import wilson


def load(run: Path) -> dict:
    s = json.loads((run / "summary.json").read_text())
    u = json.loads((run / "usage.json").read_text())
    recipe = (run / "recipe.yaml").read_text()
    reasons: Counter = Counter()
    per: dict[str, list[str]] = {}
    for line in (run / "rejected.jsonl").read_text().splitlines():
        d = json.loads(line)
        meta = d["meta"] if isinstance(d["meta"], dict) else json.loads(d["meta"])
        rs = (meta.get("verification") or {}).get("reasons") or []
        per[d["id"]] = rs
        for check in sorted({r.split(":")[0] if not r.startswith("model:") else ":".join(r.split(":")[:2])
                             for r in rs}):
            reasons[check] += 1
    return {"run": run, "summary": s, "usage": u, "reasons": reasons, "per": per, "recipe": recipe}


def main(runs: list[str]) -> None:
    rows = [load(Path(r)) for r in runs]
    print("| run | method | kept / generated | kept share [95% Wilson] | LLM calls per generated / kept | "
          "prompt tokens per generated / kept |")
    print("|---|---|---|---|---|---|")
    by_method = {}
    for r in rows:
        s, u = r["summary"], r["usage"]
        kept, gen = s["counts"]["kept"], s["counts"]["generated"]
        lo, hi = wilson(kept, gen)
        method = "mas" if "method: mas" in r["recipe"] else "toolace_mt"
        pg, pk = u["per_generated_dialogue"], u["per_kept_dialogue"]
        f = lambda x, spec: "-" if x is None else format(x, spec)  # noqa: E731 -- no kept dialogue: no per-kept cost
        print(f"| {r['run'].name} | {method} | {kept} / {gen} | {kept / gen:.1%} [{lo:.0%}, {hi:.0%}] | "
              f"{f(pg['llm_calls'], '')} / {f(pk['llm_calls'], '')} | {f(pg['prompt_tokens'], ',.0f')} / "
              f"{f(pk['prompt_tokens'], ',.0f')} |")
        by_method.setdefault(method, r)
    if {"mas", "toolace_mt"} <= set(by_method) and by_method["mas"]["usage"]["per_kept_dialogue"]["llm_calls"] \
            and by_method["toolace_mt"]["usage"]["per_kept_dialogue"]["llm_calls"]:
        a, b = by_method["toolace_mt"]["usage"], by_method["mas"]["usage"]
        print()
        print("ToolACE-MT / MAS (first run of each): LLM calls per generated "
              f"{a['per_generated_dialogue']['llm_calls'] / b['per_generated_dialogue']['llm_calls']:.2f}x, per kept "
              f"{a['per_kept_dialogue']['llm_calls'] / b['per_kept_dialogue']['llm_calls']:.2f}x; prompt tokens per "
              f"generated {a['per_generated_dialogue']['prompt_tokens'] / b['per_generated_dialogue']['prompt_tokens']:.2f}x, "
              f"per kept {a['per_kept_dialogue']['prompt_tokens'] / b['per_kept_dialogue']['prompt_tokens']:.2f}x.")
    for r in rows:
        print(f"\n### Rejections of {r['run'].name} (dialogues per failed check)\n")
        for c, n in r["reasons"].most_common():
            print(f"- {c}: {n}")
        for did, rs in sorted(r["per"].items()):
            print(f"  - {did}: " + " | ".join(x[:220] for x in rs[:4]) + (f" (+{len(rs) - 4} more)" if len(rs) > 4 else ""))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: summarize.py RUN_DIR [RUN_DIR ...]")
    try:
        main(sys.argv[1:])
    except (OSError, KeyError, json.JSONDecodeError) as e:  # not a finished generation run: say which, exit 2
        print(f"error: not a finished `toolace-mt generate` run ({type(e).__name__}: {e})", file=sys.stderr)
        sys.exit(2)
