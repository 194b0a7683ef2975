"""Stage 2a, complexity injection by mask-and-extend (paper §2.2(a)): one observation becomes o', a', o''.

Each injection is found in two halves. `find` (code, both engines) picks the masked observation and fixes
everything the environment decides: the withheld argument, the tool held back, the faulty call and its real
error, the listing calls and their real outputs. `realise` writes the texts of the new turns: templates for
`rules`, one batched LLM request for `llm` (the spec is the request's payload). `apply` splices them in.

Types: clarification, tool_awareness (BFCL miss_func: the tool arrives later via ``meta["tool_updates"]``),
error_simulation (a real environment error, then a reflected, corrected call), non_function_call, and
long_context (beyond the paper: a large listing of a state with distractor entities, like BFCL long_context).
"""
from __future__ import annotations

import copy
import json
import random
from typing import Any, Optional

from toolace_mt.envs import get_env

from . import context, llm_io, text
from .plan import TaskPlan, tool_info
from .pool import ENV_TYPES, is_pool
from .resolve import value_in_text
from .work import (args_of, assistant, call, call_outputs, fail, index_of_uid, insert, replace, replay, tool_msg, user)

LONG_MIN_CHARS = 600  # chosen: a listing shorter than this is not "long context" (check in verify/rules.py)
ENV_ERRORS_EXCLUDED = ("invalid_arguments", "unknown_tool", "internal_error")  # schema-level, not realistic faults


def _log(d) -> set[int]:
    return set(d["meta"]["refinement"]["edit_log"])


def _queries(d, free_only=True) -> list[tuple[int, dict]]:
    log = _log(d)
    return [(i, tg) for i, tg in enumerate(d["meta"]["turns"]) if tg["k"] == "query" and (not free_only or tg["u"] not in log)]


def _mentions(txt: str, v: Any) -> bool:
    return value_in_text(v, txt or "")


# ------------------------------------------------------------------------------------------------ find
def find(d: dict, itype: str, rng: random.Random) -> Optional[dict]:
    """A spec for one injection of `itype`, or None when the dialogue offers no place for it."""
    return {"clarification": _find_clarify, "tool_awareness": _find_tool_awareness,
            "error_simulation": _find_error, "non_function_call": _find_nfc,
            "long_context": _find_long}[itype](d, rng)


def _find_clarify(d, rng):
    plan = TaskPlan.from_dict(d["meta"]["plan"])
    cands = []
    for i, tg in _queries(d):
        t = tg["t"]
        if t >= len(plan.subtasks) or not plan.subtasks[t].steps:
            continue
        for c, cp in enumerate(plan.subtasks[t].steps[0]):
            req = set(tool_info(get_env(plan.domain), cp.tool)[1])
            for p, v in cp.arguments.items():
                if p in req and p not in cp.refs and isinstance(v, (str, int, float)) and not isinstance(v, bool):
                    cands.append((i, tg, c, p, v, cp.tool))
    rng.shuffle(cands)
    cls = get_env(plan.domain)
    for i, tg, c, p, v, tool in cands:
        o1 = text.render_query(cls, plan.subtasks[tg["t"]].steps, rng, withhold=(0, c, p),
                               outputs=call_outputs(d, tg["t"]))
        if _mentions(o1, v):
            continue  # the value appears elsewhere in the request: asking for it would be pointless
        return {"type": "clarification", "uid": tg["u"], "t": tg["t"], "tool": tool, "param": p, "value": v,
                "step_call": c, "roles": ["user", "assistant", "user"],
                "instruction": f"The user's request omits the required '{p}' of {tool}; the assistant asks for "
                               f"it; the user then gives it: {json.dumps(v)}. The first user turn must NOT contain "
                               f"{json.dumps(v)}, and must keep every other value of the original request.",
                "_o1": o1}
    return None


