"""Stage 3 rule checks (paper §2.3), cheap to expensive. Each returns (check name, reason) problems.

1. format: role order, message shapes, call ids answered (`schema.validate_dialogue`);
2. tools_available: every call names a tool available at that point (tool updates honoured);
3. required_args / arguments: required arguments present, arguments valid against the schema;
4. grounding: every argument value (ids, amounts, names) appeared in an earlier turn (user, tool, assistant);
   only the deliberately faulty call of an error_simulation injection is exempt;
   ids are matched as whole tokens (``C47`` is not grounded by ``C473``);
5. tool_errors: no tool error except the injected one and an error followed by a corrected successful call
   of the same tool (a visible retry, accepted alike for both generation methods);
6. injections: every recorded injection is really there (e.g. the clarification request lacks the value);
7. content: turn length, chat-template special tokens, prompt-injection text, model answers that were
   truncated and repaired;
8. reply: an assistant reply agrees with the tool outputs it summarises (ids and numbers shown earlier, counts
   of listed items, no success reported after a failed call);
9. requests: every id or value a user states is used by a later call or answered in text, and a call does not
   pass another value for a parameter the user stated ("name Kim" asked, name "Mateo" sent);
10. replay: a fresh env from the recorded plan (or the recorded domain and initial state) gives the recorded
   outputs and final state; a dialogue that carries neither gets the explicit verdict "not replayable".
Checks that need generation metadata (6, 10) are skipped (None) for dialogues from elsewhere, with the reason.
"""
from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Optional

from toolace_mt.envs.base import is_error_text as _is_error
from toolace_mt.registry import RegistryError
from toolace_mt.schema import validate_dialogue

from ..dialogue import WorkDialogue, reads_dialogue
from ..injections import INJECTIONS
from ..resolve import id_tokens, json_value, list_lengths, loose_args as _args, mentions_token, numbers_in
from ..resolve import reference_points_to, reference_rank
from .natural import Facts, masked, recent_numbers, unstated

CHECKS = ("generation", "format", "tools_available", "required_args", "arguments", "grounding", "tool_errors",
          "injections", "content", "reply", "requests", "plan", "replay")
MAX_TEXT_CHARS = 4000  # chosen: a user or assistant turn longer than this is runaway generation, not a turn
MAX_TOOL_CHARS = 20000  # chosen: long_context listings stay far below; a bigger output is a dump
SPECIAL_TOKENS = re.compile(r"<\|(?:im_start|im_end|eot_id|start_header_id|end_header_id|begin_of_text|endoftext|"
                            r"python_tag|eom_id)\|>|</?tool_call>|</?tool_response>|\[/?INST\]|<</?SYS>>")
INJECTION_TEXT = re.compile(r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|"
                            r"earlier)\s+(?:instructions|messages|rules)|\byou are now (?:a|an|in)\b|"
                            r"\breveal (?:your|the) (?:system )?prompt\b|\bsystem prompt:", re.I)
COUNT = re.compile(r"\b(\d+) items?\b")
FAILURE_WORDS = re.compile(r"\b(?:sorry|fail\w*|error|could not|couldn't|cannot|can't|unable|not)\b", re.I)


def _injected_failed_calls(d: WorkDialogue) -> set[str]:
    return {r.details.get("failed_call_id") for r in d.injections if r.type == "error_simulation"} \
        | corrected_failures(d)


@reads_dialogue
def corrected_failures(d: WorkDialogue) -> set[str]:
    """Ids of failed calls followed, before the next user turn, by a successful call of the same tool."""
    msgs = d.messages
    outs = {m.get("tool_call_id"): m.get("content") for m in msgs if m["role"] == "tool"}
    out = set()
    for i, m in enumerate(msgs):
        for tc in m.get("tool_calls") or []:
            if not _is_error(outs.get(tc.get("id"))):
                continue
            for later in msgs[i + 1:]:
                if later["role"] == "user":
                    break
                if any(t["function"]["name"] == tc["function"]["name"] and not _is_error(outs.get(t.get("id")))
                       and _args(t) != _args(tc) for t in later.get("tool_calls") or []):
                    out.add(tc.get("id"))
                    break
    return out


