"""Tool calls written as text by a model -> OpenAI-shaped calls with dict arguments. Pure, never raises.

`parse_tool_calls(text, fmt)` returns ``(content, calls, errors)``:

* ``content``: the text with every *parsed* call removed (what the assistant said besides calling);
  an unparseable call block stays in ``content`` so nothing the model wrote is silently lost;
* ``calls``: ``[{"id": "call_<i>", "type": "function", "function": {"name": str, "arguments": dict}}]``;
* ``errors``: one line per block that looked like a call but could not be read.

Formats (``fmt``): ``hermes`` (Qwen2.5/Hermes ``<tool_call>{"name", "arguments"}</tool_call>``, the format of
our chat template), ``llama3`` (Llama-3.1 JSON ``{"name", "parameters"}``, optionally after
``<|python_tag|>``, several separated by ``;`` or in a list), ``pythonic`` (``[f(a=1), g()]``, parsed with
`toolace_mt.pycalls`, never evaluated), ``auto`` (picks by what the text looks like). The parsing is strict
JSON (`jsonparse.strict_loads`): a benchmark must not credit a call the model did not write correctly, so a
duplicate key (``{"name": "decoy", "name": "add_payee"}``) or a non-finite number (NaN, Infinity) makes the
block an error, never a call. Strings of parsed calls are cleaned (`jsonparse.clean_value`).
"""
from __future__ import annotations

import json
import re
from typing import Any

from .jsonparse import _DECODER, RefusedJSON, clean_text, clean_value, strict_loads

FORMATS = ("auto", "hermes", "llama3", "llama3_json", "pythonic", "json")

_HERMES = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>|<tool_call>\s*(.*)$", re.S)
_PY_TAG = "<|python_tag|>"
_FENCED = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```$", re.S)


def make_call(name: str, arguments: dict[str, Any], index: int) -> dict[str, Any]:
    return {"id": f"call_{index}", "type": "function", "function": {"name": name, "arguments": arguments}}


def _call_from_obj(obj: Any) -> tuple[dict[str, Any] | None, str | None]:
    """{"name", "arguments"|"parameters"} (or OpenAI {"function": {...}}) -> (name, args) or an error."""
    if not isinstance(obj, dict):
        return None, f"call is not a JSON object: {str(obj)[:80]}"
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return None, f"call has no name: {json.dumps(obj)[:80]}"
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = strict_loads(args) if args.strip() else {}
        except json.JSONDecodeError as e:
            return None, f"{name}: arguments are not JSON: {e.msg}"
        except RefusedJSON as e:
            return None, f"{name}: arguments refused: {e}"
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return None, f"{name}: arguments must be an object, got {type(args).__name__}"
    return {"name": name, "arguments": args}, None


def _parse_hermes(text: str) -> tuple[str, list[dict], list[str]]:
    calls, errors, kept = [], [], []
    pos = 0
    for m in _HERMES.finditer(text):
        kept.append(text[pos:m.start()])
        body = m.group(1) if m.group(1) is not None else m.group(2)
        try:
            obj = strict_loads(body)
        except json.JSONDecodeError as e:
            obj, err = None, f"<tool_call> block is not JSON ({e.msg}): {body[:80]!r}"
        except RefusedJSON as e:
            obj, err = None, f"<tool_call> block refused ({e}): {body[:80]!r}"
        else:
            obj, err = _call_from_obj(obj)
        if err:
            errors.append(err)
            kept.append(m.group(0))  # keep what could not be read
        else:
            calls.append(obj)
        pos = m.end()
    kept.append(text[pos:])
    return "".join(kept).strip(), calls, errors


def _split_json_values(text: str) -> list[Any] | None:
    """`{..}; {..}` or `{..}\n{..}` or `[{..}, {..}]` -> list of values, or None if it is not all JSON.
    `RefusedJSON` (duplicate key, NaN) propagates."""
    dec = _DECODER
    out, i, n = [], 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n;,":
            i += 1
        if i >= n:
            break
        try:
            value, end = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            return None
        out.append(value)
        i = end
    if len(out) == 1 and isinstance(out[0], list):
        return out[0]
    return out


def _parse_llama3(text: str) -> tuple[str, list[dict], list[str]]:
    t = text.strip()
    if t.startswith(_PY_TAG):
        t = t[len(_PY_TAG):].strip()
    m = _FENCED.match(t)
    if m:
        t = m.group(1).strip()
    if not t.startswith(("{", "[")):
        return text.strip(), [], []
    try:
        values = _split_json_values(t)
    except RefusedJSON as e:
        return text.strip(), [], [f"JSON call refused ({e}): {t[:80]!r}"]
    if values is None:
        return text.strip(), [], [f"text starts like a JSON call but is not valid JSON: {t[:80]!r}"]
    calls, errors = [], []
    for v in values:
        call, err = _call_from_obj(v)
        if err:
            errors.append(err)
        else:
            calls.append(call)
    if errors:  # a JSON answer that is not (all) calls: keep it as text
        return text.strip(), calls, errors
    return "", calls, errors


def _parse_pythonic(text: str) -> tuple[str, list[dict], list[str]]:
    from toolace_mt.pycalls import PyCallError, parse_python_calls

    t = text.strip()
    m = _FENCED.match(t)
    if m:
        t = m.group(1).strip()
    if not t.startswith("[") or not t.endswith("]"):
        return text.strip(), [], []
    try:
        calls = parse_python_calls(t)
    except PyCallError as e:
        return text.strip(), [], [f"not a python call list: {e}"]
    except (RecursionError, MemoryError, ValueError) as e:  # pathological nesting
        return text.strip(), [], [f"not a python call list: {type(e).__name__}"]
    return "", calls, []


def parse_tool_calls(text: str | None, fmt: str = "auto") -> tuple[str, list[dict[str, Any]], list[str]]:
    """Parse tool calls written in ``text``; see the module docstring. Never raises for any text."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown tool-call format {fmt!r}; one of {', '.join(FORMATS)}")
    text = text or ""
    try:
        if fmt == "hermes":
            content, calls, errors = _parse_hermes(text)
        elif fmt in ("llama3", "llama3_json", "json"):
            content, calls, errors = _parse_llama3(text)
        elif fmt == "pythonic":
            content, calls, errors = _parse_pythonic(text)
        else:
            content, calls, errors = _auto(text)
    except Exception as e:  # a parser bug must not cost the answer: keep the text and say why
        return text.strip(), [], [f"tool-call parser failed: {type(e).__name__}: {e}"]
    return clean_text(content), [make_call(clean_value(c["name"]), clean_value(c["arguments"]), i)
                     for i, c in enumerate(calls)], errors


def _auto(text: str) -> tuple[str, list[dict], list[str]]:
    if "<tool_call>" in text:
        return _parse_hermes(text)
    t = text.strip()
    m = _FENCED.match(t)
    inner = m.group(1).strip() if m else t
    if inner.startswith(_PY_TAG) or inner.startswith("{"):
        return _parse_llama3(text)
    if inner.startswith("["):
        content, calls, errors = _parse_llama3(text)
        if calls and not errors:
            return content, calls, errors
        content2, calls2, errors2 = _parse_pythonic(text)
        if calls2 or not errors2:
            return content2, calls2, errors2
        return text.strip(), [], errors + errors2
    return text.strip(), [], []
