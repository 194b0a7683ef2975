"""Prompts and answers for the `llm` engine: versioned jinja2 templates in, validated JSON out.

Each template in ``prompts/`` starts with ``{# version: NAME/N #}``; the version is recorded in every
request's payload, so a dataset says which prompt wrote it. `ask` sends ONE batched ``client.chat`` for a
whole stage step and turns every answer into ``(parsed, None)`` or ``(None, failure)``: the client parses and
validates each JSON answer once (`LLMClient.chat`); its typed failures (transport, invalid or ambiguous JSON,
schema mismatch) pass through here as failures, never exceptions.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Optional

import jinja2

from toolace_mt.llm.types import ChatRequest, SamplingParams

from .dialogue import AnswerRepair, WorkDialogue

PROMPTS = Path(__file__).parent / "prompts"
# every generation method's templates: ToolACE-MT's stages, then the MAS agents (names are unique across them)
PROMPT_DIRS = (PROMPTS, Path(__file__).parent / "mas" / "prompts")
_VERSION = re.compile(r"\{#\s*version:\s*([\w./-]+)\s*#\}")
METHOD = "toolace_mt"


@functools.lru_cache(maxsize=None)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader([str(p) for p in PROMPT_DIRS]), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=False, autoescape=False)


@functools.lru_cache(maxsize=None)
def prompt_version(name: str) -> str:
    source, _, _ = _env().loader.get_source(_env(), name)
    m = _VERSION.search(source)
    if not m:
        raise ValueError(f"prompt {name} has no '{{# version: ... #}}' header")
    return m.group(1)


def tojson(x: Any) -> str:
    return json.dumps(x, ensure_ascii=False)


def visible_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fields of each message that a transcript (`show_dialogue`) renders, nothing else (no call ids)."""
    out = []
    for m in messages:
        v: dict[str, Any] = {"role": m["role"], "content": m.get("content")}
        if m["role"] == "tool":
            v["name"] = m.get("name")
        if m.get("tool_calls"):
            v["tool_calls"] = [{"function": {"name": tc["function"]["name"], "arguments": tc["function"]["arguments"]}}
                               for tc in m["tool_calls"]]
        out.append(v)
    return out


def visible_context(ctx: dict[str, Any]) -> dict[str, Any]:
    """The values a template is rendered from (helper functions left out), as plain JSON data.

    This is all an offline stand-in for the model (the `simulated` backend) may read: a test checks that
    every key is a variable the template renders."""
    return json.loads(json.dumps({k: v for k, v in ctx.items() if not callable(v)}, ensure_ascii=False, default=str))


def render(name: str, **ctx: Any) -> list[dict[str, str]]:
    """Render a template into chat messages: the text before a line '=== user ===' is the system prompt."""
    ctx.setdefault("tojson", tojson)
    ctx.setdefault("transcript", show_dialogue)
    text = _env().get_template(name).render(**ctx).strip()
    if "=== user ===" in text:
        sys_part, user_part = text.split("=== user ===", 1)
        return [{"role": "system", "content": sys_part.strip()}, {"role": "user", "content": user_part.strip()}]
    return [{"role": "user", "content": text}]


def request(template: str, stage: str, payload: dict[str, Any], schema: dict[str, Any], llm_cfg=None,
            method: str = METHOD, **ctx: Any) -> ChatRequest:
    # the payload keeps bookkeeping for logs (what the stage asked for); an offline stand-in for the model
    # reads only "visible": the values the template is rendered from
    payload = dict(payload, prompt=template, prompt_version=prompt_version(template), visible=visible_context(ctx))
    sampling = SamplingParams()  # chosen: the client resolves decoding settings from the recipe's llm: block
    return ChatRequest(messages=render(template, **ctx), json_schema=schema, stage=stage, method=method,
                       payload=payload, sampling=sampling)


def note_repairs(d: WorkDialogue, stage: str, resp) -> None:
    """Record that an answer was repaired (and whether it was cut at max_tokens): verification gates on it."""
    for w in getattr(resp, "warnings", None) or []:
        if "json repaired" in w:
            rec = AnswerRepair(stage, w.split(":", 1)[-1].strip(),
                               "cut at max_tokens" in w or getattr(resp, "finish_reason", None) == "length")
            d.answer_repairs.append(rec)
            d.touch("answer_repairs")