@reads_dialogue
def format_problems(d: WorkDialogue) -> list[tuple[str, str]]:
    out = []
    for p in validate_dialogue(d.schema_row()):
        if p.code == "unknown_tool":
            out.append(("tools_available", f"message {p.index}: {p.detail}"))
        elif p.code == "bad_arguments":
            check = "required_args" if "is a required property" in p.detail else "arguments"
            out.append((check, f"message {p.index}: {p.detail}"))
        else:
            out.append(("format", f"message {p.index}: [{p.code}] {p.detail}"))
    return out


# chosen: parameters whose value the assistant composes as prose; a value of two or more words there is checked
# for the entities it carries (ids, numbers, dates, e-mails), not word by word. A search query or a name is a
# lookup key (a wrong one is a grounding defect), so neither is listed; an unlisted unconstrained string
# parameter counts as prose from FREE_TEXT_MIN_WORDS words on.
FREE_TEXT_PARAMS = re.compile(r"(?:^|_)(?:content|text|memo|message|body|notes?|description|summary|subject|title|"
                              r"comments?|reason|resolution|instructions?|details|caption|bio|feedback|review)$")
FREE_TEXT_MIN_WORDS = 4


def _param_schemas(d: WorkDialogue) -> dict[tuple[str, str], dict]:
    out = {}
    for t in d.tools or []:
        f = t.get("function", t) if isinstance(t, dict) else {}
        props = ((f.get("parameters") or {}).get("properties") or {}) if isinstance(f, dict) else {}
        for p, s in props.items() if isinstance(props, dict) else ():
            out[(f.get("name"), p)] = s if isinstance(s, dict) else {}
    return out


def free_text(param: str, value: Any, schema: Optional[dict]) -> bool:
    """Is this argument prose the assistant composed (a memo, a message body), checked by its entities?"""
    if not isinstance(value, str) or len(value.split()) < 2:
        return False
    s = schema or {}
    if s.get("enum") or s.get("format") or s.get("pattern") or s.get("type", "string") != "string":
        return False
    return bool(FREE_TEXT_PARAMS.search(param.lower())) or len(value.split()) >= FREE_TEXT_MIN_WORDS


@reads_dialogue
def grounding_problems(d: WorkDialogue) -> list[tuple[str, str]]:
    out = []
    exempt = _injected_failed_calls(d)
    seen: list[str] = []  # texts of earlier turns
    nums: set[float] = set()  # numbers stated in earlier turns
    facts = Facts()  # the same turns read for natural forms ("$5,000", "May 22nd", "11 am")
    schemas = _param_schemas(d)

    def known(v: Any, free: bool = False) -> bool:
        if isinstance(v, bool) or v is None:
            return True
        if isinstance(v, (int, float)):
            return float(v) in nums or facts.has_number(float(v), signed=True)  # exact: an argument is precise
        if isinstance(v, str):
            if not v.strip() or any(mentions_token(t, v) for t in seen):
                return True
            # a date, time or number written another way earlier ("May 22nd" for 2024-05-22), or prose whose
            # ids, numbers, dates and e-mails were all introduced earlier
            # chosen: only prose or a value made of digits and separators (a date, a time, an amount) is read
            # this way; any other string (an id, a name, a path) must appear as a whole token, as before
            return bool(free or re.fullmatch(r"[\d\s:.,$%+T-]+", v)) and not unstated(v, facts, entities_only=True)
        if isinstance(v, list):
            return all(known(x) for x in v)
        if isinstance(v, dict):
            return all(known(x) for x in v.values())
        return True

    for i, m in enumerate(d.messages):
        for tc in m.get("tool_calls") or []:
            if tc.get("id") in exempt:
                continue
            for p, v in _args(tc).items():
                if not known(v, free_text(p, v, schemas.get((tc["function"].get("name"), p)))):
                    out.append(("grounding", f"message {i}: {tc['function']['name']}({p}={json.dumps(v)}) uses a value "
                                             f"no earlier turn introduced"))
        c = m.get("content") or ""
        if c:
            seen.append(c)
            nums |= numbers_in(c)
            facts.add(c)
    return out


@reads_dialogue
def tool_error_problems(d: WorkDialogue) -> list[tuple[str, str]]:
    exempt = _injected_failed_calls(d)
    return [("tool_errors", f"message {i}: tool {m.get('name')} returned an error: {m.get('content')[:120]}")
            for i, m in enumerate(d.messages)
            if m["role"] == "tool" and _is_error(m.get("content")) and m.get("tool_call_id") not in exempt]


