"""The offline agents of the MAS baseline: a user who knows the goal, an assistant who sees only the chat.

* `user_turn(domain, subtasks, messages, rng, withhold, smalltalk_before)`: the user agent, from what its
  prompt shows. It knows its goal (the SAME `TaskPlan` ToolACE-MT stage 1 builds for the seed, rendered in its
  prompt) and reveals it one subtask per message, in order, writing each request with the same phrase
  templates the ToolACE-MT stand-in uses (`text.render_query`), stating every value its goal shows. It
  realises the complexities its prompt names: it leaves one value out until asked (clarification) and makes
  small talk once (non_function_call); it answers the assistant's clarification questions from the goal, and
  says it is done when every subtask has been asked.
* `assistant_turn(domain, tools, messages, seed)`: the assistant agent. It gets the tool list and the
  conversation so far -- never the plan -- and decides ONE step from that history alone: it parses the latest
  request against the tools' phrase templates and schemas, resolves values the user refers to with the shared
  resolver (`generation/resolve.py`), and either sends the next call(s), asks for a missing required value, or
  closes the turn with a reply built from the outputs it saw.

`OFFLINE` maps each MAS template to the function answering it from the request's visible context; the
`simulated` backend and the `rules` engine both use it.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from toolace_mt.envs import Env, get_env

from .. import text
from ..plan import PLACEHOLDER, CallPlan, is_goal_ref
from ..injections.non_function_call import CHITCHAT
from ..resolve import hashable, output_candidates, reference_candidates, reference_rank, resolve_reference

REF_RE = re.compile(r"^the ([\w ]+?) from that result$", re.I)
NUM = r"-?\d+(?:\.\d+)?"
CLARIFY_Q = "Could you tell me the {p}?"  # chosen: one fixed form, so the user agent can recognise the question
CLARIFY_Q_RE = re.compile(r"Could you tell me the ([\w ]+)\?\s*$")
CLARIFY_A = "The {p} is {v}."
CLARIFY_A_RE = re.compile(r"^The ([\w ]+?) is (.+?)\.?$", re.S)
DONT_KNOW = "I don't know that, sorry. Let's skip it."
# the user agent's small talk (the plan's non_function_call, realised by the user): questions needing no tool
SMALLTALK = [q for q, _ in CHITCHAT if "{" not in q]
MAX_PARALLEL = 2  # chosen: like the ToolACE-MT planner, at most two independent read calls per message


# ------------------------------------------------------------------------------------------------ parsing
@dataclass
class Request:
    """One call the user asked for: literal argument values and parameters referring to earlier outputs."""

    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    refs: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # required parameters the request does not give
    ranks: dict[str, int] = field(default_factory=dict)  # "the third <p> from that result": p -> 2


def _ptype(prop: dict[str, Any]) -> str:
    t = prop.get("type", "string")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    return t


def coerce(prop: dict[str, Any], raw: str) -> Any:
    """A value typed by the parameter's schema, from the text the user wrote."""
    raw = raw.strip().strip("'\"").strip()
    t = _ptype(prop)
    try:
        if t == "integer":
            return int(float(raw.lstrip("$")))
        if t == "number":
            return float(raw.lstrip("$"))
        if t == "boolean":
            return raw.lower() in ("true", "yes", "1")
        if t in ("array", "object"):
            return json.loads(raw)
    except (ValueError, json.JSONDecodeError):
        return raw  # left as text: the schema check of the call will reject it, as a real bad call
    return raw


def _group(name: str, prop: dict[str, Any]) -> str:
    ref = r"the [\w ]+? from that result"
    if "enum" in prop:
        alts = "|".join(re.escape(str(v)) for v in sorted(prop["enum"], key=lambda v: -len(str(v))))
        return f"(?P<{name}>{alts}|{ref})"
    if _ptype(prop) in ("number", "integer"):
        return f"(?P<{name}>{NUM}|{ref})"
    return f"(?P<{name}>{ref}|.+?)"  # the reference form first: it may contain words of the phrase ("from")