def _find_tool_awareness(d, rng):
    first_use: dict[str, int] = {}
    for i, m in enumerate(d["messages"]):
        for tc in m.get("tool_calls") or []:
            first_use.setdefault(tc["function"]["name"], i)
    held = {t["function"]["name"] for u in d["meta"]["tool_updates"] for t in u["tools"]}
    cands = []
    for i, tg in _queries(d):
        nxt = [j for j, t2 in enumerate(d["meta"]["turns"]) if t2["k"] == "query" and j > i]
        end = nxt[0] if nxt else len(d["messages"])
        for name, j in first_use.items():
            if i < j < end and name not in held and any(t["function"]["name"] == name for t in d["tools"]):
                cands.append((i, tg, name))
    if not cands:
        return None
    i, tg, name = rng.choice(cands)
    cls = get_env(d["meta"]["domain"])
    return {"type": "tool_awareness", "uid": tg["u"], "t": tg["t"], "tool": name,
            "roles": ["user", "assistant", "user"],
            "instruction": f"The tool {name} is NOT available to the assistant yet. Turn 1: the user's request "
                           f"(keep it as it is). Turn 2: the assistant says it has no tool to "
                           f"{text.tool_summary(cls, name)} and makes no call. Turn 3: the user says the tool "
                           f"{name} has now been added and asks to continue."}


def _find_error(d, rng):
    turns = d["meta"]["turns"]
    log = _log(d)
    cands = [i for i, tg in enumerate(turns) if tg["k"] == "call" and tg["u"] not in log]
    rng.shuffle(cands)
    cls = get_env(d["meta"]["domain"])
    env, done = None, 0
    for i in sorted(cands[:4]):  # chosen: a few tries bound the cost; one incremental replay serves them all
        if env is None:
            env, _ = replay(d, until=i)
        else:
            for m in d["messages"][done:i]:
                for tc in m.get("tool_calls") or []:
                    env.execute(tc["function"]["name"], args_of(tc))
        done = i
        m = d["messages"][i]
        order = list(range(len(m["tool_calls"])))
        rng.shuffle(order)
        for j in order:
            tc = m["tool_calls"][j]
            name, args = tc["function"]["name"], args_of(tc)
            spec = cls.tool_specs().get(name)
            if spec is None:
                continue
            seen = _earlier_values(d, i)
            for p in [p for p in args if p in spec.consumes and isinstance(args[p], str)]:
                v = args[p]
                options = [x for x in seen if x != v and isinstance(x, str)]
                rng.shuffle(options)
                options = options[:3] + [v[:-1], v.lower() if v.lower() != v else v + "0"]
                for bad in options:
                    if not bad or bad == v:
                        continue
                    snap = env.snapshot() if spec.writes else None  # a failed call leaves the state as it was
                    r = env.execute(name, dict(args, **{p: bad}))
                    if snap is not None and r.ok:
                        env.restore(snap)
                    if r.ok or r.error.kind in ENV_ERRORS_EXCLUDED:
                        continue
                    return {"type": "error_simulation", "uid": d["meta"]["turns"][i]["u"], "call_index": j,
                            "tool": name, "param": p, "bad_value": bad, "good_value": v,
                            "error": r.error.to_dict(), "roles": ["assistant"],
                            "instruction": f"The call {name} was sent with {p}={json.dumps(bad)} and failed with "
                                           f"{json.dumps(r.error.to_dict())}. Write the assistant's short reflection "
                                           f"(one or two sentences) that precedes the corrected call with "
                                           f"{p}={json.dumps(v)}."}
    return None


def _earlier_values(d, until: int) -> list[Any]:
    """Entity ids earlier calls used: mixing one of them up is a realistic argument error ("freeze" is not)."""
    specs = get_env(d["meta"]["domain"]).tool_specs()
    out = []
    for m in d["messages"][:until]:
        for tc in m.get("tool_calls") or []:
            spec = specs.get(tc["function"]["name"])
            consumes = spec.consumes if spec is not None else {}
            out.extend(v for p, v in args_of(tc).items() if isinstance(v, str) and p in consumes)
    return list(dict.fromkeys(out))