@reads_dialogue
def injection_problems(d: WorkDialogue) -> list[tuple[str, str]]:
    if not (d.has("injections") and d.has("turns")):
        return []
    bad = [k for k in d.unreadable() if k in ("injections", "turns")]
    if bad:  # a record from elsewhere whose injection log cannot be read: rejected with that reason
        return [("injections", f"the recorded {' and '.join(bad)} cannot be read")]
    out = []
    P = lambda why: out.append(("injections", why))  # noqa: E731
    where = {tg.uid: i for i, tg in enumerate(d.turns)}
    for r in d.injections:
        pos = [where.get(u) for u in r.uids]
        if not pos or any(p is None for p in pos):
            P(f"{r.type}: its turns are missing from the dialogue")
            continue
        if r.type not in INJECTIONS:
            P(f"unknown injection type {r.type!r}")
            continue
        for why in INJECTIONS.get(r.type).check(d, r, pos):
            P(f"{r.type}: {why}")
    return out


@reads_dialogue
def replay_source(d: WorkDialogue) -> tuple[Optional[dict], str]:
    """(plan-like dict to build the initial environment from, or None, and why not)."""
    from toolace_mt.envs import all_envs

    plan = d.plan_json()
    if isinstance(plan, dict) and "domain" in plan and "state_seed" in plan:
        return (plan, "") if plan["domain"] in all_envs() else (None, f"domain {plan['domain']!r} has no environment")
    # recovered without our plan: the recorded domain (or the one whose tools these are) and state seed; another
    # generator's keys (`state_seed`, `env`, `distractors`) are read from the meta keys this code does not own
    names = {t.get("function", {}).get("name") for t in d.tools or []}
    dom = d.domain if d.domain in all_envs() else next(
        (k for k, c in all_envs().items() if names and names <= set(c.tool_specs())), None)
    env = d.extra.get("env")
    seed = d.extra.get("state_seed", env.get("state_seed") if isinstance(env, dict) else None)
    if dom is None:
        return None, "not replayable: no environment offers these tools"
    if seed is None:
        return None, f"not replayable: domain {dom} recovered, but not its initial state (no plan, no state_seed)"
    return {"domain": dom, "state_seed": int(seed), "distractors": int(d.extra.get("distractors") or 0)}, ""


@reads_dialogue
def replay_problems(d: WorkDialogue) -> Optional[list[tuple[str, str]]]:
    """None when the dialogue cannot be replayed (`replay_source` says why)."""
    from ..work import replay, same_json

    src, _ = replay_source(d)
    if src is None:
        return None
    try:
        env, outputs = replay(src, d.messages)
    except (KeyError, RegistryError):  # a plan that names no known domain or lacks a key: not replayable
        return None
    out = []
    for i, m in enumerate(d.messages):
        if m["role"] == "tool" and m.get("tool_call_id") in outputs:
            if not same_json(m.get("content") or "", outputs[m["tool_call_id"]]):
                out.append(("replay", f"message {i}: recorded output differs from the environment's: "
                                      f"{(m.get('content') or '')[:80]} vs {outputs[m['tool_call_id']][:80]}"))
    want = d.final_state_hash
    if want and env.state_hash() != want:
        out.append(("replay", "final state hash differs from the recorded one"))
    return out


# ------------------------------------------------------------------------------------------------ content
# Characters no kept user/assistant text or call argument may hold (issue 24 item 6): C0/C1 control characters
# other than tab, newline and carriage return; the bidi embedding/override/isolate controls (U+202A-U+202E,
# U+2066-U+2069), which reorder what a reader sees against what a model is trained on ("Trojan Source",
# CVE-2021-42574); and U+FFFD, the mark of bytes that were not valid UTF-8 (a malformed answer).
# chosen: U+200E/U+200F (LRM/RLM) and U+061C (ALM) are allowed: they are the marks Unicode prescribes for
# correct display of ordinary right-to-left text mixed with digits or Latin, open no embedding or override scope
# (they cannot reorder a run beyond their neighbours) and are outside the Trojan-Source set; refusing them would
# refuse correct Hebrew or Arabic dialogues.
BAD_TEXT_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffd]")


