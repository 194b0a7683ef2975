"""Values against the visible transcript, the same way for both generation methods.

* `resolve_reference`: "the order id from that result" -> the value a tool output in the transcript gives,
  used by the MAS assistant and by any ToolACE-MT stage that reads such a phrase.
* `mentions_token` / `id_tokens`: whole-token matching of ids and numbers (``C47`` is not shown by ``C473``),
  used by the offline stand-ins and the verifiers.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Optional

from .plan import produced_values

ID_TOKEN = re.compile(r"(?<![\w.-])(?=[\w.@-]*\d)[A-Za-z0-9][\w.@-]*[A-Za-z0-9]|(?<![\w.-])\d(?![\w.-])")
NUM = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")


def is_error_output(o: Any) -> bool:
    return isinstance(o, dict) and "error" in o and "message" in o


def atoms(v: Any) -> list[Any]:
    """The scalar leaves of a JSON value (no booleans, nulls or empty strings): the values a call or output holds."""
    if isinstance(v, dict):
        return [a for x in v.values() for a in atoms(x)]
    if isinstance(v, list):
        return [a for x in v for a in atoms(x)]
    return [] if isinstance(v, bool) or v is None or v == "" else [v]


def list_lengths(v: Any) -> set[int]:
    """The length of every list inside a JSON value (a reply's "3 items" must be one of them)."""
    if isinstance(v, list):
        return {len(v)} | {n for x in v for n in list_lengths(x)}
    if isinstance(v, dict):
        return {n for x in v.values() for n in list_lengths(x)}
    return set()


def loose_args(tc: dict) -> dict:
    """A recorded call's arguments as a dict, tolerating any shape (verification reads data from elsewhere)."""
    a = tc.get("function", {}).get("arguments", {})
    if isinstance(a, str):
        try:
            a = json.loads(a)
        except json.JSONDecodeError:
            return {}
    return a if isinstance(a, dict) else {}


def _clean(tok: str) -> str:
    return tok.rstrip(".")


def id_tokens(s: str) -> list[str]:
    """Tokens of a text that hold a digit (ids, amounts, dates), trailing sentence periods removed."""
    return [_clean(t) for t in ID_TOKEN.findall(s or "")]


def mentions_token(textv: str, v: Any) -> bool:
    """Does the text state value `v` as a whole token? Numbers compare by value; strings case-insensitively."""
    if isinstance(v, bool) or v is None:
        return True
    if isinstance(v, (int, float)):
        return any(float(x) == float(v) for x in NUM.findall(textv or ""))
    s = str(v).strip()
    if not s:
        return True
    rx = re.compile(rf"(?<![\w-]){re.escape(s)}(?![\w-]|\.\w)", re.I)
    if rx.search(textv or ""):
        return True
    try:  # a numeric string ("25.0") is also stated by its number
        return any(float(x) == float(s) for x in NUM.findall(textv or ""))
    except ValueError:
        return False


def hashable(v: Any) -> Any:
    """A value usable as a dict key or set member (lists and objects as their canonical JSON)."""
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


def json_value(s: Any) -> Any:
    """A tool message's content as the JSON value it holds (the text itself when it is not JSON)."""
    try:
        return json.loads(s) if isinstance(s, str) else s
    except json.JSONDecodeError:
        return s


def output_candidates(env_cls, param: str, name: str, out: Any) -> list[Any]:
    """Values of the parameter's entity kind one tool output gives, in the order it lists them."""
    if is_error_output(out):
        return []
    specs = env_cls.tool_specs()
    kind = next((s.consumes[param] for s in specs.values() if param in s.consumes), param)
    vals = produced_values(env_cls, name, out).get(kind, []) if name in specs else []
    if not vals and isinstance(out, dict) and param in out:
        vals = [out[param]]
    uniq: list[Any] = []
    for x in vals:
        if hashable(x) not in {hashable(u) for u in uniq}:
            uniq.append(x)
    return uniq


def reference_candidates(env_cls, param: str, outputs: Iterable[tuple[str, Any]]) -> list[Any]:
    """Values "that result" can mean: those of the most recent output that gives the parameter's kind."""
    for name, out in reversed(list(outputs)):
        c = output_candidates(env_cls, param, name, out)
        if c:
            return c
    return []


def reference_rank(env_cls, param: str, value: Any, outputs: Iterable[tuple[str, Any]]) -> Optional[tuple[int, int]]:
    """(rank of `value` in the latest output listing it, how many that output lists), or None if none does."""
    for name, out in reversed(list(outputs)):
        c = output_candidates(env_cls, param, name, out)
        if any(hashable(x) == hashable(value) for x in c):
            return [hashable(x) for x in c].index(hashable(value)), len(c)
    return None


def reference_points_to(env_cls, param: str, value: Any, outputs: Iterable[tuple[str, Any]],
                        rank: Optional[int] = None) -> bool:
    """Does "the [rank-th] <param> from that result" name exactly `value` in these outputs? Without a rank the
    output listing the value must list exactly one value of that kind."""
    r = reference_rank(env_cls, param, value, outputs)
    if r is None:
        return False
    return r[0] == rank if rank is not None else r[1] == 1


def resolve_reference(env_cls, param: str, outputs: Iterable[tuple[str, Any]], used: set = frozenset()) -> Optional[Any]:
    """The value a reference ("the <param> from that result") points to, or None when it has no single referent.

    "That result" is the most recent output giving values of the parameter's kind; the reference resolves
    only when exactly one of them was not already used for this parameter. With several, guessing the first
    listed would make the data depend on list order: the speaker must state the value instead."""
    cands = [c for c in reference_candidates(env_cls, param, outputs) if hashable(c) not in used]
    return cands[0] if len(cands) == 1 else None


ANY_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")  # every number in a text, also inside tokens (verification counts)


def numbers_in(txt: str) -> set[float]:
    return {float(x) for x in ANY_NUMBER.findall(txt or "")}


def value_in_text(v: Any, txt: str) -> bool:
    """Does `txt` state the value `v`? Strings: as a whole token (`mentions_token`); numbers: by numeric value.

    Shared by injection (does a clarification request lack the value?) and verification (does the user's
    answer supply it?), so both judge a value the same way."""
    if isinstance(v, bool) or v is None:
        return True  # flags and nulls are not "values a turn introduces"
    if isinstance(v, (int, float)):
        return float(v) in numbers_in(txt)
    if isinstance(v, str):
        return mentions_token(txt or "", v)
    if isinstance(v, list):
        return all(value_in_text(x, txt) for x in v)
    if isinstance(v, dict):
        return all(value_in_text(x, txt) for x in v.values())
    return True
