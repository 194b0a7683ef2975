"""Turn a model's JSON answer into a validated value, or a typed failure saying why (ARCHITECTURE.md §5).

`parse_json_answer(text, schema)` is pure and never raises for a bad answer. Steps, cheapest first:

1. strict `json.loads` of the stripped text;
2. pre-cleaning we can reason about: strip Markdown code fences and a leading "json" tag, cut prose
   before the first ``{``/``[``, take the first complete JSON value when text trails after it
   (`JSONDecoder.raw_decode`), and unwrap a JSON string that itself holds an object (double encoding);
3. the `json-repair` package for what is left: trailing commas, single quotes, Python literals
   (True/False/None), unquoted keys, missing closing brackets of a truncated answer. Its output is only
   accepted when the cleaned text *looks like* JSON (starts with ``{`` or ``[``) and the result is an object
   or array: json-repair turns any prose into ``""``, which must stay a failure, not an answer;
4. `jsonschema` validation (the real guard: a repair that changed meaning rarely still fits the schema).

Non-finite numbers (NaN, Infinity) are refused: they are not JSON and break downstream writers.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional

from .types import LLMFailure

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)(?:```|$)", re.S)
_DECODER = json.JSONDecoder()


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
    try:
        return True, json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return False, None


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
        if t[end:].strip():
            repairs.append("trailing_text")
        return value, repairs, True
    except (json.JSONDecodeError, RecursionError):
        pass
    # json-repair: trailing commas, quotes, python literals, unquoted keys, truncated closing brackets
    try:
        import json_repair

        value = json_repair.loads(t)
    except Exception:  # the repairer itself failing is one more way of "not JSON"
        return None, repairs, False
    if isinstance(value, (dict, list)) and (value or t.rstrip()[-1:] in ("}", "]")):
        repairs.append("json_repair")
        return value, repairs, True
    return None, repairs, False


def parse_json_answer(text: Optional[str], schema: Optional[dict[str, Any]] = None) -> JSONAnswer:
    """Parse, repair what is safe, validate against ``schema``. Never raises for a bad answer.

    Failure kinds: ``invalid_json`` (no JSON value could be read) and ``schema_mismatch`` (JSON, but not what
    the schema asks); ``raw`` keeps the text. A broken *schema* is a caller bug and raises
    `jsonschema.SchemaError`.
    """
    if schema:
        schema_validator(schema)  # raise early for a broken schema, before blaming the model
    raw = text if isinstance(text, str) else ("" if text is None else str(text))
    if not raw.strip():
        return JSONAnswer(failure=LLMFailure("invalid_json", "empty answer", raw=raw))
    value, repairs, parsed = _candidate(raw)
    if not parsed:
        return JSONAnswer(failure=LLMFailure("invalid_json", "no JSON object or array could be read from the answer",
                                             raw=raw), repairs=repairs)
    if not _finite(value):
        return JSONAnswer(failure=LLMFailure("invalid_json", "NaN/Infinity are not JSON numbers", raw=raw),
                          repairs=repairs)
    # a JSON string holding JSON (double-encoded answer): unwrap once when the schema wants a container
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        ok, inner = _loads_strict(value.strip())
        if ok:
            value = inner
            repairs.append("double_encoded")
    if schema:
        errs = schema_errors(value, schema)
        if errs:
            return JSONAnswer(failure=LLMFailure("schema_mismatch", "; ".join(errs), raw=raw), repairs=repairs,
                              value=value)
    return JSONAnswer(value=value, repairs=repairs)


def retry_message(failure: LLMFailure, schema: Optional[dict[str, Any]]) -> str:
    """The user turn appended when re-asking after a bad JSON answer: says what was wrong and what is wanted."""
    what = ("it was not valid JSON" if failure.kind == "invalid_json"
            else f"it did not match the required JSON Schema ({failure.message})")
    schema_txt = json.dumps(schema, ensure_ascii=False)[:4000] if schema else "{}"
    return (f"Your previous answer could not be used: {what}. Answer again with ONLY one JSON value, no prose "
            f"and no code fences, valid against this JSON Schema:\n{schema_txt}")