def _find_nfc(d, rng):
    qs = _queries(d)
    if not qs:
        return None
    i, tg = rng.choice(qs)
    return {"type": "non_function_call", "uid": tg["u"], "t": tg["t"], "roles": ["user", "assistant", "user"],
            "instruction": "Turn 1: the user makes small talk or asks a general question that needs no tool. "
                           "Turn 2: the assistant answers in plain text (no call). Turn 3: the user returns to the "
                           "task with the original request, keeping every value of it."}


def _find_long(d, rng):
    cls = get_env(d["meta"]["domain"])
    held = {t["function"]["name"] for u in d["meta"]["tool_updates"] for t in u["tools"]}
    # read tools whose required parameters all take entity ids (filled from the state, stated by the user)
    listing = [n for n, s in sorted(cls.tool_specs().items())
               if not s.writes and n not in held and all(p in s.consumes for p in tool_info(cls, n)[1])]
    qs = _queries(d)
    if not listing or not qs:
        return None
    i, tg = rng.choice(qs)
    env, _ = replay(d, until=i)
    rng.shuffle(listing)
    chosen, args, outs, size = [], [], [], 0
    for n in listing:
        spec = cls.tool_specs()[n]
        a = {}
        req = tool_info(cls, n)[1]
        for p in req:
            vals = env.entity_values(spec.consumes[p])
            if not vals:
                break
            a[p] = rng.choice(vals)
        if len(a) < len(req):
            continue
        r = env.execute(n, a)
        if r.ok and len(r.content()) > 80:
            chosen.append(n)
            args.append(a)
            outs.append(r.content())
            size += len(outs[-1])
        if size >= LONG_MIN_CHARS or len(chosen) == 3:  # chosen: at most 3 listings in one parallel step
            break
    if size < LONG_MIN_CHARS:
        return None
    what = [text.tool_summary(cls, n) + "".join(f" for {text.words(p)} {text.fmt_value(v)}" for p, v in a.items())
            for n, a in zip(chosen, args)]
    return {"type": "long_context", "uid": tg["u"], "t": tg["t"], "tools": chosen, "arguments": args,
            "outputs": outs, "what": what, "output_chars": size, "beyond_paper": True, "roles": ["user"],
            "instruction": "Rewrite the masked user turn so that the user first asks to see everything ("
                           + "; ".join(what) + ", stating these values) and then makes the original request, "
                           "keeping every value of it."}


# ------------------------------------------------------------------------------------------------ realise
def realise_rules(d: dict, spec: dict, rng: random.Random) -> list[str]:
    """Template texts for the spec's new turns (in `spec["roles"]` order)."""
    cls = get_env(d["meta"]["domain"])
    i = index_of_uid(d, spec["uid"])
    orig = d["messages"][i]["content"] if i is not None else ""
    typ = spec["type"]
    if typ == "clarification":
        pw = text.words(spec["param"])
        return [spec["_o1"], rng.choice(text.CLARIFY_Q).format(p=pw),
                rng.choice(text.CLARIFY_A).format(p=pw, v=text.fmt_value(spec["value"]))]
    if typ == "tool_awareness":
        return [orig, rng.choice(text.MISSING_TOOL).format(s=text.tool_summary(cls, spec["tool"])),
                rng.choice(text.TOOL_ADDED).format(t=spec["tool"])]
    if typ == "non_function_call":
        q, a = rng.choice(text.CHITCHAT)
        names = sorted(cls.tool_specs())
        tool = rng.choice(names)
        fill = dict(domain=cls.description.rstrip(".").lower() or cls.domain,
                    tools=", ".join(text.tool_summary(cls, n) for n in names[:3]), tool=tool,
                    summary=text.tool_summary(cls, tool))
        return [q.format(**fill), a.format(**fill), rng.choice(text.RETURN).format(q=orig)]
    if typ == "error_simulation":
        return [rng.choice(text.REFLECT).format(msg=spec["error"]["message"], p=text.words(spec["param"]),
                                                v=text.fmt_value(spec["good_value"]))]
    if typ == "long_context":
        what = "; ".join(spec["what"])
        return [rng.choice(text.LONG_ASK).format(what=what, q=orig)]
    raise ValueError(typ)