def _bad_char_reason(s: str) -> Optional[str]:
    """The first forbidden character of `s`, named with its class and position (and how many there are)."""
    hits = list(BAD_TEXT_CHARS.finditer(s))
    if not hits:
        return None
    ch, pos = hits[0].group(0), hits[0].start()
    if ch == "\ufffd":
        what = "replacement character"
    elif "\u202a" <= ch <= "\u202e" or "\u2066" <= ch <= "\u2069":
        what = "bidi control character"
    else:
        what = "control character"
    name = unicodedata.name(ch, "")  # control characters have no name
    more = f" ({len(hits)} such characters)" if len(hits) > 1 else ""
    return f"{what} U+{ord(ch):04X}{' ' + name if name else ''} at position {pos}{more}"


def _bad_char_args(v: Any, where: str, depth: int = 0) -> list[str]:
    """Reasons for forbidden characters in the string values (and keys) of a call's arguments, at any depth."""
    if isinstance(v, str):
        r = _bad_char_reason(v)
        return [f"{where}: {r}"] if r else []
    if depth > 50:  # chosen: no tool argument nests this deep; stopping here bounds the walk on any input
        return []
    if isinstance(v, dict):
        out = []
        for k, x in v.items():
            shown = ascii(k) if isinstance(k, str) and BAD_TEXT_CHARS.search(k) else str(k)  # never echo it
            at = f"{where}.{shown}" if where else shown
            if isinstance(k, str):  # chosen: keys too: a key is text the model wrote as much as a value is
                out += _bad_char_args(k, f"{at} (its name)", depth + 1)
            out += _bad_char_args(x, at, depth + 1)
        return out
    if isinstance(v, list):
        return [x for j, x2 in enumerate(v) for x in _bad_char_args(x2, f"{where}[{j}]", depth + 1)]
    return []


@reads_dialogue
def content_problems(d: WorkDialogue) -> list[tuple[str, str]]:
    out = []
    for i, m in enumerate(d.messages):
        # chosen: user and assistant text and call arguments (what a model wrote and a trained model imitates);
        # tool outputs come from the environment, whose string arguments are checked here and refused there
        if m.get("role") in ("user", "assistant"):
            if isinstance(m.get("content"), str):
                r = _bad_char_reason(m["content"])
                if r:
                    out.append(("content", f"message {i}: {m['role']} text holds a {r}"))
            for tc in m.get("tool_calls") or []:
                fn = tc.get("function") if isinstance(tc, dict) else None
                if not isinstance(fn, dict):
                    continue  # a malformed call is the format check's to report
                try:
                    a = json_value(fn.get("arguments"))  # JSON text parsed; text that is not JSON is checked as is
                except RecursionError:
                    a = fn.get("arguments")
                for r in _bad_char_args(a, "" if isinstance(a, (dict, list)) else "(arguments)"):
                    out.append(("content", f"message {i}: call {ascii(fn.get('name'))} argument {r}"))
        c = m.get("content")
        if not isinstance(c, str):
            continue
        limit = MAX_TOOL_CHARS if m["role"] == "tool" else MAX_TEXT_CHARS
        if len(c) > limit:
            out.append(("content", f"message {i}: {len(c)} characters (> {limit})"))
        tok = SPECIAL_TOKENS.search(c)  # in any turn, tool outputs included: it would break the chat template
        if tok:
            out.append(("content", f"message {i}: chat-template special token {tok.group(0)!r}"))
        inj = INJECTION_TEXT.search(c)
        if inj:
            out.append(("content", f"message {i}: prompt-injection text {inj.group(0)!r}"))
    for r in d.answer_repairs:
        if r.truncated or "json_repair" in (r.repairs or ""):
            out.append(("content", f"a {r.stage} answer was truncated or broken and repaired "
                                   f"({r.repairs}): its content is not what the model meant"))
    return out


# a token that is a number with a unit or range ("4-minute", "10-20%", "3-6", "2x"): general knowledge in advice
UNITISH = re.compile(r"^\d+(?:\.\d+)?(?:[-\u2013]\d+(?:\.\d+)?)?[-\s]?(?:%|x|[a-z]+)$", re.I)


