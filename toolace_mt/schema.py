"""The one dialogue format of the project: the OpenAI chat format, as TRL, vLLM and chat templates speak it.

`Dialogue` = id + tools + messages + meta.  Tool-call arguments are held as dicts in memory (the HF /
chat-template convention); the OpenAI wire form (a JSON string) is accepted on input and produced by
`Dialogue.to_openai()`.

Tools that become available mid-dialogue (BFCL miss_func style "tool awareness") are recorded in
``meta["tool_updates"] = [{"at": message_index, "tools": [tool, ...]}]``: the ``tools`` column holds the
tools available from the start, and a tool of an update may only be called at or after its index.

`validate_dialogue` returns every problem found, each naming the dialogue, the message and what is wrong;
`check_dialogue` raises `DialogueError` with all of them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Optional

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["system", "user", "assistant", "tool"]


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class Tool(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["function"] = "function"
    function: FunctionDef

    @property
    def name(self) -> str:
        return self.function.name


class FunctionCall(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("arguments", mode="before")
    @classmethod
    def _parse_arguments(cls, v: Any) -> Any:
        # OpenAI wire format carries arguments as a JSON string; keep dicts in memory (chat templates `tojson` them).
        if isinstance(v, str):
            try:
                v = json.loads(v) if v.strip() else {}
            except json.JSONDecodeError as e:
                raise ValueError(f"arguments are not valid JSON: {e.msg}: {v[:80]!r}") from e
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise ValueError(f"arguments must be a JSON object, got {type(v).__name__}")
        return v


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall

    @property
    def name(self) -> str:
        return self.function.name

    @property
    def arguments(self) -> dict[str, Any]:
        return self.function.arguments


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Role
    content: Optional[str] = None
    tool_calls: Optional[list[ToolCall]] = None
    tool_call_id: Optional[str] = None
    name: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            d["tool_calls"] = [tc.model_dump() for tc in self.tool_calls]
        if self.role == "tool":
            d["tool_call_id"] = self.tool_call_id
            d["name"] = self.name
        return d


class Dialogue(BaseModel):
    id: str
    tools: list[Tool] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)

    # --- tools visible at a point of the dialogue -------------------------------------------------
    def tool_updates(self) -> list[tuple[int, list[Tool]]]:
        ups = []
        for u in self.meta.get("tool_updates") or []:
            ups.append((int(u["at"]), [t if isinstance(t, Tool) else Tool.model_validate(t) for t in u["tools"]]))
        return ups

    def tools_at(self, index: int) -> dict[str, Tool]:
        """Tools callable by the message at `index` (initial tools plus updates made at or before it)."""
        avail = {t.name: t for t in self.tools}
        for at, tools in self.tool_updates():
            if at <= index:
                avail.update({t.name: t for t in tools})
        return avail

    def all_tools(self) -> dict[str, Tool]:
        return self.tools_at(len(self.messages) + 1)

    # --- conversions ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tools": [t.model_dump() for t in self.tools],
            "messages": [m.to_dict() for m in self.messages],
            "meta": self.meta,
        }

    def to_openai(self) -> dict[str, Any]:
        """Wire format: arguments as JSON strings."""
        d = self.to_dict()
        for m in d["messages"]:
            for tc in m.get("tool_calls") or []:
                tc["function"]["arguments"] = json.dumps(tc["function"]["arguments"], ensure_ascii=False)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Dialogue":
        return cls.model_validate(d)

    def tool_calls(self) -> list[tuple[int, ToolCall]]:
        return [(i, tc) for i, m in enumerate(self.messages) for tc in (m.tool_calls or [])]


# ------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dialogue: where (message index, -1 = the dialogue) and what."""

    dialogue_id: str
    index: int
    code: str
    detail: str

    def __str__(self) -> str:
        where = f"message {self.index}" if self.index >= 0 else "dialogue"
        return f"dialogue {self.dialogue_id!r}, {where}: [{self.code}] {self.detail}"


