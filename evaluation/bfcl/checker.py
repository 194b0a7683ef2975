"""The BFCL multi-turn verdict, reimplemented from the official rules (state and response checks per turn, all-or-nothing per entry). Pure.

An entry is correct iff

1. the trajectory has one entry per ground-truth turn (else ``force_terminated``: the harness quit it);
2. for every turn *t* whose ground truth is non-empty:
   a. the model made at least one call in *t* (``empty_turn_model_response``);
   b. after running all model calls of turns <= *t* on one world and all ground-truth calls on another, every
      public attribute of every involved instance is equal (``instance_state_mismatch``);
   c. the multiset of ground-truth result strings of turn *t* is contained in the multiset of *all* model
      result strings so far (``execution_response_mismatch``).

Turns with ground truth ``[]`` are not checked (calls made there still run and change later state), unless
``strict=True``, which also requires abstention there (``irrelevance``; not an official rule).
Steps without calls (text answers, unparseable output) are dropped before checking, as the official decoder
drops them.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from .backends import make_world, parse_gt_call


def decode_turns(turns: list[list[dict[str, Any]]], mode: str = "lenient", call_format: str = "structured",
                 impl: str = "auto") -> list[list[list[dict[str, Any]]]]:
    """Trajectory turns (lists of steps) -> per turn, the call lists of the steps that made calls (decoded per
    `decoding.step_calls`: official mode decodes pythonic text as BFCL does)."""
    from .decoding import step_calls

    out = []
    for turn in turns:
        calls = [step_calls(step, mode, call_format, impl) for step in turn]
        out.append([c for c in calls if c])
    return out


def gt_calls(task: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return [[parse_gt_call(s) for s in turn] for turn in task["ground_truth"]]


def multiset_missing(expected: list[str], got: list[str]) -> list[str]:
    """Items of `expected` not covered by `got`, counting duplicates."""
    have = Counter(got)
    missing = []
    for item in expected:
        if have[item] > 0:
            have[item] -= 1
        else:
            missing.append(item)
    return missing


def check_entry(task: dict[str, Any], decoded: list[list[list[dict[str, Any]]]], strict: bool = False) -> dict[str, Any]:
    """Verdict for one entry: {"valid": bool, "error_type": str|None, "turn": int|None, "reasons": [str]}."""
    gts = task["ground_truth"]
    if len(decoded) != len(gts):
        return _fail("force_terminated", None, f"{len(decoded)} turns played, {len(gts)} expected")
    gt_parsed = gt_calls(task)
    model_world = make_world(task)
    gt_world = make_world(task)
    all_model_results: list[str] = []
    for t, (steps, gt_turn) in enumerate(zip(decoded, gt_parsed)):
        for calls in steps:
            all_model_results.extend(model_world.execute_all(calls))
        gt_results = gt_world.execute_all(gt_turn)
        if not gt_turn:
            if strict and steps:
                return _fail("irrelevance", t, f"turn {t}: calls made where the task cannot be completed yet")
            continue
        if not steps:
            return _fail("empty_turn_model_response", t, f"turn {t}: no call")
        diffs = model_world.differences(gt_world)
        if diffs:
            return _fail("instance_state_mismatch", t, f"turn {t}: state differs in {', '.join(diffs[:8])}")
        missing = multiset_missing(gt_results, all_model_results)
        if missing:
            return _fail("execution_response_mismatch", t,
                         f"turn {t}: {len(missing)} expected result(s) missing, e.g. {missing[0][:160]!r}")
    return {"valid": True, "error_type": None, "turn": None, "reasons": []}


def _fail(kind: str, turn: int | None, reason: str) -> dict[str, Any]:
    return {"valid": False, "error_type": kind, "turn": turn, "reasons": [f"{kind}: {reason}"]}


# ---- graded diagnostics (NOT official; the verdict above is the score) -------------------------------------
def turn_checks(task: dict[str, Any], decoded: list[list[list[dict[str, Any]]]]) -> list[bool | None]:
    """Per ground-truth turn, whether it passes the official per-turn checks (a call was made, state equal,
    expected results present) when every turn is played on, instead of stopping at the first failure as
    `check_entry` does. ``None`` for ``[]`` turns (not checked) and for turns the trajectory never reached.
    A diagnostic only: a failing turn usually makes later turns fail too (the state diverges)."""
    gt_parsed = gt_calls(task)
    model_world = make_world(task)
    gt_world = make_world(task)
    all_model_results: list[str] = []
    out: list[bool | None] = []
    for t, gt_turn in enumerate(gt_parsed):
        steps = decoded[t] if t < len(decoded) else []
        for calls in steps:
            all_model_results.extend(model_world.execute_all(calls))
        gt_results = gt_world.execute_all(gt_turn)
        if not gt_turn:
            out.append(None)
            continue
        out.append(bool(steps) and not model_world.differences(gt_world)
                   and not multiset_missing(gt_results, all_model_results))
    return out
