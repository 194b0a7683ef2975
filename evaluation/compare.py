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
from ..io import iter_json_lines
from .stats import paired


def _load(run: Path) -> tuple[dict[str, Any], dict[tuple, bool], dict[tuple, str]]:
    """summary, verdicts and categories of one evaluation run, every line checked: a verdict that is not a
    JSON boolean, a missing or non-string task_id, a trial that is not a non-negative integer, or a duplicate
    (task_id, trial) is an input error naming the line (a paired test on silently coerced data is no test)."""
    res, summ = run / "results.jsonl", run / "summary.json"
    if not res.is_file() or not summ.is_file():
        raise RecipeError(f"{run}: not a finished evaluation run (needs results.jsonl and summary.json)")
    try:
        summary = json.loads(summ.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise RecipeError(f"{summ}: not a JSON file ({type(e).__name__})") from None
    if not isinstance(summary, dict):
        raise RecipeError(f"{summ}: expected a JSON object, got {type(summary).__name__}")
    verdicts: dict[tuple, bool] = {}
    cats: dict[tuple, str] = {}
    first: dict[tuple, int] = {}
    for n, r, why in iter_json_lines(res):
        where = f"{res}:{n}"
        if why is not None:
            raise RecipeError(f"{where}: {why}")
        if not isinstance(r, dict):
            raise RecipeError(f"{where}: expected a JSON object, got {type(r).__name__}")
        tid, trial, ok = r.get("task_id"), r.get("trial", 0), r.get("correct")
        if not isinstance(tid, str) or not tid:
            raise RecipeError(f"{where}: task_id must be a non-empty string, got {tid!r:.60}")
        if not isinstance(trial, int) or isinstance(trial, bool) or trial < 0:
            raise RecipeError(f"{where}: trial must be a non-negative integer, got {trial!r:.60}")
        if not isinstance(ok, bool):
            raise RecipeError(f"{where}: correct must be true or false, got {ok!r:.60}")
        key = (tid, trial)
        if key in first:
            raise RecipeError(f"{where}: duplicate (task_id, trial) {key} (first at line {first[key]})")
        first[key] = n
        verdicts[key] = ok
        cat = r.get("category", "")
        cats[key] = cat if isinstance(cat, str) else str(cat)
    if not verdicts:
        raise RecipeError(f"{res}: holds no verdict")
    return summary, verdicts, cats


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