def _int_leaves(v: Any) -> set[int]:
    """Integer values of a JSON output (an order's "n_items": 3 grounds "3 items"; never digits inside strings)."""
    if isinstance(v, bool):
        return set()
    if isinstance(v, int):
        return {v}
    if isinstance(v, dict):
        return {n for x in v.values() for n in _int_leaves(x)}
    if isinstance(v, list):
        return {n for x in v for n in _int_leaves(x)}
    return set()


@reads_dialogue
def reply_problems(d: WorkDialogue) -> list[tuple[str, str]]:
    """A reply must agree with the outputs before it (ids, numbers, counts; no success after a failure)."""
    out, lengths, ints = [], set(), set()
    facts = Facts()  # earlier turns (contents and call arguments), numbers/dates/times normalised
    msgs = d.messages
    exempt = _injected_failed_calls(d)
    last_user = -1
    for i, m in enumerate(msgs):
        if m["role"] == "user":
            last_user = i
        if m["role"] == "tool":
            lengths |= list_lengths(json_value(m.get("content")))
            ints |= _int_leaves(json_value(m.get("content")))
        if m["role"] == "assistant" and not m.get("tool_calls") and m.get("content"):
            txt = m["content"]
            outs = [x for x in msgs[last_user + 1:i] if x["role"] == "tool"]
            # "$5,021.31", "11:00 AM", "May 22nd", "2 accounts", "a 60-minute call", a total of shown amounts:
            # read in their natural form; whatever else holds a digit must be shown as a whole token
            # chosen: a count ("2 accounts") may also be the number of calls answering this request
            n_calls = sum(len(x.get("tool_calls") or []) for x in msgs[last_user + 1:i])
            recent = recent_numbers(x.get("content") for x in outs if not _is_error(x.get("content")))
            # chosen: a count of things in a list an output showed ("all 18 of your orders", "Your orders (15)",
            # "13 are delivered") is at most the longest list shown: any such integer written as a count is one the
            # rules cannot tell from a sub-count, left to the cross-turn-consistency specialist (a computed
            # statement is never a rule reject)
            counts = lengths | {n_calls} | set(range(0, max(lengths, default=0) + 1))
            if outs:
                bad = unstated(COUNT.sub("", txt), facts, counts=counts, recent=recent)
            else:
                # no call answered this message (small talk, a question, advice): its numbers and dates are
                # general knowledge ("tip 10-20%", "a 4-minute steep"), not results; an id is still checked
                bad = [t for t in unstated(COUNT.sub("", txt), facts, counts=counts, recent=recent)
                       if any(ch.isalpha() for ch in t) and any(ch.isdigit() for ch in t) and not UNITISH.search(t)]
            for tok in dict.fromkeys(bad):
                out.append(("reply", f"message {i}: the reply states {tok!r}, which no earlier turn shows"))
            # "N items" is the strict form: N must be a list length (or a count an output states), not any N up
            # to the longest list
            for n in sorted({int(x) for x in COUNT.findall(txt)} - lengths - ints):
                out.append(("reply", f"message {i}: the reply counts {n} items; no earlier output lists {n}"))
            if outs and _is_error(outs[-1].get("content")) and outs[-1].get("tool_call_id") not in exempt \
                    and not FAILURE_WORDS.search(txt):
                out.append(("reply", f"message {i}: the reply reports success after the failed call "
                                     f"{outs[-1].get('name')}"))
        c = m.get("content") or ""
        calls = " ".join(json.dumps(_args(tc), ensure_ascii=False) for tc in m.get("tool_calls") or [])
        facts.add(c + " " + calls)
    return out


POINTER = re.compile(r"\b(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|latest|newest|"
                     r"oldest|listed|list|listing|find|found|finds|returned|returns|results?|search|those|these|them|"
                     r"each|every|all of|the same|whatever|whichever|turns? up|shows? up|comes? up)\b", re.I)


def _points(request: str, cls) -> bool:
    """Does the request point at a result instead of naming a value ("the second account listed", "that 2024-05-20
    event": "that" followed within two words by one of the domain's entity nouns)?"""
    if POINTER.search(request):
        return True
    nouns = {k.replace("_id", "").replace("_", " ").split(" ")[-1] for k in getattr(cls, "ENTITIES", {}) or {}}
    nouns = {n for n in nouns if len(n) > 2} | {"one", "item"}
    return any(re.search(rf"\b(?:that|this) (?:[\w-]+ ){{0,2}}{re.escape(n)}s?\b", request, re.I) for n in nouns)
