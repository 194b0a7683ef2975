"""long_context (beyond the paper, like BFCL long_context): the user first asks to see everything, and the
assistant lists large parts of a state padded with distractor entities before the original request."""
from __future__ import annotations

from toolace_mt.envs import get_env

from .. import text
from ..plan import tool_info
from ..work import assistant, call, replay, tool_msg, user
from . import Injection, free_queries, register, where

LONG_MIN_CHARS = 600  # chosen: a listing shorter than this is not "long context" (found and verified against it)
MAX_LISTINGS = 3  # chosen: at most 3 listings in one parallel step
ASK = [
    "Before we start, please pull up everything: {what}. {q}",
    "First, show me the full picture ({what}). {q}",
    "Can you list it all first ({what})? {q}",
]


@register
class LongContext(Injection):
    name = "long_context"
    order = 50
    weight = 0.5  # chosen: beyond the paper, so at half the weight of the paper's four types
    needs_env = True

    def find(self, d, rng):
        cls = get_env(d.domain)
        held = d.held_tools()
        # read tools whose required parameters all take entity ids (filled from the state, stated by the user)
        listing = [n for n, s in sorted(cls.tool_specs().items())
                   if not s.writes and n not in held and all(p in s.consumes for p in tool_info(cls, n)[1])]
        qs = free_queries(d)
        if not listing or not qs:
            return None
        i, tg = rng.choice(qs)
        env, _ = replay(d.plan, d.messages, until=i)
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
            if size >= LONG_MIN_CHARS or len(chosen) == MAX_LISTINGS:
                break
        if size < LONG_MIN_CHARS:
            return None
        what = [text.tool_summary(cls, n) + "".join(f" for {text.words(p)} {text.fmt_value(v)}" for p, v in a.items())
                for n, a in zip(chosen, args)]
        return {"type": "long_context", "uid": tg.uid, "t": tg.subtask, "tools": chosen, "arguments": args,
                "outputs": outs, "what": what, "output_chars": size, "beyond_paper": True, "roles": ["user"],
                "instruction": "Rewrite the masked user turn so that the user first asks to see everything ("
                               + "; ".join(what) + ", stating these values) and then makes the original request, "
                               "keeping every value of it."}

    def realise(self, d, spec, rng, env_cls, original):
        return [rng.choice(ASK).format(what="; ".join(spec["what"]), q=original)]

    def answer(self, facts, original, rng):
        return [rng.choice(ASK).format(what="; ".join(facts["what"]), q=original)]

    def apply(self, d, spec, texts, rec):
        i, t = where(d, spec)
        ids = d.next_call_ids(len(spec["tools"]))
        calls = [call(cid, name, a) for cid, name, a in zip(ids, spec["tools"], spec["arguments"])]
        have = {x["function"]["name"] for x in d.tools}
        cls = get_env(d.domain)
        d.tools = d.tools + [s for s in cls.tool_schemas(spec["tools"]) if s["function"]["name"] not in have]
        items = [(user(texts[0]), "long_ask", t), (assistant(None, calls), "long_call", t)]
        items += [(tool_msg(c["id"], c["function"]["name"], out), "long_output", t) for c, out in zip(calls, spec["outputs"])]
        d.replace(i, items)
        rec.details["call_ids"] = [c["id"] for c in calls]
        return d.turns[i:i + len(items)]

    def mas_user(self, plan):
        # MAS: nothing for the user to act out (beyond the paper; ToolACE-MT's mask-and-extend only).
        return {}

    def check(self, d, rec, pos):
        ids = set(rec.details.get("call_ids", []))
        size = sum(len(m.get("content") or "") for m in d.messages
                   if m["role"] == "tool" and m.get("tool_call_id") in ids)
        if size < LONG_MIN_CHARS:
            return [f"the listing outputs hold {size} characters (< {LONG_MIN_CHARS})"]
        return []
