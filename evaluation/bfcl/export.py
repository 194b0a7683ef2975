"""A BFCL run in BFCL's own result-file layout, and an independent re-score of such files by the official code.

`export_bfcl_results(run_dir, out, model)` writes ``<out>/<model>/BFCL_v3_multi_turn_<category>_result.json``:
one JSON line per entry, ``{"id", "result"}`` with ``result`` = per played turn, the list of step strings --
a prompting step's raw text as the model wrote it, a structured step's calls as the pythonic list BFCL's FC
decoder produces, a text step's text. An entry the harness force-quit has fewer turns, as in the official
runner's files. `official_rescore(files, tasks)` re-scores such files as the official evaluation does: each
step through bfcl-eval's prompting decoder (failures and empty decodes dropped), the turn-count rule, then the
official `multi_turn_checker`.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from toolace_mt.pycalls import format_python_calls

from . import CATEGORIES, official_category


def model_dir_name(label: str) -> str:
    """A folder name BFCL can read back (its evaluate maps ``_`` in a folder name to ``/``: avoid both)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", label).strip("-") or "model"


def step_text(step: dict[str, Any], call_format: str) -> str:
    if call_format == "pythonic" and isinstance(step.get("raw"), str) and step["raw"].strip():
        return step["raw"]
    if step.get("tool_calls"):
        return format_python_calls(step["tool_calls"])
    return step.get("raw") or step.get("content") or ""


def export_bfcl_results(run_dir: str | Path, out: str | Path, model: str, data_version: str = "v3") -> list[Path]:
    from ..suites import load_trajectories
    from .official import data_file

    rows: dict[str, list[dict[str, Any]]] = {}
    for tr in load_trajectories(run_dir):
        if tr.get("trial", 0) != 0:
            continue
        fmt = tr.get("call_format", "structured")
        if "result" in tr:  # single-turn: the answer as BFCL's result file holds it
            rows.setdefault(tr["category"], []).append({"id": tr["task_id"], "result": tr["result"]})
            continue
        result = [[step_text(st, fmt) for st in turn] for turn in tr.get("turns") or []]
        rows.setdefault(tr["category"], []).append({"id": tr["task_id"], "result": result})
    key = lambda r: tuple(int(x) if x.isdigit() else x for x in re.split(r"(\d+)", r["id"]))  # noqa: E731
    paths = []
    for cat, rs in sorted(rows.items()):
        name = official_category(cat) if cat in CATEGORIES else cat
        p = Path(out) / model_dir_name(model) / data_file(name, data_version).replace(".json", "_result.json")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in sorted(rs, key=key)), encoding="utf-8")
        paths.append(p)
    return paths


def official_rescore(files: list[Path], tasks: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """entry id -> the official verdict on result files as they are (bfcl-eval's decoders and checkers; a file
    holding call lists is an FC model's and is decoded with BFCL's FC decoder, as `policies.replay` does)."""
    from ..policies.replay import _is_fc_step
    from .crosscheck import official_entry_verdict

    out = {}
    for f in files:
        rows = [json.loads(line) for line in Path(f).read_text(encoding="utf-8").splitlines() if line.strip()]
        steps = [st for r in rows for st in ((st for t in r["result"] if isinstance(t, list) for st in t)
                                             if "multi_turn" in Path(f).name else [r["result"]])]
        fc = any(_is_fc_step(st) for st in steps)
        for r in rows:
            out[r["id"]] = official_entry_verdict(tasks[r["id"]], r["result"], fc)["valid"]
    return out
