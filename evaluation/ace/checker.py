"""ACEBench-style checkers: corrected (ours) and `compat_acebench` (the official scorer's behaviour).

Both are pure functions of (item, model output). The official rules were measured against the official scorer
(ACEBench @56dd66c) with a ground-truth oracle and are written here from that description (no official code is
used):

normal (compat) reads the model's RAW answer text (`suite.raw_answer`: the text the model wrote; structured
tool calls are first written as the pythonic list ACEBench's FC inference writes). The complete quirk list:

 1. multi-turn categories (user_adjust, user_switch): ALL whitespace is deleted from the raw text before it is
    parsed, so a fence with a language tag (`````python``), prose around the list, or a GT string with spaces
    nested inside a list/object fails (oracle 0.76 / 0.74); top-level strings survive (see 12);
 2. other normal categories: the first outermost ``[...]`` of the raw text is parsed, so prose and fences
    around the call list are tolerated;
 3. the text must parse as a pythonic call list (else ``wrong_output_format``);
 4. GT function names lose a ``_<n>`` suffix; the multiset of called names must equal the GT's;
 5. each GT call needs SOME same-named output call that passes; the same output call may serve two GT calls;
 6. the function doc used is the first whose name is contained in the (suffixed) GT key;
 7. a call with no arguments passes when the doc has no parameters; arguments without doc parameters (or the
    reverse) fail; a GT equal to the doc's ``properties`` passes outright; an empty GT fails;
 8. every required parameter must be present; every output parameter must be in the doc and in the GT (an
    optional parameter given with its default still fails);
 9. types come from the doc's loose names (``number`` is read as int, ``float`` accepts an int, ``any`` is
    str, the strings ``"true"``/``"false"`` count as booleans); an unknown doc type fails;
10. a value whose type differs from the doc's but equals the GT value's type is a "variable": its value is
    not checked;
11. numbers and booleans are type-checked only: their VALUES are never compared;
12. strings pass when the standardised GT is a SUBSTRING of the standardised output (standardise: delete
    spaces and ``,./-_*^``, lower-case, ``'`` -> ``"``);
13. flat lists must be equal after standardising their strings;
14. objects: the same number of keys, every output key in the GT, nested objects recursively, leaves by
    ``str(gt) in str(out)`` after standardising strings;
15. arrays whose items are objects (or that declare no item type) are compared element-wise as objects; an
    array of objects whose GT is empty always fails the nested type check;
16. multi-turn categories score conversations: accuracy = share of conversations whose items all pass,
    process accuracy = mean share of passing items;
17. special categories search the raw text only for the phrases (see below); calling a function is not
    penalised;
18. agent categories: end-to-end = per GT class each attribute equal, for dict attributes each GT key equal
    (extra keys in the model's dict are not penalised); process = the longest prefix of the milestones found in
    order among the executed calls, by exact string match after strip (1.0 when end-to-end is correct).

normal (corrected): the same protocol without those defects: structured calls (no whitespace surgery), one
output call per GT call, and recursive equality (standardised string equality, numeric equality, same keys).

special (both): the detection phrases -- "Missing necessary parameters" + function name + every missing
parameter; "There is incorrect value" + every wrong value; "the limitations of the function". Corrected also
requires that no function was called.
"""
from __future__ import annotations

import itertools
import re
from typing import Any, Optional

from toolace_mt.pycalls import PyCallError, parse_python_calls

_STD = re.compile(r"[ ,./\-_*^]")
SUFFIX = re.compile(r"_\d+$")

PHRASE_INCOMPLETE = "Missing necessary parameters"
PHRASE_ERROR = "There is incorrect value"
PHRASE_IRRELEVANT = "the limitations of the function"


def standardize(s: str) -> str:
    return _STD.sub("", s).lower().replace("'", '"')


# ------------------------------------------------------------------------------------------------------------
# corrected normal checker
# ------------------------------------------------------------------------------------------------------------
def values_equal(gt: Any, out: Any) -> bool:
    if isinstance(gt, str):
        return isinstance(out, str) and standardize(gt) == standardize(out)
    if isinstance(gt, bool) or gt is None:
        return out is gt or (isinstance(out, bool) and out == gt)
    if isinstance(gt, (int, float)):
        return isinstance(out, (int, float)) and not isinstance(out, bool) and abs(float(gt) - float(out)) <= 1e-9
    if isinstance(gt, list):
        return isinstance(out, list) and len(out) == len(gt) and all(values_equal(g, o) for g, o in zip(gt, out))
    if isinstance(gt, dict):
        return isinstance(out, dict) and set(out) == set(gt) and all(values_equal(gt[k], out[k]) for k in gt)
    return gt == out