REF = re.compile(r"\bthe (?:(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth) )?"
                 r"((?!the\b)[a-z]+(?: (?!the\b)[a-z]+)*?) from that result\b")
ORDINAL = {w: k for k, w in enumerate(["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
                                       "ninth", "tenth"])}


def _outputs_before(msgs: list[dict], start: int, call_id: Any) -> list[tuple[str, Any]]:
    """(tool, output) of the tool messages after `start` up to the call `call_id` (the visible results)."""
    outs = []
    for x in msgs[start + 1:]:
        if any(tc.get("id") == call_id for tc in x.get("tool_calls") or []):
            break
        if x["role"] == "tool":
            outs.append((x.get("name") or "", json_value(x.get("content"))))
    return outs


def _shape(v: str) -> str:
    """'ACC55509' -> 'ACC#####': ids of one kind share it ('' for values that are not ids)."""
    m = re.fullmatch(r"([A-Za-z]+[-_]?)(\d+)", v or "")
    return f"{m.group(1).upper()}{'#' * len(m.group(2))}" if m else ""


STATED = re.compile(r"\b([a-z]+(?: [a-z]+)?) ('[^']+'|\"[^\"]+\"|[A-Z][\w.@/-]*\d[\w.@/-]*|[\w.@/-]*\d[\w.@/-]*)")


@reads_dialogue
def request_problems(d: WorkDialogue) -> list[tuple[str, str]]:
    """Every id a user states is used later (by a call or answered in text); a call's argument for a parameter
    the user named with a value ("account id ACC1") is that value."""
    from toolace_mt.envs import all_envs

    out = []
    msgs = d.messages
    exempt = _injected_failed_calls(d)
    src, _ = replay_source(d)
    dom = (src or {}).get("domain") or d.domain
    cls = all_envs().get(dom) if dom else None
    for i, m in enumerate(msgs):
        if m["role"] != "user" or not m.get("content"):
            continue
        later_calls = [tc for x in msgs[i + 1:] for tc in x.get("tool_calls") or []]
        later_text = " ".join(json.dumps(_args(tc), ensure_ascii=False) for tc in later_calls) + " " + \
            " ".join(x.get("content") or "" for x in msgs[i + 1:] if x["role"] == "assistant")
        # chosen: an id an earlier call already acted on is a reference back ("paying PAY635 was intentional"),
        # not a new request that needs a call or an answer (live runs: users acknowledge what was done)
        done_args = " ".join(json.dumps(_args(tc), ensure_ascii=False) for x in msgs[:i] for tc in x.get("tool_calls") or [])
        later_text += " " + done_args
        # a date, time, duration or ordinal ("May 22nd", "11am", "60-minute") is not an id a call must repeat
        for tok in dict.fromkeys(id_tokens(masked(m["content"]))):
            if tok[:1].isdigit():  # "5-star": the number is what a call passes
                tok = re.match(r"\d+(?:\.\d+)?", tok).group(0)
            if any(ch.isalpha() for ch in tok) and not mentions_token(later_text, tok):
                out.append(("requests", f"message {i}: the user's {tok!r} is never used or answered"))
        # the calls serving this message: up to the next user turn
        span = []
        for x in msgs[i + 1:]:
            if x["role"] == "user":
                break
            span.extend(tc for tc in x.get("tool_calls") or [] if tc.get("id") not in exempt)
        # the request these calls serve: this user turn and the ones before it since the last call (a
        # clarification answer completes the request it answers)
        req_parts = [m["content"]]
        for x in reversed(msgs[:i]):
            if x.get("tool_calls"):
                break
            if x["role"] == "user":
                req_parts.insert(0, x.get("content") or "")
        request = " ".join(req_parts)
        stated = {}
        for name, val in STATED.findall(request):
            stated.setdefault(name.strip().lower().replace(" ", "_"), set()).add(val.strip("'\"").rstrip("."))
            stated.setdefault(name.strip().lower().split(" ")[-1], set()).add(val.strip("'\"").rstrip("."))
        shapes: dict[str, list[str]] = {}
        for tok in dict.fromkeys(id_tokens(request)):
            if _shape(tok):
                shapes.setdefault(_shape(tok), []).append(tok)
        refd = {}
        for o, r in REF.findall(request):
            refd.setdefault(r.strip().lower().replace(" ", "_"), []).append(ORDINAL.get(o))
        for k, tc in enumerate(span):
            for p, v in _args(tc).items():
                if p in refd and cls is not None and not mentions_token(request, v):
                    # "the [k-th] <p> from that result": the shared resolver decides what it names
                    outs = _outputs_before(msgs, i, tc.get("id"))
                    if not any(reference_points_to(cls, p, v, outs, r) for r in refd[p]):
                        r = reference_rank(cls, p, v, outs)
                        why = "no result before the call lists it" if r is None else \
                            f"that result lists {r[1]} values and the phrase does not say which"
                        out.append(("requests", f"message {i}: 'the {p.replace('_', ' ')} from that result' does "
                                                f"not name {v!r}: {why}"))
                    continue
                if isinstance(v, str) and not mentions_token(request, v) and p not in refd:
                    # the user named ids of this shape, not this one, and did not point at a result: the call
                    # took another id than asked for
                    asked = shapes.get(_shape(v), [])
                    # chosen: a natural reference ("the second account listed", "the event that search finds")
                    # names a value a result of this request gave before the call: not another id than asked for
                    # ...and only when every id the user named of this shape is still sent by some call of the
                    # request (a named id no call sends was replaced: that stays a defect)
                    span_vals = " ".join(json.dumps(_args(x), ensure_ascii=False) for x in span)
                    pointed = all(mentions_token(span_vals, a) for a in asked) and _points(request, cls) and any(
                        mentions_token(json.dumps(o, ensure_ascii=False) if not isinstance(o, str) else o, v)
                        for _, o in _outputs_before(msgs, i, tc.get("id")))
                    if asked and not pointed:
                        out.append(("requests", f"message {i}: the user asked for {', '.join(asked[:3])}; the call "
                                                f"{tc['function']['name']} sends {v!r}"))
                        continue
                if not isinstance(v, str) or p not in stated:
                    continue
                if not any(mentions_token(v, s) or mentions_token(s, v) for s in stated[p]) and \
                        not mentions_token(request, v):
                    out.append(("requests", f"message {i}: the user stated {p} {sorted(stated[p])[0]!r}, the call "
                                            f"{tc['function']['name']} sends {v!r}"))
    return out