def check_texts(spec: dict, texts: list[str]) -> Optional[str]:
    """Why LLM-written texts do not realise the spec (None = fine)."""
    if len(texts) != len(spec["roles"]) or any(not (t or "").strip() for t in texts):
        return f"expected {len(spec['roles'])} non-empty turns, got {len(texts)}"
    if spec["type"] == "clarification":
        if _mentions(texts[0], spec["value"]):
            return "the clarification request already contains the withheld value"
        if not _mentions(texts[2], spec["value"]):
            return "the user's answer does not supply the withheld value"
    return None


def request_llm(d: dict, spec: dict, llm_cfg=None):
    i = index_of_uid(d, spec["uid"])
    payload = {k: v for k, v in spec.items() if not k.startswith("_")}
    payload["masked_index"] = i
    payload["original"] = d["messages"][i]["content"] if i is not None else None
    schema = copy.deepcopy(llm_io.TURNS_SCHEMA)
    schema["properties"]["turns"].update(minItems=len(spec["roles"]), maxItems=len(spec["roles"]))
    # chosen: the new turns depend on the masked observation's local context (its request, the calls and outputs
    # of its subtask, its neighbours) and the plan of its subtask; the spec's instruction carries every value the
    # environment fixed (withheld argument, held-back tool, real error, listings), so the whole transcript adds
    # nothing the edit needs
    idx = [i] if i is not None else []
    return llm_io.request("inject.jinja", "inject", payload, schema, llm_cfg,
                          context=context.local_context(d, idx, {i: "X"} if i is not None else None),
                          summary=context.task_summary(d, idx), itype=spec["type"], original=payload["original"],
                          instruction=spec["instruction"], roles=spec["roles"], n_turns=len(spec["roles"]),
                          facts=facts(d, spec))


def facts(d: dict, spec: dict) -> dict[str, Any]:
    """What the environment fixed for this injection, shown to the model as data (the instruction says it too)."""
    out = {k: spec[k] for k in ("tool", "param", "value", "good_value", "what") if k in spec}
    if "error" in spec:
        out["error_message"] = spec["error"].get("message")
    out["domain"] = d["meta"].get("domain")
    if spec.get("type") == "tool_awareness" and not is_pool(d["meta"].get("domain", "")):
        out["tool_does"] = text.tool_summary(get_env(d["meta"]["domain"]), spec["tool"])
    return out