@dataclass
class _Pattern:
    tool: str
    regex: re.Pattern
    literal: int  # characters of literal text: the more, the more specific the match


_PATTERNS: dict[tuple[str, tuple[str, ...]], list[_Pattern]] = {}


def _patterns(env_cls: type[Env], tools: list[dict[str, Any]]) -> list[_Pattern]:
    """Regexes for every phrase of every offered tool (and the generic 'Please <summary>' form)."""
    names = tuple(sorted(t["function"]["name"] for t in tools))
    key = (env_cls.domain, names)
    if key in _PATTERNS:
        return _PATTERNS[key]
    specs = env_cls.tool_specs()
    out = []
    for t in tools:
        fn = t["function"]
        name = fn["name"]
        props = fn.get("parameters", {}).get("properties", {})
        spec = specs.get(name)
        phrases = list(spec.phrases) if spec is not None else []
        phrases.append(f"Please {text.tool_summary(env_cls, name)}.")
        phrases.append(f"I want to {text.tool_summary(env_cls, name)}.")  # the form a request withholding a value takes
        for ph in phrases:
            body = ph.rstrip().rstrip(".?!")
            parts, pos, lit = [], 0, 0
            seen: set[str] = set()
            for m in PLACEHOLDER.finditer(body):
                parts.append(re.escape(body[pos:m.start()]))
                lit += m.start() - pos
                p = m.group(1)
                if p in seen or p not in props:
                    parts.append(".+?")
                else:
                    parts.append(_group(p, props[p]))
                    seen.add(p)
                pos = m.end()
            parts.append(re.escape(body[pos:]))
            lit += len(body) - pos
            if not re.search(r"\}['\"]?$", ph.rstrip()):
                tail = r"(?:\s*\((?P<_extra>[^()]*)\))?(?:[.?!]|,? but I'm not sure of the details\.)?\s*$"
            else:  # the phrase ends with its value: a final "." or "!" belongs to the value ("On my way!")
                tail = r"(?:\s*\((?P<_extra>[^()]*)\)[.?!]?|,? but I'm not sure of the details\.)?\s*$"
            rx = "".join(parts) + tail
            out.append(_Pattern(name, re.compile(rx, re.I | re.S), lit))
    _PATTERNS[key] = out
    return out


def split_sentences(msg: str) -> list[str]:
    # a sentence ends at . ? ! (or at one closing a quoted value: "'On my way!' And show ...")
    return [s for s in re.split(r"(?<=[.?!])\s+|(?<=[.?!]['\"])\s+", (msg or "").strip()) if s]


def _extras(props: dict[str, Any], extra: str) -> dict[str, str]:
    """'(memo rent share, the account id from that result)' -> {'memo': 'rent share', 'account_id': 'the ...'}."""
    out: dict[str, str] = {}
    names = sorted(props, key=lambda p: -len(p))
    for item in re.split(r",\s+", extra or ""):
        item = item.strip()
        m = REF_RE.match(item)
        if m:
            p = m.group(1).strip().replace(" ", "_")
            if p in props:
                out[p] = item
            continue
        for p in names:
            w = text.words(p) + " "
            if item.lower().startswith(w.lower()):
                out[p] = item[len(w):]
                break
    return out


def parse_request(env_cls: type[Env], tools: list[dict[str, Any]], msg: str) -> list[Request]:
    """The calls a user message asks for, in order (one per sentence that matches a tool's phrase)."""
    pats = _patterns(env_cls, tools)
    by_name = {t["function"]["name"]: t["function"] for t in tools}
    out = []
    for sent in split_sentences(msg):
        best = None
        for p in pats:
            m = p.regex.search(sent)
            if m and (best is None or p.literal > best[0].literal):
                best = (p, m)
        if best is None:
            continue
        p, m = best
        fn = by_name[p.tool]
        props = fn.get("parameters", {}).get("properties", {})
        raw = {k: v for k, v in m.groupdict().items() if v is not None and not k.startswith("_")}
        raw.update(_extras(props, m.group("_extra") or ""))
        req = Request(p.tool)
        for k, v in raw.items():
            if REF_RE.match(v.strip()):
                req.refs.append(k)
                nth = REF_RE.match(v.strip()).group(1).split(" ", 1)[0].lower()
                if nth in text.ORDINALS:
                    req.ranks[k] = text.ORDINALS.index(nth)
            else:
                req.args[k] = coerce(props.get(k, {}), v)
        required = fn.get("parameters", {}).get("required", [])
        req.missing = [r for r in required if r not in req.args and r not in req.refs]
        out.append(req)
    return out


