"""tool_awareness (BFCL miss_func): the tool a request needs is not available yet; the assistant says so, the user
adds it (``meta["tool_updates"]``) and the dialogue continues with it."""
from __future__ import annotations

from toolace_mt.envs import get_env

from .. import text
from ..pool import is_pool
from ..dialogue import ToolUpdate
from ..work import assistant, user
from . import Injection, free_queries, register, where

MISSING = [
    "I'm sorry, I don't have a tool that can {s} right now, so I can't do that part yet.",
    "Unfortunately none of my available tools lets me {s}. I can't complete that step at the moment.",
    "I can't {s} with the tools I currently have access to.",
]
ADDED = [
    "I've just enabled the {t} tool for you. Please go ahead now.",
    "Okay, the {t} function should be available now. Try again.",
    "I added access to {t}. Can you continue?",
]


@register
class ToolAwareness(Injection):
    name = "tool_awareness"
    order = 20
    needs_env = True

    def find(self, d, rng):
        first_use: dict[str, int] = {}
        for i, m in enumerate(d.messages):
            for tc in m.get("tool_calls") or []:
                first_use.setdefault(tc["function"]["name"], i)
        held = d.held_tools()
        cands = []
        for i, tg in free_queries(d):
            nxt = [j for j, t2 in enumerate(d.turns) if t2.kind == "query" and j > i]
            end = nxt[0] if nxt else len(d.messages)
            for name, j in first_use.items():
                if i < j < end and name not in held and any(t["function"]["name"] == name for t in d.tools):
                    cands.append((i, tg, name))
        if not cands:
            return None
        i, tg, name = rng.choice(cands)
        cls = get_env(d.domain)
        return {"type": "tool_awareness", "uid": tg.uid, "t": tg.subtask, "tool": name,
                "roles": ["user", "assistant", "user"],
                "instruction": f"The tool {name} is NOT available to the assistant yet. Turn 1: the user's request "
                               f"(keep it as it is). Turn 2: the assistant says it has no tool to "
                               f"{text.tool_summary(cls, name)} and makes no call. Turn 3: the user says that it should "
                               f"work now (the capability is available again) and asks to continue; a user does not "
                               f"name tools by their function names."}

    def realise(self, d, spec, rng, env_cls, original):
        return [original, rng.choice(MISSING).format(s=text.tool_summary(env_cls, spec["tool"])),
                rng.choice(ADDED).format(t=spec["tool"])]

    def answer(self, facts, original, rng):
        return [original, rng.choice(MISSING).format(s=facts.get("tool_does") or text.words(facts["tool"])),
                rng.choice(ADDED).format(t=facts["tool"])]

    def facts(self, d, spec):
        if is_pool(d.domain):
            return {}
        return {"tool_does": text.tool_summary(get_env(d.domain), spec["tool"])}

    def apply(self, d, spec, texts, rec):
        i, t = where(d, spec)
        d.replace(i, [(user(texts[0]), "query", t), (assistant(texts[1]), "missing_tool", t),
                       (user(texts[2]), "tool_added", t)])
        new = d.turns[i:i + 3]
        tools = [x for x in d.tools if x["function"]["name"] == spec["tool"]]
        d.tools = [x for x in d.tools if x["function"]["name"] != spec["tool"]]
        d.tool_updates.append(ToolUpdate(at=i + 2, tools=tools))
        return new

    def mas_user(self, plan):
        # MAS: nothing for the user to act out. The assistant agent sees one fixed tool list (no tool arrives
        # later), so the complexity arises only if the assistant itself misses a capability.
        return {}

    def check(self, d, rec, pos):
        msgs, out = d.messages, []
        name = rec.details["tool"]
        if any(t["function"]["name"] == name for t in d.tools):
            out.append(f"{name} is in the initial tool list")
        ups = [u for u in d.tool_updates if any(t["function"]["name"] == name for t in u.tools)]
        if not ups or ups[0].at != pos[2]:
            out.append(f"no tool update adding {name} at message {pos[2]}")
        a = msgs[pos[1]]
        if a["role"] != "assistant" or a.get("tool_calls") or not a.get("content"):
            out.append(f"message {pos[1]} is not an assistant text saying the tool is missing")
        if not any(tc["function"]["name"] == name for m in msgs[pos[2]:] for tc in m.get("tool_calls") or []):
            out.append(f"{name} is never called after it was added")
        return out
