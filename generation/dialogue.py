"""The in-flight dialogue both generation methods build: its shape, its constructor and its counters.

A dialogue between stages is a plain dict in the row format (``{"id", "tools", "messages", "meta"}``, call
arguments as dicts), so it is cheap to copy and is written as JSONL between stages and read back on resume; the
`TypedDict`s below name its fields for readers and type checkers without changing that format.
``meta["turns"]`` runs parallel to ``messages`` (one `TurnTag` per message). A tag's uid is stable across
insertions, so the edit log and the refinement weights survive mask-and-extend shifting indices. Call ids
(``call_1``, ``call_2``, ...) and uids are per-dialogue counters kept in ``meta``; `next_call_ids` and `new_uid`
are the only allocators.
"""
from __future__ import annotations

from typing import Any, Optional, TypedDict


class TurnTag(TypedDict):
    k: str  # kind: query, call, output, reply, clarify_ask, error_output, long_call, ...
    t: int  # subtask index (-1: none)
    u: int  # uid, stable across insertions


class WorkMeta(TypedDict, total=False):
    generator: str
    engine: str
    index: int
    seed: int
    domain: str
    plan: dict[str, Any]
    turns: list[TurnTag]
    next_uid: int
    next_call: int
    injections: list[dict[str, Any]]
    injections_skipped: list[dict[str, Any]]
    tool_updates: list[dict[str, Any]]
    refinement: dict[str, Any]
    usage: dict[str, Any]
    failure: Optional[dict[str, Any]]
    mas: dict[str, Any]  # the MAS simulation's counters (MAS dialogues only)


class WorkDialogue(TypedDict):
    id: str
    tools: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    meta: WorkMeta


def new_dialogue(did: str, tools: list[dict[str, Any]], plan, index: int, cfg, generator: str,
                 **extra: Any) -> WorkDialogue:
    """An empty dialogue for `plan` (a `TaskPlan`); `extra` adds method-specific meta fields at the end."""
    meta: WorkMeta = {"generator": generator, "engine": cfg.engine, "index": index, "seed": plan.seed,
                      "domain": plan.domain, "plan": plan.to_dict(), "turns": [], "next_uid": 0,
                      "injections": [], "tool_updates": [], "refinement": {"steps": [], "edit_log": []},
                      "usage": {}, "failure": None}
    meta.update(extra)  # type: ignore[typeddict-item]
    return {"id": did, "tools": tools, "messages": [], "meta": meta}


def new_uid(d: dict[str, Any]) -> int:
    m = d["meta"]
    m["next_uid"] = int(m.get("next_uid", 0)) + 1
    return m["next_uid"]


def next_call_ids(d: dict[str, Any], n: int = 1) -> list[str]:
    """`n` fresh call ids (``call_1``, ``call_2``, ... per dialogue)."""
    m = d["meta"]
    n0 = int(m.get("next_call", 0))
    m["next_call"] = n0 + n
    return [f"call_{n0 + k + 1}" for k in range(n)]
