"""Turn a model's JSON answer into a validated value, or a typed failure saying why.

`parse_json_answer(text, schema)` is pure and never raises for a bad answer. Steps, cheapest first:

1. strict `json.loads` of the stripped text;
2. pre-cleaning we can reason about: strip Markdown code fences and a leading "json" tag, cut prose
   before the first ``{``/``[``, take the first complete JSON value when prose trails after it
   (`JSONDecoder.raw_decode`), and unwrap a JSON string that itself holds an object (double encoding);
3. the `json-repair` package for what is left: trailing commas, single quotes, Python literals
   (True/False/None), unquoted keys (never closing brackets: see below). Its output is only
   accepted when the cleaned text *looks like* JSON (starts with ``{`` or ``[``) and the result is an object
   or array: json-repair turns any prose into ``""``, which must stay a failure, not an answer;
4. `jsonschema` validation (the real guard: a repair that changed meaning rarely still fits the schema).

Refused outright, never repaired (each a typed failure the client re-asks): non-finite numbers (NaN,
Infinity, 1e999: not JSON, and they break downstream writers), ambiguous JSON (a duplicate key such as
``{"name": "decoy", "name": "add_payee"}``, or a second JSON value after the first), and a truncated
answer (the backend says ``finish_reason == "length"``, or the text ends inside a string or before its
brackets close: closing it would invent the end of a cut answer, e.g. a user turn ``"Hell"``).
Strings in the value are cleaned (`clean_text`: lone surrogates, control characters) so writers never fail,
and a value holding chat-template control tokens or a giant string is ``unsafe_text`` (see `unsafe_strings`).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional

from .sanitize import clean_text, clean_value  # noqa: F401  (re-exported: the parsers clean what they return)
from .types import LLMFailure

# failure kinds this module produces; the client re-asks every one of them within its retry budget
JSON_FAILURES = ("invalid_json", "schema_mismatch", "truncated", "ambiguous_json", "unsafe_text")

# Chat-template control tokens (Qwen/Hermes, Llama 3): inside generated *data* the chat template would read them
# as structure at training time, so an answer holding one in a string is refused (``unsafe_text``) and re-asked.
CONTROL_TOKENS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool_call>", "</tool_call>", "<tool_response>",
                  "</tool_response>", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                  "<|eom_id|>", "<|python_tag|>")
MAX_JSON_STRING = 20_000  # chosen: no turn, argument or simulated tool output the prompts ask for comes near this

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)(?:```|$)", re.S)
# C0 controls except tab/newline/carriage return, DEL, and the UTF-16 noncharacters


class RefusedJSON(ValueError):
    """JSON that parses but must not be used: ``kind`` is ambiguous_json (duplicate key) or invalid_json
    (a non-finite number)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _no_duplicates(pairs):
    seen = set()
    for k, _ in pairs:
        if k in seen:
            raise RefusedJSON("ambiguous_json", f"duplicate key {k!r} in one JSON object")
        seen.add(k)
    return dict(pairs)


def _no_constant(name):
    raise RefusedJSON("invalid_json", f"{name} is not a JSON number")


def _finite_float(text):
    v = float(text)
    if not math.isfinite(v):
        raise RefusedJSON("invalid_json", f"{text} overflows to a non-finite number")
    return v


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                            parse_float=_finite_float)


def strict_loads(text: str) -> Any:
    """`json.loads` that refuses duplicate keys and non-finite numbers (`RefusedJSON`); `JSONDecodeError` for
    text that is not JSON. The one strict JSON reader for model output (answers and tool-call arguments)."""
    value, end = _DECODER.raw_decode(text, _skip_ws(text, 0))
    if _skip_ws(text, end) != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def unsafe_strings(value: Any) -> Optional[str]:
    """Why a parsed answer must not become data (a control token, a giant string), else None."""
    if isinstance(value, str):
        if len(value) > MAX_JSON_STRING:
            return f"a string of {len(value)} characters (limit {MAX_JSON_STRING})"
        for tok in CONTROL_TOKENS:
            if tok in value:
                return f"the chat-template control token {tok!r} inside a string"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            why = unsafe_strings(k) or unsafe_strings(v)
            if why:
                return why
    if isinstance(value, list):
        for v in value:
            why = unsafe_strings(v)
            if why:
                return why
    return None


