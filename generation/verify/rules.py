"""Stage 3 rule checks (paper §2.3), cheap to expensive. Each returns (check name, reason) problems.

1. format: role order, message shapes, call ids answered (`schema.validate_dialogue`);
2. tools_available: every call names a tool available at that point (tool updates honoured);
3. required_args / arguments: required arguments present, arguments valid against the schema;
4. grounding: every argument value (ids, amounts, names) appeared in an earlier turn (user, tool, assistant);
   only the deliberately faulty call of an error_simulation injection is exempt;
5. tool_errors: no tool error except the injected one;
6. injections: every recorded injection is really there (e.g. the clarification request lacks the value);
7. replay: a fresh env from the recorded plan gives the recorded outputs and the recorded final state hash.
Checks that need generation metadata (6, 7) are skipped (None) for dialogues from elsewhere.
"""
from __future__ import annotations

import json
import re
from typing import Any, Optional

from toolace_mt.schema import validate_dialogue

NUM = re.compile(r"-?\d+(?:\.\d+)?")
CHECKS = ("generation", "format", "tools_available", "required_args", "arguments", "grounding", "tool_errors",
          "injections", "replay")


def _numbers(txt: str) -> set[float]:
    return {float(x) for x in NUM.findall(txt or "")}


def value_in_text(v: Any, txt: str) -> bool:
    """Does `txt` state the value `v`? Strings: case-insensitive substring; numbers: by numeric value."""
    if isinstance(v, bool) or v is None:
        return True  # flags and nulls are not "values a turn introduces"
    if isinstance(v, (int, float)):
        return float(v) in _numbers(txt)
    if isinstance(v, str):
        return v.strip().lower() in (txt or "").lower() if v.strip() else True
    if isinstance(v, list):
        return all(value_in_text(x, txt) for x in v)
    if isinstance(v, dict):
        return all(value_in_text(x, txt) for x in v.values())
    return True


def _args(tc: dict) -> dict:
    a = tc.get("function", {}).get("arguments", {})
    if isinstance(a, str):
        try:
            a = json.loads(a)
        except json.JSONDecodeError:
            return {}
    return a if isinstance(a, dict) else {}


def _is_error(content: Optional[str]) -> bool:
    try:
        v = json.loads(content or "")
    except (json.JSONDecodeError, TypeError):
        return False
    return isinstance(v, dict) and set(v) == {"error", "message"}


def _injected_failed_calls(d: dict) -> set[str]:
    return {r.get("failed_call_id") for r in d.get("meta", {}).get("injections") or []
            if r.get("type") == "error_simulation"}


def format_problems(d: dict) -> list[tuple[str, str]]:
    out = []
    for p in validate_dialogue(d):
        if p.code == "unknown_tool":
            out.append(("tools_available", f"message {p.index}: {p.detail}"))
        elif p.code == "bad_arguments":
            check = "required_args" if "is a required property" in p.detail else "arguments"
            out.append((check, f"message {p.index}: {p.detail}"))
        else:
            out.append(("format", f"message {p.index}: [{p.code}] {p.detail}"))
    return out


def grounding_problems(d: dict) -> list[tuple[str, str]]:
    out = []
    exempt = _injected_failed_calls(d)
    seen: list[str] = []  # lower-cased texts of earlier turns
    nums: set[float] = set()  # numbers stated in earlier turns

    def known(v: Any) -> bool:
        if isinstance(v, bool) or v is None:
            return True
        if isinstance(v, (int, float)):
            return float(v) in nums
        if isinstance(v, str):
            s = v.strip().lower()
            return not s or any(s in t for t in seen)
        if isinstance(v, list):
            return all(known(x) for x in v)
        if isinstance(v, dict):
            return all(known(x) for x in v.values())
        return True

    for i, m in enumerate(d["messages"]):
        for tc in m.get("tool_calls") or []:
            if tc.get("id") in exempt:
                continue
            for p, v in _args(tc).items():
                if not known(v):
                    out.append(("grounding", f"message {i}: {tc['function']['name']}({p}={json.dumps(v)}) uses a value "
                                             f"no earlier turn introduced"))
        c = m.get("content") or ""
        if c:
            seen.append(c.lower())
            nums |= _numbers(c)
    return out


def tool_error_problems(d: dict) -> list[tuple[str, str]]:
    exempt = _injected_failed_calls(d)
    return [("tool_errors", f"message {i}: tool {m.get('name')} returned an error: {m.get('content')[:120]}")
            for i, m in enumerate(d["messages"])
            if m["role"] == "tool" and _is_error(m.get("content")) and m.get("tool_call_id") not in exempt]


def _pos(d: dict, uids: list[int]) -> list[Optional[int]]:
    where = {tg["u"]: i for i, tg in enumerate(d["meta"].get("turns") or [])}
    return [where.get(u) for u in uids]


