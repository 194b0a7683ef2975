"""`toolace-mt compare RUN_A RUN_B`: a paired test of two evaluation runs on the tasks they share.

Verdicts are read from each run's ``results.jsonl`` (``correct`` per task and trial) and paired by
(task_id, trial); the exact McNemar test is run overall and per category (`stats.paired`). Runs on different
suites or sources are refused.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import RecipeError
from .stats import paired


def _load(run: Path) -> tuple[dict[str, Any], dict[tuple, bool], dict[tuple, str]]:
    res, summ = run / "results.jsonl", run / "summary.json"
    if not res.is_file() or not summ.is_file():
        raise RecipeError(f"{run}: not a finished evaluation run (needs results.jsonl and summary.json)")
    verdicts, cats = {}, {}
    for i, line in enumerate(res.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            raise RecipeError(f"{res}:{i}: not a JSON line ({e.msg})") from None
        key = (str(r["task_id"]), int(r.get("trial", 0)))
        verdicts[key] = bool(r.get("correct"))
        cats[key] = str(r.get("category", ""))
    return json.loads(summ.read_text()), verdicts, cats


def compare_runs(run_a: str | Path, run_b: str | Path) -> dict[str, Any]:
    sa, va, cats = _load(Path(run_a))
    sb, vb, _ = _load(Path(run_b))
    for key in ("suite", "source"):
        if sa.get(key) != sb.get(key):
            raise RecipeError(f"the runs differ in {key}: {sa.get(key)!r} vs {sb.get(key)!r}")
    shared = set(va) & set(vb)
    if not shared:
        raise RecipeError("the runs share no (task_id, trial)")
    per_cat = {}
    for c in sorted({cats[k] for k in shared}):
        keys = [k for k in shared if cats[k] == c]
        per_cat[c] = paired({k: va[k] for k in keys}, {k: vb[k] for k in keys})
    return {"a": {"run": str(run_a), "policy": sa.get("policy")}, "b": {"run": str(run_b), "policy": sb.get("policy")},
            "suite": sa.get("suite"), "source": sa.get("source"), "only_in_a": len(set(va) - shared),
            "only_in_b": len(set(vb) - shared), "test": "exact McNemar (two-sided) on paired per-task verdicts",
            "overall": paired(va, vb), "categories": per_cat}