def _scan(text: str) -> tuple[Optional[str], bool]:
    """(a key that occurs twice in one object, else None; True when a string or bracket is still open at the
    end) for loosely-JSON ``text`` (quotes of either kind). Used before json-repair, which would silently keep
    the last of two keys and close a cut answer."""
    stack: list[Optional[set]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "{[":
            stack.append(set() if ch == "{" else None)
        elif ch in "}]":
            if stack:
                stack.pop()
        elif ch in "\"'":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                return None, True
            s = text[i + 1:j]
            k = _skip_ws(text, j + 1)
            if k < n and text[k] == ":" and stack and stack[-1] is not None:
                if s in stack[-1]:
                    return s, False
                stack[-1].add(s)
            i = j
        i += 1
    return None, bool(stack)


@dataclass
class JSONAnswer:
    """Result of parsing one answer: ``value`` when ``failure`` is None; ``repairs`` says what was fixed."""

    value: Any = None
    failure: Optional[LLMFailure] = None
    repairs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None


@lru_cache(maxsize=256)
def _validator_for_json(schema_json: str):
    import jsonschema

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def schema_validator(schema: dict[str, Any]):
    """A cached jsonschema validator; raises `jsonschema.SchemaError` for a broken schema (a caller bug)."""
    return _validator_for_json(json.dumps(schema, sort_keys=True))


def schema_errors(value: Any, schema: Optional[dict[str, Any]], limit: int = 3) -> list[str]:
    """Human-readable schema violations (path: message), at most ``limit``, best first."""
    if not schema:
        return []
    errs = sorted(schema_validator(schema).iter_errors(value), key=lambda e: (len(list(e.absolute_path)), e.message))
    out = []
    for e in errs[:limit]:
        where = "/".join(str(p) for p in e.absolute_path) or "<root>"
        out.append(f"{where}: {e.message[:200]}")
    return out


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _strip_fences(text: str) -> tuple[str, bool]:
    m = _FENCE.search(text)
    if not m:
        return text, False
    return m.group(2).strip(), True


def _first_bracket(text: str) -> int:
    idx = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    return min(idx) if idx else -1


def _loads_strict(text: str) -> tuple[bool, Any]:
    """(True, value), or (False, None) when ``text`` is not one JSON value; `RefusedJSON` propagates."""
    try:
        return True, strict_loads(text)
    except (json.JSONDecodeError, RecursionError):
        return False, None


class _Truncated(Exception):
    pass


def _cut_short(err: json.JSONDecodeError, text: str) -> bool:
    """The decoder ran out of text: an unterminated string, or an error at the very end of the text."""
    return err.msg.startswith("Unterminated string") or err.pos >= len(text.rstrip())


def _candidate(text: str) -> tuple[Any, list[str], bool]:
    """Returns (value, repairs, parsed?) without schema checks."""
    repairs: list[str] = []
    t = text.strip().lstrip("\ufeff")
    ok, value = _loads_strict(t)
    if ok:
        return value, repairs, True
    t2, fenced = _strip_fences(t)
    if fenced:
        repairs.append("code_fence")
        t = t2
        ok, value = _loads_strict(t)
        if ok:
            return value, repairs, True
    if t[:4].lower() == "json" and t[4:5] in ("\n", " ", ":"):
        t = t[4:].lstrip(" :\n")
        repairs.append("json_tag")
    start = _first_bracket(t)
    if start < 0:
        return None, repairs, False
    if start > 0:
        repairs.append("leading_text")
        t = t[start:]
    try:
        value, end = _DECODER.raw_decode(t)
        rest = t[end:].strip()
        if rest:
            nxt = _first_bracket(rest)
            if nxt >= 0:
                try:
                    _DECODER.raw_decode(rest[nxt:])
                except (json.JSONDecodeError, RefusedJSON, RecursionError):
                    pass
                else:
                    raise RefusedJSON("ambiguous_json", "the answer holds more than one JSON value")
            repairs.append("trailing_text")
        return value, repairs, True
    except json.JSONDecodeError as e:
        if _cut_short(e, t):
            raise _Truncated() from None
    except RecursionError:
        pass
    dup, unclosed = _scan(t)
    if dup is not None:
        raise RefusedJSON("ambiguous_json", f"duplicate key {dup!r} in one JSON object")
    if unclosed:
        raise _Truncated()
    # json-repair: trailing commas, quotes, python literals, unquoted keys
    try:
        import json_repair

        value = json_repair.loads(t)
    except Exception:  # the repairer itself failing is one more way of "not JSON"
        return None, repairs, False
    if isinstance(value, (dict, list)) and (value or t.rstrip()[-1:] in ("}", "]")) and _same_tokens(t, value):
        repairs.append("json_repair")
        return value, repairs, True
    return None, repairs, False


# The lexical atoms of an almost-JSON text: quoted strings (double, single, typographic quotes), numbers and
# bare words. A repair may change the punctuation between them and how a literal is spelled, nothing else.
_ATOM = re.compile(r'"(?:\\.|[^"\\])*"' r"|'(?:\\.|[^'\\])*'" "|\u201c[^\u201d]*\u201d"
                   r"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[^\W\d]\w*")
_WORDS = {"true": True, "True": True, "false": False, "False": False, "null": None, "None": None}


def _text_atoms(text: str) -> list[Any]:
    out: list[Any] = []
    for m in _ATOM.finditer(text):
        a = m.group(0)
        if a[0] == '"':
            try:
                out.append(json.loads(a))
            except json.JSONDecodeError:
                out.append(a[1:-1])
        elif a[0] in "'\u201c":
            out.append(a[1:-1].replace("\\'", "'"))
        elif a[0] == "-" or a[0].isdigit():
            out.append(float(a))
        else:
            out.append(_WORDS.get(a, a))
    return out


def _value_atoms(value: Any, out: list[Any]) -> list[Any]:
    stack = [value]
    while stack:  # iterative, in document order
        v = stack.pop()
        if isinstance(v, dict):
            for k, x in reversed(list(v.items())):
                stack.append(x)
                stack.append(str(k))
        elif isinstance(v, list):
            stack.extend(reversed(v))
        elif isinstance(v, bool) or v is None:
            out.append(v)
        elif isinstance(v, (int, float)):
            out.append(float(v))
        else:
            out.append(str(v))
    return out


def _same_tokens(text: str, value: Any) -> bool:
    """True when json-repair kept every string, number and word of the text, in order, and added none.

    json-repair accepts almost anything and sometimes changes what an answer says: ``{"x": 1 2}`` becomes
    ``{"x": 1}``, ``{"status": }`` becomes ``{"status": ""}``, ``{"k"= "v"}`` becomes ``["k\"= \"v"]``. Such
    a value can still fit the schema and would become data; comparing the atoms before and after refuses it
    (the client re-asks), while the repairs it is for (trailing commas, single quotes, Python literals,
    unquoted keys and bare-word values) keep every atom."""
    try:
        return _text_atoms(text) == _value_atoms(value, [])
    except (ValueError, OverflowError):
        return False


def parse_json_answer(text: Optional[str], schema: Optional[dict[str, Any]] = None,
                      finish_reason: Optional[str] = None) -> JSONAnswer:
    """Parse, repair what is safe, validate against ``schema``. Never raises for a bad answer.

    Failure kinds: ``invalid_json`` (no JSON value could be read, or a non-finite number), ``truncated``
    (``finish_reason == "length"`` or the text stops before the value closes), ``ambiguous_json`` (duplicate
    keys, several JSON values), ``unsafe_text`` (chat-template control tokens or a string over
    MAX_JSON_STRING characters) and ``schema_mismatch`` (JSON, but not what the schema asks); ``raw`` keeps the
    (cleaned) text. A broken *schema* is a caller bug and raises `jsonschema.SchemaError`.
    """
    if schema:
        schema_validator(schema)  # raise early for a broken schema, before blaming the model
    raw = clean_text(text if isinstance(text, str) else ("" if text is None else str(text)))
    if not raw.strip():
        return JSONAnswer(failure=LLMFailure("invalid_json", "empty answer", raw=raw))
    if finish_reason == "length":
        return JSONAnswer(failure=LLMFailure("truncated", "the answer was cut at max_tokens", raw=raw))
    try:
        value, repairs, parsed = _candidate(raw)
    except RefusedJSON as e:
        return JSONAnswer(failure=LLMFailure(e.kind, str(e), raw=raw))
    except _Truncated:
        return JSONAnswer(failure=LLMFailure("truncated", "the answer stops before its JSON value is complete "
                                                          "(cut off?)", raw=raw))
    if not parsed:
        return JSONAnswer(failure=LLMFailure("invalid_json", "no JSON object or array could be read from the answer",
                                             raw=raw), repairs=repairs)
    if not _finite(value):
        return JSONAnswer(failure=LLMFailure("invalid_json", "NaN/Infinity are not JSON numbers", raw=raw),
                          repairs=repairs)
    # a JSON string holding JSON (double-encoded answer): unwrap once when the schema wants a container
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            ok, inner = _loads_strict(value.strip())
        except RefusedJSON as e:
            return JSONAnswer(failure=LLMFailure(e.kind, str(e), raw=raw), repairs=repairs)
        if ok:
            value = inner
            repairs.append("double_encoded")
    value = clean_value(value)
    why = unsafe_strings(value)
    if why:
        return JSONAnswer(failure=LLMFailure("unsafe_text", f"the answer holds {why}", raw=raw), repairs=repairs)
    if schema:
        errs = schema_errors(value, schema)
        if errs:
            return JSONAnswer(failure=LLMFailure("schema_mismatch", "; ".join(errs), raw=raw), repairs=repairs,
                              value=value)
    return JSONAnswer(value=value, repairs=repairs)


def retry_message(failure: LLMFailure, schema: Optional[dict[str, Any]]) -> str:
    """The user turn appended when re-asking after a bad JSON answer: says what was wrong and what is wanted."""
    what = {"invalid_json": f"it was not valid JSON ({failure.message})",
            "truncated": "it was cut off before the JSON value was complete; answer more briefly",
            "ambiguous_json": f"it was ambiguous ({failure.message})",
            "unsafe_text": f"it cannot be used as data ({failure.message})",
            }.get(failure.kind, f"it did not match the required JSON Schema ({failure.message})")
    schema_txt = json.dumps(schema, ensure_ascii=False)[:4000] if schema else "{}"
    return (f"Your previous answer could not be used: {what}. Answer again with ONLY one JSON value, no prose "
            f"and no code fences, valid against this JSON Schema:\n{schema_txt}")
