"""error_simulation (paper §2.2(a)): a call sent with a wrong value fails with a real environment error; the
assistant reflects and sends the corrected call."""
from __future__ import annotations

import json
from typing import Any

from toolace_mt.envs import get_env
from toolace_mt.envs.base import is_error_text

from .. import text
from ..resolve import loose_args
from ..work import args_of, assistant, call, replay, tool_msg
from . import Injection, register, where

ENV_ERRORS_EXCLUDED = ("invalid_arguments", "unknown_tool", "internal_error")  # schema-level, not realistic faults
REFLECT = [
    "That call failed ({msg}). I used the wrong {p}; let me retry with {v}.",
    "The {p} I passed was not right: {msg}. Retrying with the correct {p} {v}.",
    "Oops, that returned an error ({msg}). Correcting the {p} to {v} and trying again.",
]


def _earlier_values(d, until: int) -> list[Any]:
    """Entity ids earlier calls used: mixing one of them up is a realistic argument error ("freeze" is not)."""
    specs = get_env(d.domain).tool_specs()
    out = []
    for m in d.messages[:until]:
        for tc in m.get("tool_calls") or []:
            spec = specs.get(tc["function"]["name"])
            consumes = spec.consumes if spec is not None else {}
            out.extend(v for p, v in args_of(tc).items() if isinstance(v, str) and p in consumes)
    return list(dict.fromkeys(out))


@register
class ErrorSimulation(Injection):
    name = "error_simulation"
    order = 30
    needs_env = True

    def find(self, d, rng):
        turns = d.turns
        log = d.edit_log
        cands = [i for i, tg in enumerate(turns) if tg.kind == "call" and tg.uid not in log]
        rng.shuffle(cands)
        cls = get_env(d.domain)
        env, done = None, 0
        for i in sorted(cands[:4]):  # chosen: a few tries bound the cost; one incremental replay serves them all
            if env is None:
                env, _ = replay(d.plan, d.messages, until=i)
            else:
                for m in d.messages[done:i]:
                    for tc in m.get("tool_calls") or []:
                        env.execute(tc["function"]["name"], args_of(tc))
            done = i
            m = d.messages[i]
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
                        return {"type": "error_simulation", "uid": d.turns[i].uid, "call_index": j,
                                "tool": name, "param": p, "bad_value": bad, "good_value": v,
                                "error": r.error.to_dict(), "roles": ["assistant"],
                                "instruction": f"The call {name} was sent with {p}={json.dumps(bad)} and failed with "
                                               f"{json.dumps(r.error.to_dict())}. Write the assistant's short "
                                               f"reflection (one or two sentences) that precedes the corrected call "
                                               f"with {p}={json.dumps(v)}."}
        return None

    def realise(self, d, spec, rng, env_cls, original):
        return [rng.choice(REFLECT).format(msg=spec["error"]["message"], p=text.words(spec["param"]),
                                           v=text.fmt_value(spec["good_value"]))]

    def answer(self, facts, original, rng):
        return [rng.choice(REFLECT).format(msg=facts.get("error_message"), p=text.words(facts["param"]),
                                           v=text.fmt_value(facts["good_value"]))]

    def apply(self, d, spec, texts, rec):
        i, _ = where(d, spec)
        m = d.messages[i]
        tc = m["tool_calls"][spec["call_index"]]
        good = args_of(tc)
        tc["function"]["arguments"] = dict(good, **{spec["param"]: spec["bad_value"]})
        j = next(k for k in range(i + 1, len(d.messages)) if d.messages[k].get("tool_call_id") == tc["id"])
        ok_content = d.messages[j]["content"]
        d.messages[j]["content"] = json.dumps(spec["error"], ensure_ascii=False)
        d.turns[j].kind = "error_output"
        end = j
        while end + 1 < len(d.messages) and d.messages[end + 1]["role"] == "tool":
            end += 1
        cid, = d.next_call_ids(1)
        tt = d.turns[i].subtask
        d.insert(end + 1, [(assistant(texts[0], [call(cid, spec["tool"], good)]), "reflect_call", tt),
                            (tool_msg(cid, spec["tool"], ok_content), "corrected_output", tt)])
        rec.details.update(failed_call_id=tc["id"], corrected_call_id=cid)
        return [d.turns[j]] + d.turns[end + 1:end + 3]

    def mas_user(self, plan):
        # MAS: nothing for the user to act out. Errors come from the environment when the assistant agent sends
        # a wrong value; they are not staged.
        return {}

    def check(self, d, rec, pos):
        msgs, out = d.messages, []
        fid, cid = rec.details.get("failed_call_id"), rec.details.get("corrected_call_id")
        outs = {m.get("tool_call_id"): m for m in msgs if m["role"] == "tool"}
        calls = {tc["id"]: tc for m in msgs for tc in m.get("tool_calls") or []}
        if fid not in outs or not is_error_text(outs[fid].get("content")):
            out.append(f"call {fid} did not fail")
        if cid not in calls or cid not in outs or is_error_text(outs[cid].get("content")):
            out.append(f"corrected call {cid} missing or failed")
        elif fid in calls and calls[fid]["function"]["name"] != calls[cid]["function"]["name"]:
            out.append("the corrected call is to another tool")
        elif fid in calls:
            param = rec.details["param"]
            if loose_args(calls[fid]).get(param) == loose_args(calls[cid]).get(param):
                out.append("the corrected call repeats the faulty value")
        return out