def gt_function_name(key: str, names: set[str]) -> str:
    """GT keys of repeated calls carry ``_1``, ``_2``...; strip it only when that names a real function."""
    if key in names:
        return key
    base = SUFFIX.sub("", key)
    return base if base in names else key


def _call_errors(fn: Optional[dict[str, Any]], args: dict[str, Any], gt: dict[str, Any]) -> list[str]:
    if fn is None:
        return ["unknown function"]
    params = fn.get("parameters") or {}
    props = params.get("properties") or {}
    errs = [f"missing required parameter {p}" for p in params.get("required") or [] if p not in args]
    for p, v in args.items():
        if p not in props or p not in gt:
            errs.append(f"extra parameter {p}")
        elif not values_equal(gt[p], v):
            errs.append(f"wrong value for {p}: expected {gt[p]!r}, got {v!r}")
    return errs


def corrected_normal(calls: list[dict[str, Any]], gt: Any, functions: list[dict[str, Any]]) -> list[str]:
    """Reasons the structured calls do not match any GT alternative (empty = correct)."""
    by_name = {f["name"]: f for f in functions}
    first: Optional[list[str]] = None
    for alt in (gt if isinstance(gt, list) else [gt]):
        want = [(gt_function_name(k, set(by_name)), v) for k, v in alt.items()]
        reasons = _match_one_to_one(calls, want, by_name)
        if not reasons:
            return []
        first = first or reasons
    return first or ["no ground truth"]


def _match_one_to_one(calls, want, by_name) -> list[str]:
    got_names = sorted(c["name"] for c in calls)
    if got_names != sorted(n for n, _ in want):
        return [f"functions {got_names} != expected {sorted(n for n, _ in want)}"]
    # each GT call needs its own output call; sizes are tiny, so try assignments (bounded)
    errs_first: list[str] = []
    ok = [[not _call_errors(by_name.get(n), c.get("arguments") or {}, g) if c["name"] == n else False
           for c in calls] for n, g in want]
    for perm in itertools.islice(itertools.permutations(range(len(calls))), 5040):
        if all(ok[i][j] for i, j in enumerate(perm)):
            return []
    for n, g in want:
        cands = [c for c in calls if c["name"] == n]
        errs = [_call_errors(by_name.get(n), c.get("arguments") or {}, g) for c in cands]
        if all(errs):
            errs_first.extend(f"{n}: {e}" for e in min(errs, key=len))
    return errs_first or ["calls cannot be matched one to one with the ground truth"]


# ------------------------------------------------------------------------------------------------------------
# compat (official behaviour) normal checker
# ------------------------------------------------------------------------------------------------------------
_PY = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list, "tuple": list, "dict": dict,
       "any": str, "list": list, "object": dict, "objectArray": list, "list(string)": list, "list(enum)": list,
       "int": int, "number": int, "enum": type(enumerate([]))}
_NESTED = ("array", "tuple", "list(string)", "list(enum)", "object", "objectArray")


def first_bracketed(text: str) -> str:
    """The first outermost ``[...]`` span of `text` (the text itself when there is none)."""
    start = text.find("[")
    if start < 0:
        return text
    depth = 0
    quote = None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
    return text[start:]


def compat_decode(raw: str, multi_turn: bool) -> list[dict[str, Any]]:
    text = "".join(raw.split()) if multi_turn else first_bracketed(raw.strip())
    return parse_python_calls(text)


def _c_dict(out: Any, gt: dict) -> bool:
    if not isinstance(out, dict) or len(out) != len(gt):
        return False
    for k, v in out.items():
        v = True if v == "true" else False if v == "false" else v
        if k not in gt:
            return False
        g = gt[k]
        if isinstance(g, dict):
            if not _c_dict(v, g):
                return False
            continue
        sv = standardize(v) if isinstance(v, str) else v
        sg = standardize(g) if isinstance(g, str) else g
        if str(sg) not in str(sv):
            return False
    return True


def _c_type(value: Any, gt: Any, etype: type, nested: Optional[type]) -> tuple[bool, bool]:
    """(valid, is_variable) as the official type check decides them."""
    gt_type = type(gt) if gt != "" else None
    is_var = gt_type is not None and gt_type is not etype
    value = True if value == "true" else False if value == "false" else value
    valid = True
    if type(value) is etype:
        if nested is None:
            return True, is_var
        for item in (gt if isinstance(gt, (list, dict, str)) else []):
            flag = True
            if isinstance(item, list):
                flag = all(_c_type(v, item, nested, None)[0] for v in value)
            if flag:
                return True, is_var
        valid = False
    if gt_type is not None and (type(value) is gt_type or gt == value):
        return valid, True
    return False, is_var