# ------------------------------------------------------------------------------------------------ assistant
def _domain_of(tools: list[dict[str, Any]], domain: Optional[str]) -> type[Env]:
    if domain:
        return get_env(domain)
    from toolace_mt.envs import all_envs

    names = {t["function"]["name"] for t in tools}
    for cls in all_envs().values():
        if names <= set(cls.tool_specs()):
            return cls
    raise KeyError(f"no environment offers the tools {sorted(names)}")


def _outputs_after(messages: list[dict[str, Any]], start: int) -> list[tuple[str, Any]]:
    """(tool name, parsed output) of every tool message after `start`, in order."""
    out = []
    for m in messages[start + 1:]:
        if m["role"] == "tool":
            try:
                out.append((m.get("name") or "", json.loads(m.get("content") or "null")))
            except json.JSONDecodeError:
                out.append((m.get("name") or "", m.get("content")))
    return out


def _resolve(env_cls: type[Env], param: str, outputs: list[tuple[str, Any]], used: set = frozenset()) -> Optional[Any]:
    """The value a reference points to (shared resolver: exactly one referent, else None and the agent asks).

    A result that lists exactly one value is that value even when a call already used it: a goal may point at
    one created id several times ("get the event you created", then "reschedule that event")."""
    v = resolve_reference(env_cls, param, outputs, used)
    if v is None:
        v = resolve_reference(env_cls, param, outputs)
        return v if v is not None and len(reference_candidates(env_cls, param, outputs)) == 1 else None
    return v


def _resolve_nth(env_cls: type[Env], param: str, outputs: list[tuple[str, Any]], rank: int) -> Optional[Any]:
    """The value "the <rank-th> <param> from that result" names: the rank-th value of the most recent output that
    lists more than `rank` values of the parameter's kind (the verifier's `reference_points_to` reading)."""
    for name, out in reversed(outputs):
        c = output_candidates(env_cls, param, name, out)
        if len(c) > rank:
            return c[rank] if reference_rank(env_cls, param, c[rank], outputs) == (rank, len(c)) else None
    return None


def _used_values(messages: list[dict[str, Any]], start: int) -> dict[str, set]:
    """Parameter -> values the assistant's calls since message `start` passed for it."""
    used: dict[str, set] = {}
    for m in messages[start + 1:]:
        for tc in m.get("tool_calls") or []:
            args = tc["function"].get("arguments") or {}
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except json.JSONDecodeError:
                    args = {}
            for p, v in args.items():
                used.setdefault(p, set()).add(hashable(v))
    return used


def _active_request(env_cls, tools, messages) -> tuple[int, list[Request]]:
    """Index of the user message holding the request being served, and its calls (clarifications applied)."""
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        return -1, []
    last = users[-1]
    reqs = parse_request(env_cls, tools, messages[last].get("content") or "")
    if reqs:
        return last, reqs
    # an answer to our clarification question: the request is the user message before the question
    ans = CLARIFY_A_RE.match((messages[last].get("content") or "").strip())
    q = next((m for m in reversed(messages[:last]) if m["role"] == "assistant"), None)
    qm = CLARIFY_Q_RE.search((q or {}).get("content") or "")
    if ans and qm and len(users) >= 2:
        prev, reqs = _active_request(env_cls, tools, messages[:users[-2] + 1])
        param = qm.group(1).strip().replace(" ", "_")
        done = _calls_since(messages, prev)
        # the value fills the parameter we asked for: a missing one, else a reference we could not resolve
        target = next((r for r in reqs if param in r.missing), None) or \
            next((r for r in reqs[done:] if param in r.refs), None)
        if target is not None:
            props = next(t["function"] for t in tools if t["function"]["name"] == target.tool)["parameters"]["properties"]
            target.args[param] = coerce(props.get(param, {}), ans.group(2))
            if param in target.missing:
                target.missing.remove(param)
            else:
                target.refs.remove(param)
        return prev, reqs  # calls are counted from the original request (the question made none)
    return last, []


