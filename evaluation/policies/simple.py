"""The two sanity anchors: `oracle` (replays gold) and `null` (never calls a tool)."""
from __future__ import annotations

import copy
from typing import Any

from ..policy import PolicyInput, PolicyOutput
from . import PolicyConfig, register_policy


def gold_to_output(gold: Any) -> PolicyOutput:
    """The harness's gold for one step -> the answer the oracle gives.

    Accepted shapes: ``None`` or ``""`` (answer with empty text: end the turn), a string (text answer), a
    list of calls ``[{"name", "arguments"}]``, or a dict ``{"content": str|None, "tool_calls": [...]}``.
    """
    if gold is None or isinstance(gold, str):
        return PolicyOutput(content=gold or "", raw=gold or "")
    if isinstance(gold, list):
        gold = {"tool_calls": gold}
    if isinstance(gold, dict):
        calls = [{"name": c["name"], "arguments": copy.deepcopy(c.get("arguments") or {})} for c in gold.get("tool_calls") or []]
        content = gold.get("content")
        return PolicyOutput(content=content, tool_calls=calls, raw=str(content or "") if not calls else "")
    raise TypeError(f"oracle: gold of unsupported type {type(gold).__name__}")


@register_policy("oracle")
class OraclePolicy:
    """Answers with whatever the harness says is expected next. A suite whose oracle is not at 100% has a bug
    in its tasks, its harness or its checker."""

    def __init__(self, cfg: PolicyConfig):
        self.cfg = cfg
        self.name = cfg.label

    def act(self, batch: list[PolicyInput]) -> list[PolicyOutput]:
        return [gold_to_output(inp.gold) for inp in batch]


@register_policy("null")
class NullPolicy:
    """Never calls a tool: every answer is the same neutral text."""

    def __init__(self, cfg: PolicyConfig):
        self.cfg = cfg
        self.name = cfg.label
        self.answer = cfg.null_answer

    def act(self, batch: list[PolicyInput]) -> list[PolicyOutput]:
        return [PolicyOutput(content=self.answer, raw=self.answer) for _ in batch]