def injection_problems(d: dict) -> list[tuple[str, str]]:
    meta = d.get("meta") or {}
    if "injections" not in meta or "turns" not in meta:
        return []
    out = []
    msgs = d["messages"]
    P = lambda why: out.append(("injections", why))  # noqa: E731
    for r in meta["injections"]:
        typ = r.get("type")
        pos = _pos(d, r.get("uids", []))
        if not pos or any(p is None for p in pos):
            P(f"{typ}: its turns are missing from the dialogue")
            continue
        if typ == "clarification":
            ask, q, ans = (msgs[p] for p in pos)
            if ask["role"] != "user" or value_in_text(r["value"], ask.get("content")):
                P(f"clarification: the request at {pos[0]} already states {r['param']}={json.dumps(r['value'])}")
            if q["role"] != "assistant" or q.get("tool_calls") or not q.get("content"):
                P(f"clarification: message {pos[1]} is not an assistant question")
            if ans["role"] != "user" or not value_in_text(r["value"], ans.get("content")):
                P(f"clarification: the answer at {pos[2]} does not supply {r['param']}")
        elif typ == "tool_awareness":
            name = r["tool"]
            if any(t["function"]["name"] == name for t in d["tools"]):
                P(f"tool_awareness: {name} is in the initial tool list")
            ups = [u for u in meta.get("tool_updates") or [] if any(t["function"]["name"] == name for t in u["tools"])]
            if not ups or ups[0]["at"] != pos[2]:
                P(f"tool_awareness: no tool update adding {name} at message {pos[2]}")
            a = msgs[pos[1]]
            if a["role"] != "assistant" or a.get("tool_calls") or not a.get("content"):
                P(f"tool_awareness: message {pos[1]} is not an assistant text saying the tool is missing")
            if not any(tc["function"]["name"] == name for m in msgs[pos[2]:] for tc in m.get("tool_calls") or []):
                P(f"tool_awareness: {name} is never called after it was added")
        elif typ == "error_simulation":
            fid, cid = r.get("failed_call_id"), r.get("corrected_call_id")
            outs = {m.get("tool_call_id"): m for m in msgs if m["role"] == "tool"}
            calls = {tc["id"]: tc for m in msgs for tc in m.get("tool_calls") or []}
            if fid not in outs or not _is_error(outs[fid].get("content")):
                P(f"error_simulation: call {fid} did not fail")
            if cid not in calls or cid not in outs or _is_error(outs[cid].get("content")):
                P(f"error_simulation: corrected call {cid} missing or failed")
            elif fid in calls and calls[fid]["function"]["name"] != calls[cid]["function"]["name"]:
                P("error_simulation: the corrected call is to another tool")
            elif fid in calls and _args(calls[fid]).get(r["param"]) == _args(calls[cid]).get(r["param"]):
                P("error_simulation: the corrected call repeats the faulty value")
        elif typ == "non_function_call":
            o1, a, o2 = (msgs[p] for p in pos)
            if o1["role"] != "user" or a["role"] != "assistant" or a.get("tool_calls") or not a.get("content") \
                    or o2["role"] != "user":
                P(f"non_function_call: turns {pos} are not user / assistant text / user")
        elif typ == "long_context":
            ids = set(r.get("call_ids", []))
            size = sum(len(m.get("content") or "") for m in msgs if m["role"] == "tool" and m.get("tool_call_id") in ids)
            from ..inject import LONG_MIN_CHARS

            if size < LONG_MIN_CHARS:
                P(f"long_context: the listing outputs hold {size} characters (< {LONG_MIN_CHARS})")
        else:
            P(f"unknown injection type {typ!r}")
    return out


def replay_problems(d: dict) -> Optional[list[tuple[str, str]]]:
    """None when the dialogue carries no replayable plan (not ours, or an unknown domain)."""
    from ..work import replay, same_json

    plan = (d.get("meta") or {}).get("plan")
    if not isinstance(plan, dict) or "domain" not in plan or "state_seed" not in plan:
        return None
    try:
        env, outputs = replay(d)
    except KeyError:
        return None
    out = []
    for i, m in enumerate(d["messages"]):
        if m["role"] == "tool" and m.get("tool_call_id") in outputs:
            if not same_json(m.get("content") or "", outputs[m["tool_call_id"]]):
                out.append(("replay", f"message {i}: recorded output differs from the environment's: "
                                      f"{(m.get('content') or '')[:80]} vs {outputs[m['tool_call_id']][:80]}"))
    want = d["meta"].get("final_state_hash")
    if want and env.state_hash() != want:
        out.append(("replay", "final state hash differs from the recorded one"))
    return out


def cheap_problems(d: dict) -> list[tuple[str, str]]:
    """Checks 1-6 (no replay): what the rules judge of the refinement stage scores."""
    return format_problems(d) + grounding_problems(d) + tool_error_problems(d) + injection_problems(d)


def verify_rules(d: dict) -> tuple[dict[str, Optional[bool]], list[str]]:
    """All rule checks: check -> True/False (None = not applicable), and the reasons of the failures."""
    checks: dict[str, Optional[bool]] = {c: True for c in CHECKS}
    reasons: list[str] = []
    fail = (d.get("meta") or {}).get("failure")
    if fail:
        checks["generation"] = False
        reasons.append(f"generation: [{fail.get('stage')}/{fail.get('kind')}] {fail.get('message')}")
    probs = cheap_problems(d)
    if "turns" not in (d.get("meta") or {}):
        checks["injections"] = None
    rp = replay_problems(d) if not any(c == "format" for c, _ in probs) else [("replay", "not replayed: bad format")]
    if rp is None:
        checks["replay"] = None
        rp = []
    for c, why in probs + rp:
        checks[c] = False
        reasons.append(f"{c}: {why}")
    return checks, reasons