def ask(client, items: list[tuple[WorkDialogue, ChatRequest]], stage: Optional[str] = None
        ) -> list[tuple[Optional[Any], Optional[dict]]]:
    """One batched call for all `items` ((dialogue, request) pairs). Returns (parsed, failure) per item.
    Usage is booked under `stage`, or under each request's own stage (MAS batches several agents per call)."""
    if not items:
        return []
    for d, r in items:  # lets logs tie answers to dialogues
        if r.payload is not None:
            r.payload.setdefault("dialogue_id", d.id)
    try:
        resps = client.chat([r for _, r in items])
    except Exception as e:  # a backend that raises is a misconfiguration or outage: fail these dialogues, keep going
        return [(None, {"kind": "backend", "message": f"{type(e).__name__}: {e}"}) for _ in items]
    if len(resps) != len(items):
        return [(None, {"kind": "bad_response", "message": f"{len(resps)} answers for {len(items)} requests"})
                for _ in items]
    out = []
    simulated = getattr(getattr(client, "backend", None), "name", None) == "simulated"
    for (d, req), resp in zip(items, resps):
        d.add_usage(stage or req.stage, resp)
        if simulated:  # answers of the `simulated` backend (rules behind real prompts): label the data
            d.simulated = True
        if getattr(resp, "error", None) is not None:
            e = resp.error
            out.append((None, {"kind": getattr(e, "kind", "backend"), "message": getattr(e, "message", str(e))}))
            continue
        # `LLMClient.chat` already parsed the answer against the request's schema (ambiguity, safe repairs,
        # validation, re-asks): that is the one JSON check; an answer without a parsed value is a client bug
        if getattr(resp, "parsed", None) is None:
            out.append((None, {"kind": "bad_response", "message": "the client returned no parsed JSON value"}))
            continue
        note_repairs(d, stage or req.stage, resp)
        out.append((resp.parsed, None))
    return out


# ------------------------------------------------------------------------------------------------ schemas
CALL_SCHEMA = {"type": "object", "required": ["name", "arguments"], "additionalProperties": False,
               "properties": {"name": {"type": "string"}, "arguments": {"type": "object"}}}
PLAN_SCHEMA = {"type": "object", "required": ["subtasks"], "additionalProperties": False, "properties": {
    "subtasks": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["description", "tools"], "additionalProperties": False,
        "properties": {"description": {"type": "string", "minLength": 1},
                       "tools": {"type": "array", "items": {"type": "string"}}}}}}}
DESCRIBE_SCHEMA = {"type": "object", "required": ["subtasks"], "additionalProperties": False, "properties": {
    "subtasks": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["description"], "additionalProperties": False,
        "properties": {"description": {"type": "string", "minLength": 1}}}}}}
# one part of a skeleton (environment domains): the fields a request asks for are required, the rest left out
PART_SCHEMA = {"type": "object", "additionalProperties": False, "required": [], "properties": {
    "reply": {"type": "string", "minLength": 1}, "user": {"type": "string", "minLength": 1},
    "steps": {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": 1, "items": CALL_SCHEMA}}}}
SUBTRAJ_SCHEMA = {"type": "object", "required": ["user", "steps", "reply"], "additionalProperties": False,
                  "properties": {"user": {"type": "string", "minLength": 1},
                                 "steps": {"type": "array", "minItems": 1,
                                           "items": {"type": "array", "minItems": 1, "items": CALL_SCHEMA}},
                                 "reply": {"type": "string", "minLength": 1}}}
POOL_CALL_SCHEMA = {"type": "object", "required": ["name", "arguments", "output"], "additionalProperties": False,
                    "properties": {"name": {"type": "string"}, "arguments": {"type": "object"}, "output": {}}}
SUBTRAJ_POOL_SCHEMA = {"type": "object", "required": ["user", "steps", "reply"], "additionalProperties": False,
                       "properties": {"user": {"type": "string", "minLength": 1},
                                      "steps": {"type": "array", "minItems": 1,
                                                "items": {"type": "array", "minItems": 1, "items": POOL_CALL_SCHEMA}},
                                      "reply": {"type": "string", "minLength": 1}}}
TURNS_SCHEMA = {"type": "object", "required": ["turns"], "additionalProperties": False, "properties": {
    "turns": {"type": "array", "items": {"type": "string"}}}}
FILLS_SCHEMA = {"type": "object", "required": ["fills"], "additionalProperties": False, "properties": {
    "fills": {"type": "array", "items": {"type": "object", "required": ["mask", "content"],
                                         "additionalProperties": False,
                                         "properties": {"mask": {"type": "integer"},
                                                        "content": {"type": "string", "minLength": 1}}}}}}
JUDGE_SCHEMA = {"type": "object", "required": ["keep", "reason"], "additionalProperties": False, "properties": {
    "keep": {"enum": ["new", "old"]}, "reason": {"type": "string"}}}
VERDICT_SCHEMA = {"type": "object", "required": ["pass", "reason"], "additionalProperties": False, "properties": {
    "pass": {"type": "boolean"}, "reason": {"type": "string"}}}


def show_dialogue(messages: list[dict[str, Any]], masks: Optional[dict[int, str]] = None) -> str:
    """A compact transcript for prompts; `masks` maps message index -> placeholder text."""
    lines = []
    for i, m in enumerate(messages):
        if masks and i in masks:
            lines.append(f"[{i}] {m['role']}: {masks[i]}")
            continue
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = "; ".join(f"{tc['function']['name']}({json.dumps(tc['function']['arguments'], ensure_ascii=False)})"
                              for tc in m["tool_calls"])
            txt = (m.get("content") or "").strip()
            lines.append(f"[{i}] assistant: {txt + ' ' if txt else ''}CALLS {calls}")
        elif m["role"] == "tool":
            lines.append(f"[{i}] tool {m.get('name')}: {m.get('content')}")
        else:
            lines.append(f"[{i}] {m['role']}: {m.get('content')}")
    return "\n".join(lines)


from . import offline as _offline  # noqa: E402,F401  (registers the offline answers of this package's prompts)
