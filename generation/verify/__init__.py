"""Stage 3, offline verification: rule checks (`rules.py`) then model specialists (`model.py`).

`verify_batch` annotates every (typed) dialogue with its `Verification` (passed, reasons, checks); filtering
happens at export, so rejection statistics stay results too.
"""
from __future__ import annotations

from typing import Optional, Union

from ..dialogue import Verification, WorkDialogue, as_dialogue
from .rules import verify_rules


def verify_dialogue(d: Union[WorkDialogue, dict]) -> Verification:
    """Verify one dialogue and record the verdict on it. A finished row given as a dict is read tolerantly and
    gets the verdict (and the replay verdict) written back into its ``meta``, JSON at that boundary."""
    w = as_dialogue(d)
    try:
        checks, reasons = verify_rules(w)
    except Exception as e:  # a malformed row must be rejected with its reason, not crash the run
        checks, reasons = {"format": False}, [f"format: cannot be checked: {type(e).__name__}: {e}"]
    w.verification = Verification(passed=not reasons, reasons=reasons, checks=checks)
    if w is not d:
        d.update(w.to_dict())
    return w.verification


def verify_batch(ds: list[WorkDialogue], model_verifiers: Optional[list[str]] = None, client=None,
                 llm_cfg=None, batched: bool = True) -> None:
    for d in ds:
        verify_dialogue(d)
    if model_verifiers and client is not None:
        from .model import run_specialists

        # chosen: only dialogues that pass the rules go to the (costly) specialists
        todo = [d for d in ds if d.verification.passed]
        res = run_specialists(todo, model_verifiers, client, llm_cfg, batched=batched)
        for k, d in enumerate(todo):
            v = d.verification
            for name, (ok, why) in res.get(k, {}).items():
                v.checks[f"model:{name}"] = ok
                if not ok:
                    v.reasons.append(f"model:{name}: {why}")
            v.passed = not v.reasons
