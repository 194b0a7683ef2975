"""The gold dialogue of a BFCL-layout task: what the harness shows a model that answers every step with the
ground truth (the oracle), as a `Dialogue` in the project's training format.

Used to check that training renders what evaluation shows (every evaluation prompt is a prefix of the training
rendering of the gold dialogue) and to measure teacher-forced exact calls on the evaluation tasks. The tools
are the ones visible at the first turn; a held-out function arrives as a ``meta["tool_updates"]`` entry at the
message that opens its turn (the official "I have updated..." user message).
"""
from __future__ import annotations

from typing import Any

from toolace_mt.schema import Dialogue

from ..policies.simple import gold_to_output
from . import MAX_STEPS
from .backends import missed, tools_at_turn
from .harness import _Play


def play_gold(task: dict[str, Any]) -> tuple[Dialogue, list[dict[str, Any]]]:
    """(gold dialogue, the prompts the harness built on the way: ``[{"messages", "tools"}]``)."""
    p = _Play(task, 0, MAX_STEPS)
    prompts: list[dict[str, Any]] = []
    starts: dict[int, int] = {}  # turn -> index of its first message
    turn_seen = -1
    while not p.done:
        if p.turn != turn_seen:
            turn_seen = p.turn
            starts[p.turn] = len(p.messages) - len(p.task["question"][p.turn] or [None])
        inp = p.policy_input()
        prompts.append({"messages": [dict(m) for m in inp.messages], "tools": list(inp.tools)})
        p.apply(gold_to_output(inp.gold))
    first = tools_at_turn(task, 0)
    shown = {t["function"]["name"] for t in first}
    ups = []
    for turn in sorted(missed(task)):
        if turn not in starts:
            continue
        new = [t for t in tools_at_turn(task, turn) if t["function"]["name"] not in shown]
        shown |= {t["function"]["name"] for t in new}
        ups.append({"at": starts[turn], "tools": new})
    d = Dialogue.model_validate({"id": str(task["id"]), "tools": first, "messages": p.messages,
                                 "meta": {"tool_updates": ups, "category": task.get("category", "")}})
    return d, prompts


def gold_dialogue(task: dict[str, Any]) -> Dialogue:
    return play_gold(task)[0]
