"""Shared pieces of text-generating policies: message normalisation, the prompted tool-use system prompt,
and turning generated text into a `PolicyOutput` (unparseable text is a text answer, never a crash)."""
from __future__ import annotations

import json
from typing import Any, Optional

from ..policy import PolicyOutput

_FORMAT_HELP = {
    "pythonic": "To call functions, answer ONLY with a Python list of calls, e.g. [func_name1(param=value), func_name2(param=value)].",
    "hermes": 'To call a function, answer with one <tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call> block per call.',
    "llama3": 'To call a function, answer ONLY with JSON {"name": <function-name>, "parameters": <args-json-object>} (one object per call, separated by ";").',
}
_FORMAT_HELP["auto"] = _FORMAT_HELP["hermes"]


def tool_prompt(tools: list[dict[str, Any]], fmt: str) -> str:
    """A system prompt that lists the tools as JSON and says how to write calls (prompted mode)."""
    docs = "\n".join(json.dumps(t.get("function", t), ensure_ascii=False) for t in tools)
    return ("You are an expert in composing functions. You are given a question and a set of possible functions. "
            "Make one or more function calls to achieve the purpose, or answer in plain text when no call is needed "
            "or when required information is missing (then ask for it).\n"
            f"{_FORMAT_HELP.get(fmt, _FORMAT_HELP['hermes'])}\n"
            f"Here is the list of functions you can invoke, in JSON format:\n{docs}")


def decoded_arguments(fn: dict[str, Any]) -> Any:
    """A call's arguments as a value: OpenAI wire format carries them as a JSON string (unreadable -> {})."""
    args = fn.get("arguments") or {}
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            args = {}
    return args


def chat_messages(messages: list[dict[str, Any]], system_prompt: Optional[str]) -> list[dict[str, Any]]:
    """OpenAI-format messages with tool-call arguments as dicts (what chat templates expect); a configured
    system prompt is prepended (or merged into the existing system message)."""
    out = []
    for m in messages:
        m = dict(m)
        if m.get("tool_calls"):
            calls = []
            for i, c in enumerate(m["tool_calls"]):
                fn = c.get("function", c)
                args = decoded_arguments(fn)
                calls.append({"id": c.get("id", f"call_{i}"), "type": "function",
                              "function": {"name": fn.get("name", ""), "arguments": args}})
            m["tool_calls"] = calls
            m.setdefault("content", "")
        out.append(m)
    if system_prompt:
        if out and out[0].get("role") == "system":
            out[0] = {**out[0], "content": f"{system_prompt}\n\n{out[0].get('content') or ''}".strip()}
        else:
            out.insert(0, {"role": "system", "content": system_prompt})
    return out


def text_to_output(text: str, fmt: str, prompt_tokens: int = 0, completion_tokens: int = 0) -> PolicyOutput:
    """Parse generated text into content + tool calls with `toolace_mt.llm.toolparse`; whatever fails to
    parse is recorded in ``parse_errors`` and the text stays the answer."""
    from toolace_mt.llm.toolparse import parse_tool_calls

    try:
        content, calls, errors = parse_tool_calls(text, fmt="auto" if fmt in ("auto", "native") else fmt)
    except Exception as e:  # the parser promises not to raise; if it does, keep the text and say why
        content, calls, errors = text, [], [f"parser crashed: {type(e).__name__}: {e}"]
    norm = []
    for c in calls or []:
        fn = c.get("function", c) if isinstance(c, dict) else {}
        args = fn.get("arguments") or {}
        if isinstance(args, dict) and isinstance(fn.get("name"), str):
            norm.append({"name": fn["name"], "arguments": args})
        else:
            errors = list(errors) + [f"dropped malformed call {str(c)[:80]}"]
    return PolicyOutput(content=content, tool_calls=norm, raw=text, parse_errors=list(errors),
                        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