class DialogueError(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


_validators: dict[str, jsonschema.protocols.Validator] = {}


def _validator(schema: dict[str, Any]):
    key = json.dumps(schema, sort_keys=True)
    v = _validators.get(key)
    if v is None:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        v = _validators[key] = cls(schema)
    return v


_checked_schemas: set[str] = set()  # schemas already found valid: meta-validation is costly (~2 ms each)


def check_schema(schema: dict[str, Any]) -> None:
    """Raise jsonschema.SchemaError if `schema` is not a valid JSON Schema."""
    key = json.dumps(schema, sort_keys=True)
    if key in _checked_schemas:
        return
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    if len(_checked_schemas) < 100_000:
        _checked_schemas.add(key)


def argument_errors(tool: Tool, arguments: dict[str, Any]) -> list[str]:
    """Messages for every way `arguments` violate the tool's JSON Schema (empty = valid)."""
    errs = sorted(_validator(tool.function.parameters).iter_errors(arguments), key=lambda e: list(e.path))
    return [f"{'/'.join(map(str, e.path)) or '(arguments)'}: {e.message}" for e in errs]


def validate_dialogue(d: Dialogue | dict[str, Any]) -> list[Problem]:
    """All problems of a dialogue. Legal order: [system] user (assistant (tool*))* ... ending with assistant text.

    Rules: the first non-system message is a user message; an assistant message follows a user or tool
    message (or an assistant text reply, for a multi-message reply is not allowed: we reject it); every
    tool message answers a call of the nearest preceding assistant message by id; every call is answered
    before the next assistant or user message; every call names a tool available at that point and its
    arguments validate against the tool's schema; the dialogue ends with an assistant message.
    """
    if isinstance(d, dict):
        did = str(d.get("id", "?"))
        try:
            d = Dialogue.model_validate(d)
        except Exception as e:  # pydantic ValidationError: report it as a problem, not a crash
            return [Problem(did, -1, "malformed", str(e).replace("\n", "; "))]
    out: list[Problem] = []
    P = lambda i, code, detail: out.append(Problem(d.id, i, code, detail))  # noqa: E731

    if not d.messages:
        P(-1, "empty", "dialogue has no messages")
        return out
    seen_names: set[str] = set()
    for t in d.tools:
        if t.name in seen_names:
            P(-1, "duplicate_tool", f"tool {t.name!r} is listed twice")
        seen_names.add(t.name)
        try:
            check_schema(t.function.parameters)
        except jsonschema.SchemaError as e:
            P(-1, "bad_tool_schema", f"tool {t.name!r}: {e.message}")

    pending: dict[str, str] = {}  # call id -> tool name, calls of the last assistant message not yet answered
    prev: Optional[str] = None
    for i, m in enumerate(d.messages):
        r = m.role
        if r == "system":
            if i != 0:
                P(i, "role_order", "system message is only allowed first")
        elif r == "user":
            if prev == "user":
                P(i, "role_order", "two user messages in a row")
            elif prev == "assistant" and pending:
                pass  # reported below as unanswered
            if prev not in (None, "system", "assistant"):
                if prev == "tool":
                    P(i, "role_order", "user message right after a tool message (assistant must respond first)")
        elif r == "assistant":
            if prev in (None, "system"):
                P(i, "role_order", "assistant speaks before any user message")
            elif prev == "assistant" and not pending:
                P(i, "role_order", "two assistant messages in a row")
            if not m.content and not m.tool_calls:
                P(i, "empty_message", "assistant message has neither content nor tool calls")
            avail = d.tools_at(i)
            ids = set()
            for tc in m.tool_calls or []:
                if tc.id in ids:
                    P(i, "duplicate_call_id", f"call id {tc.id!r} used twice in one message")
                ids.add(tc.id)
                tool = avail.get(tc.name)
                if tool is None:
                    later = tc.name in d.all_tools()
                    P(i, "unknown_tool", f"call {tc.id!r} names tool {tc.name!r}, which is "
                      + ("not available yet at this point" if later else "not a tool of this dialogue"))
                    continue
                for err in argument_errors(tool, tc.arguments):
                    P(i, "bad_arguments", f"call {tc.id!r} to {tc.name!r}: {err}")
        elif r == "tool":
            if prev not in ("assistant", "tool") or (prev == "assistant" and not d.messages[i - 1].tool_calls):
                P(i, "role_order", "tool message does not follow an assistant tool call")
            if m.tool_call_id is None:
                P(i, "missing_tool_call_id", "tool message has no tool_call_id")
            elif m.tool_call_id not in pending:
                P(i, "unmatched_tool_call_id", f"tool_call_id {m.tool_call_id!r} answers no pending call")
            else:
                name = pending.pop(m.tool_call_id)
                if m.name is not None and m.name != name:
                    P(i, "tool_name_mismatch", f"tool message names {m.name!r} but call {m.tool_call_id!r} was to {name!r}")
            if m.content is None:
                P(i, "empty_message", "tool message has no content")
        # unanswered calls when the next non-tool message arrives
        if r in ("user", "assistant") and pending:
            P(i, "unanswered_call", f"call(s) {sorted(pending)} were never answered by a tool message")
            pending = {}
        if r == "assistant":
            pending = {tc.id: tc.name for tc in (m.tool_calls or [])}
        prev = r
    if pending:
        P(len(d.messages) - 1, "unanswered_call", f"call(s) {sorted(pending)} were never answered by a tool message")
    last = d.messages[-1]
    if last.role != "assistant" or last.tool_calls:
        P(len(d.messages) - 1, "bad_ending", "dialogue must end with an assistant text reply")
    return out


def check_dialogue(d: Dialogue | dict[str, Any]) -> Dialogue:
    """Validate and return the Dialogue; raise DialogueError listing every problem."""
    problems = validate_dialogue(d)
    if problems:
        raise DialogueError(problems)
    return d if isinstance(d, Dialogue) else Dialogue.model_validate(d)