def _calls_since(messages: list[dict[str, Any]], start: int) -> int:
    return sum(len(m.get("tool_calls") or []) for m in messages[start + 1:] if m["role"] == "assistant")


def _smalltalk(env_cls: type[Env], tools: list[dict[str, Any]], msg: str, rng: random.Random) -> str:
    if "?" in (msg or ""):
        can = ", ".join(text.tool_summary(env_cls, t["function"]["name"]) for t in tools[:4])
        return f"I can help with {env_cls.description[:1].lower()}{env_cls.description[1:].rstrip('.')}. " \
               f"For example, I can {can}. What would you like to do?"
    return rng.choice(["You're welcome! What else can I do for you?", "Happy to help. What would you like next?"])


def assistant_turn(domain: Optional[str], tools: list[dict[str, Any]], messages: list[dict[str, Any]],
                   seed: int = 0) -> dict[str, Any]:
    """One assistant step from the history alone: {"content": str | None, "tool_calls": [{name, arguments}]}."""
    env_cls = _domain_of(tools, domain)
    rng = random.Random(seed)
    start, reqs = _active_request(env_cls, tools, messages)
    if start < 0:
        return {"content": "Hello! How can I help you today?", "tool_calls": []}
    if not reqs:
        return {"content": _smalltalk(env_cls, tools, messages[start].get("content") or "", rng), "tool_calls": []}
    outputs = _outputs_after(messages, start)
    last = messages[-1]
    if last["role"] == "tool":
        try:
            o = json.loads(last.get("content") or "null")
        except json.JSONDecodeError:
            o = None
        if isinstance(o, dict) and "error" in o and "message" in o:
            return {"content": f"Sorry, that did not work: {o['message']}. Please check the details and tell me "
                               f"how you would like to proceed.", "tool_calls": []}
    done = _calls_since(messages, start)
    if done >= len(reqs):
        return {"content": text.render_reply(env_cls, outputs, rng) if outputs else
                "Done.", "tool_calls": []}
    nxt = reqs[done]
    if nxt.missing:
        return {"content": f"Sure, I can help with that. {CLARIFY_Q.format(p=text.words(nxt.missing[0]))}",
                "tool_calls": []}
    batch = [nxt]
    specs = env_cls.tool_specs()
    readonly = lambda r: r.tool in specs and not specs[r.tool].writes and not r.refs and not r.missing  # noqa: E731
    while (len(batch) < MAX_PARALLEL and done + len(batch) < len(reqs) and readonly(batch[-1])
           and readonly(reqs[done + len(batch)]) and reqs[done + len(batch)].tool not in {b.tool for b in batch}):
        batch.append(reqs[done + len(batch)])
    calls = []
    used = _used_values(messages, start)
    for r in batch:
        args = dict(r.args)
        for p in r.refs:
            v = _resolve_nth(env_cls, p, outputs, r.ranks[p]) if p in r.ranks else \
                _resolve(env_cls, p, outputs, used.get(p, set()))
            if v is None:
                return {"content": f"I could not find the {text.words(p)} in the results so far. "
                                   f"{CLARIFY_Q.format(p=text.words(p))}", "tool_calls": []}
            args[p] = v
        calls.append({"name": r.tool, "arguments": args})
    return {"content": None, "tool_calls": calls}


# ------------------------------------------------------------------------------------------------ user
def _user_messages(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("content") or "" for m in messages if m["role"] == "user"]