def _c_call(fn: Optional[dict], args: dict, gt: dict) -> bool:
    if fn is None:
        return False
    params = fn.get("parameters") or {}
    if not args and not params:
        return True
    if not args or not params:
        return False
    props = params.get("properties") or {}
    if gt == props:
        return True
    if not gt:
        return False
    if any(p not in args for p in params.get("required") or []):
        return False
    for p, value in args.items():
        if p not in props or p not in gt:
            return False
        desc = props[p].get("type", "")
        if desc not in _PY:
            return False
        etype = _PY[desc]
        nested = None
        if desc in _NESTED:
            it = props[p].get("items")
            ntype = it.get("type") if isinstance(it, dict) and "type" in it else \
                ("string" if "string" in desc else "enum" if "enum" in desc else "dict")
            nested = _PY.get(ntype, str)
        if desc == "float" and type(value) is int:
            value = float(value)
        valid, is_var = _c_type(value, gt[p], etype, nested)
        if not valid:
            return False
        if is_var:
            continue
        g = gt[p]
        if etype is dict:
            if not isinstance(g, dict) or not _c_dict(value, g):
                return False
        elif etype is list and nested is dict:
            if not isinstance(value, list) or len(value) != len(g) or \
                    not all(isinstance(x, dict) and _c_dict(v, x) for v, x in zip(value, g)):
                return False
        elif etype is str:
            if not isinstance(g, str) or standardize(g) not in standardize(value):
                return False
        elif etype is list:
            sv = [standardize(x) if isinstance(x, str) else x for x in value]
            sg = [standardize(x) if isinstance(x, str) else x for x in g]
            if sv != sg:
                return False
    return True


def compat_normal(raw: str, gt: Any, functions: list[dict[str, Any]], multi_turn: bool) -> list[str]:
    """Reasons the official scorer would reject `raw` (empty = it accepts it)."""
    try:
        calls = compat_decode(raw, multi_turn)
    except PyCallError as e:
        return [f"wrong_output_format: {e}"]
    first = None
    for alt in (gt if isinstance(gt, list) else [gt]):
        r = _compat_alt(calls, alt, functions)
        if not r:
            return []
        first = first or r
    return first or ["no ground truth"]


def _compat_alt(calls, alt: dict, functions) -> list[str]:
    want = [(SUFFIX.sub("", k), k, v) for k, v in alt.items()]
    from collections import Counter

    if Counter(c["name"] for c in calls) != Counter(n for n, _, _ in want):
        return ["function_mismatch"]
    for name, key, g in want:
        # the official lookup takes the first doc whose name is contained in the (suffixed) GT key
        fn = next((f for f in functions if f["name"] in key), None)
        if not any(c["name"] == name and _c_call(fn, c.get("arguments") or {}, g) for c in calls):
            return [f"{name}: parameters rejected"]
    return []


# ------------------------------------------------------------------------------------------------------------
# special categories
# ------------------------------------------------------------------------------------------------------------
def special_reasons(kind: str, text: str, gt: Any) -> list[str]:
    text = text or ""
    if kind == "incomplete":
        out = []
        for name, params in gt.items():
            if PHRASE_INCOMPLETE not in text:
                return [f"did not say {PHRASE_INCOMPLETE!r}"]
            if name not in text:
                out.append(f"did not name the function {name}")
            out.extend(f"did not name the missing parameter {p}" for p in params if p not in text)
        return out
    if kind == "error_param":
        if PHRASE_ERROR not in text:
            return [f"did not say {PHRASE_ERROR!r}"]
        return [f"did not quote the wrong value {v!r}" for vals in gt.values() for v in vals if str(v) not in text]
    if kind == "irrelevant":
        return [] if PHRASE_IRRELEVANT in text else [f"did not say {PHRASE_IRRELEVANT!r}"]
    raise ValueError(f"unknown special kind {kind!r}")


# ---- graded diagnostics (NOT official; the verdicts above are the score) -----------------------------------
SPECIAL_PHRASES = {"incomplete": PHRASE_INCOMPLETE, "error_param": PHRASE_ERROR, "irrelevant": PHRASE_IRRELEVANT}


def names_match(calls: list[dict[str, Any]], gt: Any, functions: list[dict[str, Any]]) -> bool:
    """Whether the called function names equal some GT alternative's names as a multiset (arguments ignored)."""
    from collections import Counter

    names = {f["name"] for f in functions}
    got = Counter(str(c.get("name")) for c in calls)
    return any(Counter(gt_function_name(k, names) for k in alt) == got
               for alt in (gt if isinstance(gt, list) else [gt]) if isinstance(alt, dict))


def special_phrase_said(kind: str, text: str) -> bool:
    """Whether the answer holds the detection phrase of its special kind (the rest of `special_reasons` --
    naming the function, parameters or value -- is not required here)."""
    if kind not in SPECIAL_PHRASES:
        raise ValueError(f"unknown special kind {kind!r}")
    return SPECIAL_PHRASES[kind] in (text or "")
