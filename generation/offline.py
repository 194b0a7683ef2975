"""Offline answers of ToolACE-MT's prompts: what a stand-in model writes from the prompt's visible context only.

The `simulated` LLM backend (toolace_mt/llm/simulated.py) answers a request by calling the function registered
here for its template with a copy of the request's visible context (the values the template was rendered
from) and nothing else. So each function below may use only what its prompt shows, plus static knowledge of
the domain's tool definitions (names, parameters, phrasing), which every prompt offers as tool schemas. No
function reads a plan, a pre-executed call, a rule score or the environment's state.

Consequences, by design: the skeleton stand-in chooses its own argument values among the ids its prompt lists
(known facts and earlier tool outputs), so its calls can fail when the environment disagrees; the judge keeps a
refill only when it keeps the values of the old turns; the verifier specialists re-check visible facts
(grounding as whole tokens, replies against outputs, completion, repetition), so they can reject what the rule
verifier passed and pass what it rejects.
"""
from __future__ import annotations

import json
import random
import re
from typing import Any

from toolace_mt.envs import get_env
from toolace_mt.llm.simulated import Unanswerable, register_offline_answer, visible_seed

from . import text
from .injections import INJECTIONS
from .plan import REF_VALUE, CallPlan, ORDINAL_WORDS, _describe, _schema_value, phrase_params, produced_values, tool_info
from .resolve import atoms, id_tokens, is_error_output, json_value, list_lengths, mentions_token, output_candidates

TOKEN = re.compile(r"[A-Za-z0-9][\w.@:/-]*[A-Za-z0-9]|\d")


def _rng(visible: dict[str, Any], salt: str = "") -> random.Random:
    return random.Random(visible_seed([salt, visible]))


# ------------------------------------------------------------------------------------------------ plan
def answer_plan(v: dict[str, Any]) -> dict[str, Any]:
    """Subtasks for the step counts asked, from the candidate tools and the facts the prompt lists."""
    cls = get_env(v["domain"])
    specs = cls.tool_specs()
    names = [t["function"]["name"] for t in v["tools"] if t["function"]["name"] in specs]
    if not names:
        raise Unanswerable("the plan prompt lists no tool of the domain")
    rng = _rng(v)
    have = {k for k, vals in (v.get("known_values") or {}).items() if vals}

    def runnable(n: str) -> bool:
        req = tool_info(cls, n)[1]
        return all(specs[n].consumes[p] in have for p in req if p in specs[n].consumes)

    subs, used = [], []
    for n_steps in v["step_counts"]:
        tools = []
        for _ in range(int(n_steps)):
            ok = [n for n in names if runnable(n)] or names
            fresh = [n for n in ok if n not in used and n not in tools] or ok
            # chosen: prefer a tool that consumes what an earlier chosen tool produces (the prompt asks for chaining)
            chain = [n for n in fresh if any(k in {kk for t in used + tools for kk in specs[t].produces}
                                             for k in specs[n].consumes.values())]
            pick = rng.choice(chain if chain and rng.random() < 0.6 else fresh)
            tools.append(pick)
            have |= set(specs[pick].produces)
        used.extend(tools)
        tools = list(dict.fromkeys(tools))
        subs.append({"description": _describe(cls, tools).capitalize(), "tools": tools})
    return {"subtasks": subs}