def user_turn(domain: str, subtasks: list[dict[str, Any]], messages: list[dict[str, Any]], rng: random.Random,
              withhold: Optional[dict[str, Any]] = None, smalltalk_before: Optional[int] = None) -> dict[str, Any]:
    """One user step from what the user agent's prompt shows (its goal and the conversation):
    {"done": bool, "message": str}. Subtask k is revealed in the k-th request message, every value stated as
    the goal shows it (the user states the values it sees; it never points at "that result" instead)."""
    env_cls = get_env(domain)
    # a goal value written as a reference (`plan.goal_view`) is one the user does not know: it points at it
    steps_of = [[[CallPlan(tool=c["tool"], arguments=dict(c["arguments"]),
                           refs={p: 0 for p, v in c["arguments"].items() if is_goal_ref(v)}) for c in st]
                 for st in s.get("goal") or []] for s in subtasks]
    last_a = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    qm = CLARIFY_Q_RE.search((last_a or {}).get("content") or "") if last_a else None
    said = _user_messages(messages)
    requests = [u for u in said if not CLARIFY_A_RE.match(u.strip()) and u not in SMALLTALK and u != DONT_KNOW]
    k = len(requests)
    if qm:  # the assistant asks for a value: answer it from the goal (the subtask being served)
        param = qm.group(1).strip().replace(" ", "_")
        if withhold and withhold.get("param") == param and withhold.get("subtask") == max(k - 1, 0):
            return {"done": False, "message": CLARIFY_A.format(p=text.words(param), v=text.fmt_value(withhold["value"]))}
        for step in steps_of[min(max(k - 1, 0), len(steps_of) - 1)] if steps_of else []:
            for c in step:
                if param in c.arguments and param not in c.refs:
                    return {"done": False, "message": CLARIFY_A.format(p=text.words(param), v=text.fmt_value(c.arguments[param]))}
        return {"done": False, "message": DONT_KNOW}
    if k >= len(subtasks):
        return {"done": True, "message": ""}
    if smalltalk_before is not None and k == smalltalk_before and not any(u in SMALLTALK for u in said):
        return {"done": False, "message": rng.choice(SMALLTALK)}
    wh = None
    if withhold and withhold.get("subtask") == k:
        wh = next(((s, c, withhold["param"]) for s, st in enumerate(steps_of[k]) for c, cp in enumerate(st)
                   if withhold["param"] in cp.arguments), None)
    return {"done": False, "message": text.render_query(env_cls, steps_of[k], rng, withhold=wh)}


def offline_user(visible: dict[str, Any]) -> dict[str, Any]:
    """The offline user agent: answers the mas_user prompt from its rendered context only."""
    from toolace_mt.llm.simulated import visible_seed

    # chosen: seeded by the conversation and the goal's calls, not the subtask wording (the plan stage may word
    # the same goal differently; the rules engine and the llm engine then still write the same dialogue)
    seed = visible_seed([visible["history_messages"], [s.get("goal") for s in visible["subtasks"]]])
    return user_turn(visible["domain"], visible["subtasks"], visible["history_messages"], random.Random(seed),
                     visible.get("withhold"), visible.get("smalltalk_before"))


def offline_assistant(visible: dict[str, Any]) -> dict[str, Any]:
    """The offline assistant agent: the tools and the conversation its prompt shows, nothing else."""
    from toolace_mt.llm.simulated import visible_seed

    return assistant_turn(None, visible["tools"], visible["history_messages"], visible_seed(visible))


def offline_tool(visible: dict[str, Any]) -> dict[str, Any]:
    from toolace_mt.llm.simulated import Unanswerable

    raise Unanswerable("schema-only pool tools have no environment and no rules to simulate their outputs")


OFFLINE = {"mas_user.jinja": offline_user, "mas_assistant.jinja": offline_assistant, "mas_tool.jinja": offline_tool}


def _register() -> None:
    from toolace_mt.llm.simulated import register_offline_answer

    for name, fn in OFFLINE.items():
        register_offline_answer(name, fn)


_register()