from .plan_check import completion_problems, plan_problems  # noqa: E402  (its own module: a check of the plan, not of the turns)


@reads_dialogue
def cheap_problems(d: WorkDialogue) -> list[tuple[str, str]]:
    """Checks 1-6 (no replay): what the rules judge of the refinement stage scores."""
    return (format_problems(d) + grounding_problems(d) + tool_error_problems(d) + injection_problems(d)
            + content_problems(d) + reply_problems(d) + request_problems(d) + plan_problems(d)
            + completion_problems(d))


@reads_dialogue
def verify_rules(d: WorkDialogue) -> tuple[dict[str, Optional[bool]], list[str]]:
    """All rule checks: check -> True/False (None = not applicable), and the reasons of the failures. A dialogue
    that cannot be replayed gets ``replay_verdict`` (why) on `d` (the typed dialogue; a dict is only read)."""
    checks: dict[str, Optional[bool]] = {c: True for c in CHECKS}
    reasons: list[str] = []
    if d.failure is not None:
        checks["generation"] = False
        reasons.append(f"generation: [{d.failure.stage}/{d.failure.kind}] {d.failure.message}")
    elif "failure" in d.unreadable():
        checks["generation"] = False
        reasons.append("generation: the recorded failure cannot be read")
    probs = cheap_problems(d)
    if not d.has("turns"):
        checks["injections"] = None
    rp = replay_problems(d) if not any(c == "format" for c, _ in probs) else [("replay", "not replayed: bad format")]
    if rp is None:
        checks["replay"] = None  # explicit: the reason is recorded, the dialogue is not silently "replayed"
        d.replay_verdict = replay_source(d)[1] or "not replayable"
        rp = []
    for c, why in probs + rp:
        checks[c] = False
        reasons.append(f"{c}: {why}")
    return checks, reasons