# ------------------------------------------------------------------------------------------------ skeleton
def visible_values(cls, known: dict[str, list[Any]], messages: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Entity kind -> values the prompt shows: earlier tool outputs (newest first), then the listed facts."""
    specs = cls.tool_specs()
    out: dict[str, list[Any]] = {}
    for m in reversed(messages):
        if m.get("role") != "tool" or m.get("name") not in specs:
            continue
        o = json_value(m.get("content"))
        if is_error_output(o):
            continue
        for kind, vals in produced_values(cls, m["name"], o).items():
            lst = out.setdefault(kind, [])
            lst.extend(x for x in vals if x not in lst)
    for kind, vals in (known or {}).items():
        lst = out.setdefault(kind, [])
        lst.extend(x for x in vals if x not in lst)
    return out


def _fill(cls, name: str, values: dict[str, list[Any]], rng: random.Random) -> tuple[dict[str, Any], bool]:
    """Arguments for one call from visible values; False when a required entity value is not visible."""
    spec = cls.tool_specs()[name]
    params, req, _ = tool_info(cls, name)
    props = params.get("properties", {})
    phrase = rng.choice(spec.phrases or [""])
    wanted = [p for p in props if p in req or p in phrase_params(phrase)]
    args: dict[str, Any] = {}
    complete = True
    for p in wanted:
        kind = spec.consumes.get(p)
        if kind is not None:
            vals = [x for x in values.get(kind) or [] if x not in args.values()]  # two ids of a kind differ
            if not vals:
                complete = complete and p not in req
                continue
            # chosen: mostly the newest visible value (what the conversation is about), sometimes another
            args[p] = vals[0] if rng.random() < 0.6 else rng.choice(vals)
        elif p in cls.VALUE_POOLS:
            args[p] = rng.choice(cls.VALUE_POOLS[p])
        else:
            args[p] = _schema_value(p, props[p], rng)
    return args, complete


def answer_subtrajectory(v: dict[str, Any]) -> dict[str, Any]:
    """One part of the conversation: the user's request, the calls step by step, the closing reply.

    Written before any call runs (paper §2.1), from the ids the prompt shows; a value a call of this part
    would return is not known yet, so every call uses values visible now and may fail for real."""
    if v.get("simulate_outputs"):
        raise Unanswerable("schema-only pool tools: no offline stand-in writes their outputs")
    cls = get_env(v["domain"])
    specs = cls.tool_specs()
    rng = _rng(v)
    offered = [t["function"]["name"] for t in v["tools"] if t["function"]["name"] in specs]
    tools = [n for n in v["subtask_tools"] if n in specs] or offered
    values = visible_values(cls, v.get("known_values") or {}, v.get("history_messages") or [])
    steps: list[list[CallPlan]] = []
    if v.get("goal"):  # the prompt shows the user's goal as calls: the request asks for exactly those
        steps = [[CallPlan(tool=c["tool"], arguments=dict(c["arguments"])) for c in st] for st in v["goal"]]
    for s in range(0 if steps else int(v["n_steps"])):
        order = tools[s % len(tools):] + tools[:s % len(tools)]
        args, name = None, order[0]
        for cand in order:  # the subtask's tool for this step; another of its tools when no value is visible
            a, ok = _fill(cls, cand, values, rng)
            if ok:
                args, name = a, cand
                break
        if args is None:
            args, _ = _fill(cls, name, values, rng)  # a call missing a value: the environment will refuse it
        steps.append([CallPlan(tool=name, arguments=args)])
    names = list(dict.fromkeys(c.tool for st in steps for c in st))
    summary = "; ".join(text.tool_summary(cls, n) for n in names)
    return {"user": text.render_query(cls, steps, rng),
            "steps": [[{"name": c.tool, "arguments": c.arguments} for c in st] for st in steps],
            "reply": f"I've taken care of that: {summary}."}


# ------------------------------------------------------------------------------------------------ describe / part
REF_WHERE = re.compile(r"^<the (?:(\S+) )?\w+ (?:returned|listed) by (?:the (\S+) )?(\w+)(?: call)? "
                       r"(?:in task (\d+)|in this task)>$")


def answer_describe(v: dict[str, Any]) -> dict[str, Any]:
    """One description per subtask from the calls the prompt shows: what each call does, with its values."""
    cls = get_env(v["domain"])
    specs = cls.tool_specs()
    subs = []
    for s in v["goal"]:
        bits = []
        for step in s:
            for c in step:
                if c["tool"] not in specs:
                    raise Unanswerable(f"the describe prompt shows an unknown tool {c['tool']!r}")
                vals = [("the value an earlier call returns" if REF_VALUE.match(str(x)) else text.fmt_value(x))
                        for x in c["arguments"].values()]
                bits.append(text.tool_summary(cls, c["tool"]) + (f" ({', '.join(vals)})" if vals else ""))
        subs.append({"description": ("; then ".join(bits))[:1].upper() + ("; then ".join(bits))[1:]})
    return {"subtasks": subs}


def _task_outputs(messages: list[dict[str, Any]]) -> list[list[tuple[str, Any]]]:
    """(tool, output) of the calls the transcript shows, per task (the span after each user request)."""
    tasks: list[list[tuple[str, Any]]] = []
    for m in messages:
        if m.get("role") == "user":
            tasks.append([])
        elif m.get("role") == "tool" and tasks:
            tasks[-1].append((m.get("name") or "", json_value(m.get("content"))))
    return tasks


def _rank(word: str | None) -> int:
    if not word:
        return 0
    if word in ORDINAL_WORDS:
        return ORDINAL_WORDS.index(word)
    digits = re.match(r"(\d+)", word)
    return int(digits.group(1)) - 1 if digits else 0


def _goal_steps(cls, goal: list, history: list[dict[str, Any]]) -> list[list[CallPlan]]:
    """The goal's calls as the user would ask for them: a reference to an output of an earlier task the
    transcript shows is the value that output gives (the user saw it reported); one to a call of this same task
    stays a reference ("the <param> from that result")."""
    tasks = _task_outputs(history)
    steps = []
    for st in goal:
        step = []
        for c in st:
            args, refs = {}, {}
            for k, x in c["arguments"].items():
                m = REF_WHERE.match(x) if isinstance(x, str) else None
                if m is None:
                    args[k] = x
                    continue
                t = int(m.group(4)) if m.group(4) else 0
                if 1 <= t <= len(tasks):
                    outs = [(n, o) for n, o in tasks[t - 1] if n == m.group(3)]
                    which = _rank(m.group(2)) if m.group(2) else len(outs) - 1
                    pick = outs[which] if 0 <= which < len(outs) else None
                    cands = output_candidates(cls, k, pick[0], pick[1]) if pick else []
                    rank = _rank(m.group(1))
                    if rank < len(cands):
                        args[k] = cands[rank]
                        continue
                args[k], refs[k] = x, 0  # produced within this part: "the <param> from that result"
            step.append(CallPlan(tool=c["tool"], arguments=args, refs=refs))
        steps.append(step)
    return steps


def _last_results(history: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """(tool, output) of the calls since the last user message: what the closing reply reports."""
    res: list[tuple[str, Any]] = []
    for m in reversed(history):
        if m.get("role") == "user":
            break
        if m.get("role") == "tool":
            res.insert(0, (m.get("name") or "", json_value(m.get("content"))))
    return res


def answer_part(v: dict[str, Any]) -> dict[str, Any]:
    """The reply closing the previous request (from the outputs the transcript shows) and the next request."""
    cls = get_env(v["domain"])
    rng = _rng(v)
    history = v.get("history_messages") or []
    out: dict[str, Any] = {}
    if v.get("write_reply"):
        out["reply"] = text.render_reply(cls, _last_results(history), rng)
    if not v.get("write_user"):
        return out
    if v.get("goal") is not None:
        steps = _goal_steps(cls, v["goal"], history)
    else:
        steps = _own_steps(cls, v, rng)
        out["steps"] = [[{"name": c.tool, "arguments": c.arguments} for c in st] for st in steps]
    out["user"] = text.render_query(cls, steps, rng)
    return out


def _own_steps(cls, v: dict[str, Any], rng: random.Random) -> list[list[CallPlan]]:
    """Calls chosen from the description's tools and the values the prompt shows (skeleton_goal: description)."""
    specs = cls.tool_specs()
    offered = [t["function"]["name"] for t in v["tools"] if t["function"]["name"] in specs]
    desc = v.get("description") or ""

    def pos(n: str) -> int:
        at = [i for i in (desc.find(n), desc.find(text.tool_summary(cls, n))) if i >= 0]
        return min(at) if at else -1

    named = sorted((n for n in offered if pos(n) >= 0), key=pos)  # the tools the description names, in its order
    tools = named or offered
    values = visible_values(cls, v.get("known_values") or {}, v.get("history_messages") or [])
    # chosen: a value the description names comes first (the task asks for it), then the others the prompt shows
    values = {k: sorted(vals, key=lambda x: (not mentions_token(desc, x), vals.index(x))) for k, vals in values.items()}
    steps: list[list[CallPlan]] = []
    for s in range(int(v["n_steps"])):
        order = tools[s % len(tools):] + tools[:s % len(tools)]
        args, name = None, order[0]
        for cand in order:
            a, ok = _fill(cls, cand, values, rng)
            for p, x in list(a.items()):  # the description's values, one per call, in order
                kind = cls.tool_specs()[cand].consumes.get(p)
                named_vals = [y for y in values.get(kind) or [] if mentions_token(desc, y)]
                if named_vals:
                    a[p] = named_vals[0]
                    values[kind] = [y for y in values[kind] if y != named_vals[0]] + [named_vals[0]]
            if ok:
                args, name = a, cand
                break
        if args is None:
            args, _ = _fill(cls, name, values, rng)
        steps.append([CallPlan(tool=name, arguments=args)])
    return steps


# ------------------------------------------------------------------------------------------------ inject
def answer_inject(v: dict[str, Any]) -> dict[str, Any]:
    typ = v["itype"]
    if typ not in INJECTIONS:
        raise Unanswerable(f"unknown injection type {typ!r}")
    return {"turns": INJECTIONS.get(typ).answer(v.get("facts") or {}, v.get("original") or "", _rng(v))}


# ------------------------------------------------------------------------------------------------ refine / judge
LINE = re.compile(r"^\[(\d+)\] (user|assistant|tool[^:]*): (.*)$")


def _mask_roles(context: str) -> dict[int, str]:
    out = {}
    for line in context.splitlines():
        m = LINE.match(line)
        if m:
            k = re.fullmatch(r"<MASK (\d+)>", m.group(3).strip())
            if k:
                out[int(k.group(1))] = m.group(2)
    return out


def answer_refill(v: dict[str, Any]) -> dict[str, Any]:
    """Each masked turn rewritten from its original text (shown in the prompt): another opening, same values."""
    rng = _rng(v)
    roles = _mask_roles(v.get("context") or "")
    fills = []
    for k, orig in zip(v["masks"], v["originals"]):
        fills.append({"mask": k, "content": text.rephrase(orig or "", roles.get(k, "user"), rng) or (orig or "...")})
    return {"fills": fills}


def value_tokens(s: str) -> set[str]:
    """The tokens of a text that carry values (numbers, ids): what a rewrite must keep."""
    return {t.lower() for t in TOKEN.findall(s or "") if any(ch.isdigit() for ch in t)}


def answer_judge(v: dict[str, Any]) -> dict[str, Any]:
    """Keep the new turns only if they keep every value the old ones stated and change something."""
    lost = []
    for o, n in zip(v["old"], v["new"]):
        missing = sorted(value_tokens(o) - value_tokens(n))
        lost.extend(missing)
    if lost:
        return {"keep": "old", "reason": f"the new version drops values: {', '.join(lost[:5])}"}
    if list(v["old"]) == list(v["new"]):
        return {"keep": "old", "reason": "no change"}
    return {"keep": "new", "reason": "same values, reworded"}


# ------------------------------------------------------------------------------------------------ verify
def parse_transcript(s: str) -> list[dict[str, Any]]:
    """Transcript lines ('[i] role: text', 'CALLS name({...}); ...') back into messages (visible fields)."""
    out = []
    for line in (s or "").splitlines():
        m = LINE.match(line)
        if not m:
            if out and not line.startswith("..."):
                out[-1]["content"] = (out[-1]["content"] or "") + "\n" + line  # a multi-line text
            continue
        role, body = m.group(2), m.group(3)
        if role.startswith("tool"):
            out.append({"i": int(m.group(1)), "role": "tool", "name": role[5:].strip(), "content": body})
            continue
        calls = []
        if role == "assistant" and "CALLS " in body:
            body, _, rest = body.partition("CALLS ")
            calls = parse_calls(rest)
        out.append({"i": int(m.group(1)), "role": role, "content": body.strip(), "calls": calls})
    return out


def parse_calls(s: str) -> list[tuple[str, Any]]:
    """'a({"x": 1}); b' -> [("a", {"x": 1}), ("b", None)] (names only when the digest shows no arguments)."""
    dec = json.JSONDecoder()
    out, pos = [], 0
    while pos < len(s):
        m = re.compile(r"\s*;?\s*([\w.-]+)\s*(\(?)").match(s, pos)
        if not m or not m.group(1):
            break
        name, pos = m.group(1), m.end()
        args = None
        if m.group(2):
            try:
                args, pos = dec.raw_decode(s, pos)
            except json.JSONDecodeError:
                args = {}
            pos = s.find(")", pos) + 1 or len(s)
        else:
            pos = s.find(",", pos) + 1 if "," in s[pos:] else len(s)
        out.append((name, args))
    return out


def _grounding(msgs: list[dict[str, Any]]) -> list[str]:
    probs, seen = [], []
    for k, m in enumerate(msgs):
        for name, args in m.get("calls") or []:
            if args is None:
                continue
            # a call that failed and was followed by a corrected call of the same tool is a visible retry
            nxt = [x for x in msgs[k + 1:k + 1 + len(m["calls"])] if x["role"] == "tool" and x.get("name") == name]
            retried = nxt and is_error_output(json_value(nxt[0]["content"])) and any(
                n == name for later in msgs[k + 1:] for n, _ in later.get("calls") or [])
            if retried:
                continue
            for a in atoms(args):
                if isinstance(a, str) and not any(ch.isdigit() for ch in a):
                    continue  # chosen: free text and enum words are not ids; ids and numbers must be grounded
                if not any(mentions_token(t, a) for t in seen):
                    probs.append(f"message {m['i']}: {name} uses {json.dumps(a)}, which no earlier turn shows")
        seen.append((m.get("content") or "") + " " + json.dumps([a for _, a in m.get("calls") or []]))
    return probs


COUNT = re.compile(r"\b(\d+) items?\b")


def _consistency(msgs: list[dict[str, Any]]) -> list[str]:
    """An assistant reply must agree with the outputs before it: no id or number nobody showed, no success
    claimed after an error that was not retried."""
    probs, seen = [], []
    lengths: set[int] = set()
    last_user = -1
    for k, m in enumerate(msgs):
        if m["role"] == "user":
            last_user = k
        if m["role"] == "tool":
            lengths |= list_lengths(json_value(m["content"]))
        if m["role"] == "assistant" and not m.get("calls") and m.get("content"):
            shown = " ".join(seen)
            counts = {int(n) for n in COUNT.findall(m["content"])}
            for tok in dict.fromkeys(id_tokens(COUNT.sub("", m["content"]))):
                if not mentions_token(shown, tok):
                    probs.append(f"message {m['i']}: the reply states {tok!r}, which no earlier turn shows")
            for n in sorted(counts - lengths):
                probs.append(f"message {m['i']}: the reply counts {n} items, no earlier output lists {n}")
            outs = [x for x in msgs[last_user + 1:k] if x["role"] == "tool"]
            errs = [x for x in outs if is_error_output(json_value(x["content"]))]
            failed_last = errs and outs[-1] is errs[-1]
            if failed_last and not re.search(r"\b(sorry|fail|error|could not|couldn't|cannot|can't|unable|not)\b",
                                             m["content"], re.I):
                probs.append(f"message {m['i']}: the reply reports success after the failed call {errs[-1]['name']}")
        seen.append((m.get("content") or "") + " " + json.dumps([a for _, a in m.get("calls") or []]))
    return probs


def answer_verify(v: dict[str, Any]) -> dict[str, Any]:
    """A specialist's verdict from the transcript its prompt shows (re-checked, never a copy of the rules)."""
    msgs = parse_transcript(v["dialogue"])
    name = v["specialist"]
    if name == "argument_grounding":
        probs = _grounding(msgs)
    elif name == "cross_turn_consistency":
        probs = _consistency(msgs)
    elif name == "task_completion":
        last = msgs[-1] if msgs else {}
        probs = [] if last.get("role") == "assistant" and not last.get("calls") and last.get("content") else \
            ["the conversation does not end with an assistant reply"]
        unknown = sorted({n for m in msgs for n, _ in m.get("calls") or []} - set(v.get("tool_names") or []))
        probs += [f"calls tools that are not offered: {unknown[:3]}"] if unknown else []
    elif name == "plan_fidelity":
        # every id-like value a task names is used by some call the transcript shows
        used = " ".join(json.dumps(a, ensure_ascii=False) for m in msgs for _, a in m.get("calls") or [])
        probs = [f"task {k + 1} names {tok!r}, which no call uses" for k, t in enumerate(v.get("tasks") or [])
                 for tok in dict.fromkeys(id_tokens(t)) if any(ch.isalpha() for ch in tok)
                 and not mentions_token(used, tok)]
    elif name == "naturalness":
        talk = [m for m in msgs if m["role"] in ("user", "assistant") and m.get("content")]
        probs = [f"message {b['i']} repeats message {a['i']}" for a, b in zip(talk, talk[1:])
                 if a["content"] == b["content"]]
    else:
        raise Unanswerable(f"unknown specialist {name!r}")
    return {"pass": not probs, "reason": "; ".join(probs)[:300] or "no problem found in the visible turns"}


def answer_verify_all(v: dict[str, Any]) -> dict[str, Any]:
    """Every specialist's verdict on the one transcript the batched prompt shows."""
    return {"verdicts": [dict(answer_verify({"specialist": s, "tool_names": v.get("tool_names"), "tasks": v.get("tasks"),
                                             "dialogue": v["dialogue"]}), specialist=s) for s in v["specialists"]]}


OFFLINE = {"plan.jinja": answer_plan, "subtrajectory.jinja": answer_subtrajectory, "describe.jinja": answer_describe,
           "part.jinja": answer_part, "inject.jinja": answer_inject,
           "refill.jinja": answer_refill, "judge.jinja": answer_judge, "verify.jinja": answer_verify,
           "verify_all.jinja": answer_verify_all}

for _name, _fn in OFFLINE.items():
    register_offline_answer(_name, _fn)
