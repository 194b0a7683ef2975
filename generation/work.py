"""Helpers around the in-flight dialogue (its structure and edits: `dialogue.py`): message constructors, the
outputs of a subtask's calls, and replay on the environment.
"""
from __future__ import annotations

import json
from typing import Any, Optional, Union

from toolace_mt.envs import Env, canonical_json

from .dialogue import WorkDialogue
from .plan import TaskPlan, make_env


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: Optional[str], calls: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
    m: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        m["tool_calls"] = calls
    return m


def call(cid: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": dict(args)}}


def tool_msg(cid: str, name: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "content": content, "tool_call_id": cid, "name": name}


def args_of(tc: dict[str, Any]) -> dict[str, Any]:
    a = tc["function"].get("arguments", {})
    if isinstance(a, str):
        try:
            a = json.loads(a) if a.strip() else {}
        except json.JSONDecodeError:
            return {}
    return a if isinstance(a, dict) else {}


def replay(plan: Union[dict[str, Any], TaskPlan], messages: list[dict[str, Any]], until: Optional[int] = None
           ) -> tuple[Env, dict[str, str]]:
    """Execute every call of messages[:until] in order on a fresh env from the plan.

    Returns the env (its state is the state at `until`) and call id -> output content (JSON text).
    """
    env = make_env(plan.to_dict() if isinstance(plan, TaskPlan) else plan)
    outputs: dict[str, str] = {}
    for m in messages[:until]:
        for tc in m.get("tool_calls") or []:
            r = env.execute(tc["function"]["name"], args_of(tc))
            outputs[tc["id"]] = r.content()
    return env, outputs


def same_json(a: str, b: str) -> bool:
    """Tool outputs compared as JSON values (key order and spacing do not matter)."""
    try:
        return canonical_json(json.loads(a)) == canonical_json(json.loads(b))
    except (json.JSONDecodeError, TypeError):
        return a == b


def call_outputs(d: WorkDialogue, t: int) -> list[tuple[str, Any]]:
    """(tool, output) of subtask t's planned calls in call order (a corrected call's output for an injected
    failure), aligned with the plan's steps, so a rewritten request names its references as the skeleton did."""
    outs = {m.get("tool_call_id"): m.get("content") for m in d.messages if m["role"] == "tool"}
    fixed = {r.details.get("failed_call_id"): r.details.get("corrected_call_id") for r in d.injections
             if r.type == "error_simulation"}
    res = []
    for m, tg in zip(d.messages, d.turns):
        if tg.subtask == t and tg.kind == "call":
            for tc in m.get("tool_calls") or []:
                c = outs.get(fixed.get(tc["id"], tc["id"]))
                try:
                    res.append((tc["function"]["name"], json.loads(c)))
                except (json.JSONDecodeError, TypeError):
                    res.append((tc["function"]["name"], c))
    return res
