"""Stage 3, offline verification: rule checks (`rules.py`) then model specialists (`model.py`).

`verify_batch` annotates every dialogue with ``meta["verification"] = {"passed", "reasons", "checks"}``;
filtering happens at export, so rejection statistics stay results too.
"""
from __future__ import annotations

from typing import Any, Optional

from .rules import verify_rules


def verify_dialogue(d: dict[str, Any]) -> dict[str, Any]:
    try:
        checks, reasons = verify_rules(d)
    except Exception as e:  # a malformed row must be rejected with its reason, not crash the run
        checks, reasons = {"format": False}, [f"format: cannot be checked: {type(e).__name__}: {e}"]
    v = {"passed": not reasons, "reasons": reasons, "checks": checks}
    d.setdefault("meta", {})["verification"] = v
    return v


def verify_batch(ds: list[dict[str, Any]], model_verifiers: Optional[list[str]] = None, client=None,
                 llm_cfg=None, batched: bool = True) -> None:
    for d in ds:
        verify_dialogue(d)
    if model_verifiers and client is not None:
        from .model import run_specialists

        # chosen: only dialogues that pass the rules go to the (costly) specialists
        todo = [d for d in ds if d["meta"]["verification"]["passed"]]
        res = run_specialists(todo, model_verifiers, client, llm_cfg, batched=batched)
        for k, d in enumerate(todo):
            v = d["meta"]["verification"]
            for name, (ok, why) in res.get(k, {}).items():
                v["checks"][f"model:{name}"] = ok
                if not ok:
                    v["reasons"].append(f"model:{name}: {why}")
            v["passed"] = not v["reasons"]
