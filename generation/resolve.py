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


def _hashable(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


def reference_candidates(env_cls, param: str, outputs: Iterable[tuple[str, Any]]) -> list[Any]:
    """Values the outputs (latest first) give for the parameter's entity kind, errors skipped."""
    specs = env_cls.tool_specs()
    kind = next((s.consumes[param] for s in specs.values() if param in s.consumes), param)
    cands: list[Any] = []
    for name, out in reversed(list(outputs)):
        if is_error_output(out):
            continue
        vals = produced_values(env_cls, name, out).get(kind, []) if name in specs else []
        if not vals and isinstance(out, dict) and param in out:
            vals = [out[param]]
        cands.extend(x for x in vals if _hashable(x) not in {_hashable(c) for c in cands})
    return cands


def resolve_reference(env_cls, param: str, outputs: Iterable[tuple[str, Any]], used: set = frozenset()) -> Optional[Any]:
    """The value a reference ("the <param> from that result") points to, or None when it has no single referent.

    A reference resolves only when exactly one value not already used for this parameter is in the latest
    outputs: with several candidates the phrase is ambiguous, and guessing the first one listed would make
    the data depend on list order (the speaker must state the value instead)."""
    cands = [c for c in reference_candidates(env_cls, param, outputs) if _hashable(c) not in used]
    return cands[0] if len(cands) == 1 else None