# ------------------------------------------------------------------------------------------------ apply
def apply(d: dict, spec: dict, texts: list[str]) -> None:
    """Splice the new turns in and record the injection (uids of its turns; positions are set at export)."""
    i = index_of_uid(d, spec["uid"])
    typ = spec["type"]
    t = spec.get("t", -1)
    rec = {k: v for k, v in spec.items() if k not in ("roles", "instruction", "outputs") and not k.startswith("_")}
    if typ in ("clarification", "non_function_call", "tool_awareness"):
        kinds = {"clarification": ("clarify_ask", "clarify_question", "clarify_answer"),
                 "non_function_call": ("chitchat", "chitchat_answer", "query"),
                 "tool_awareness": ("query", "missing_tool", "tool_added")}[typ]
        replace(d, i, [(user(texts[0]), kinds[0], t), (assistant(texts[1]), kinds[1], t), (user(texts[2]), kinds[2], t)])
        new = d["meta"]["turns"][i:i + 3]
        if typ == "tool_awareness":
            tools = [x for x in d["tools"] if x["function"]["name"] == spec["tool"]]
            d["tools"] = [x for x in d["tools"] if x["function"]["name"] != spec["tool"]]
            d["meta"]["tool_updates"].append({"at": i + 2, "tools": tools})
    elif typ == "error_simulation":
        m = d["messages"][i]
        tc = m["tool_calls"][spec["call_index"]]
        good = args_of(tc)
        tc["function"]["arguments"] = dict(good, **{spec["param"]: spec["bad_value"]})
        j = next(k for k in range(i + 1, len(d["messages"])) if d["messages"][k].get("tool_call_id") == tc["id"])
        ok_content = d["messages"][j]["content"]
        d["messages"][j]["content"] = json.dumps(spec["error"], ensure_ascii=False)
        d["meta"]["turns"][j]["k"] = "error_output"
        end = j
        while end + 1 < len(d["messages"]) and d["messages"][end + 1]["role"] == "tool":
            end += 1
        n = int(d["meta"].get("next_call", 0)) + 1
        d["meta"]["next_call"] = n
        cid = f"call_{n}"
        tt = d["meta"]["turns"][i]["t"]
        insert(d, end + 1, [(assistant(texts[0], [call(cid, spec["tool"], good)]), "reflect_call", tt),
                            (tool_msg(cid, spec["tool"], ok_content), "corrected_output", tt)])
        rec.update(failed_call_id=tc["id"], corrected_call_id=cid)
        new = [d["meta"]["turns"][j]] + d["meta"]["turns"][end + 1:end + 3]
    elif typ == "long_context":
        n0 = int(d["meta"].get("next_call", 0))
        calls = [call(f"call_{n0 + k + 1}", name, a) for k, (name, a) in enumerate(zip(spec["tools"], spec["arguments"]))]
        d["meta"]["next_call"] = n0 + len(calls)
        have = {x["function"]["name"] for x in d["tools"]}
        cls = get_env(d["meta"]["domain"])
        d["tools"] = d["tools"] + [s for s in cls.tool_schemas(spec["tools"]) if s["function"]["name"] not in have]
        items = [(user(texts[0]), "long_ask", t), (assistant(None, calls), "long_call", t)]
        items += [(tool_msg(c["id"], c["function"]["name"], out), "long_output", t) for c, out in zip(calls, spec["outputs"])]
        replace(d, i, items)
        rec["call_ids"] = [c["id"] for c in calls]
        new = d["meta"]["turns"][i:i + len(items)]
    else:
        raise ValueError(typ)
    rec["uids"] = [tg["u"] for tg in new]
    d["meta"]["injections"].append(rec)
    d["meta"]["refinement"]["edit_log"].extend(rec["uids"])  # paper §2.2: the log stops a turn being edited twice


def run_round(ds: list[dict], itypes: list[Optional[str]], rngs: list[random.Random], engine: str, client=None,
              llm_cfg=None, fallback: tuple[str, ...] = ()) -> None:
    """One injection round over a batch: each dialogue gets the injection named in `itypes` (None = none).

    When the dialogue offers no place for that type, another type of `fallback` not yet used in the dialogue
    is tried (chosen: keeps the paper's 1-3 injections per dialogue; the skip is recorded either way)."""
    pending = []
    for d, it, rng in zip(ds, itypes, rngs):
        if it is None or d["meta"]["failure"] is not None:
            continue
        used = {r["type"] for r in d["meta"]["injections"]} | {it}
        alts = [t for t in fallback if t not in used and t not in d["meta"]["plan"].get("injections", [])]
        rng.shuffle(alts)
        spec = None
        for t in [it] + alts:
            if is_pool(d["meta"]["domain"]) and t in ENV_TYPES:
                why = "needs an executable environment"
            else:
                spec = find(d, t, rng)
                why = "no suitable turn"
            if spec is not None:
                break
            d["meta"].setdefault("injections_skipped", []).append({"type": t, "reason": why})
        if spec is None:
            continue
        if engine == "rules":
            apply(d, spec, realise_rules(d, spec, rng))
        else:
            pending.append((d, spec))
    if pending:
        answers = llm_io.ask(client, [(d, request_llm(d, s, llm_cfg)) for d, s in pending], "inject")
        for (d, spec), (val, err) in zip(pending, answers):
            if err is not None:
                fail(d, "inject", err["kind"], err["message"])
                continue
            why = check_texts(spec, val["turns"])
            if why is not None:
                fail(d, "inject", "injection_not_realised", f"{spec['type']}: {why}")
                continue
            apply(d, spec, val["turns"])
