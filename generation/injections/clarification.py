"""clarification (paper §2.2(a)): the user's request leaves out a required value; the assistant asks for it and
the user gives it."""
from __future__ import annotations

import json
import re
from typing import Any, Optional

from toolace_mt.envs import get_env

from .. import text
from ..plan import TaskPlan, goal_view, is_goal_ref, tool_info
from ..pool import is_pool
from ..resolve import value_in_text
from ..work import assistant, call_outputs, user
from . import Injection, free_queries, mentions, register, where

ASK = [
    "Sure, I can help with that. Which {p} should I use?",
    "Happy to. Could you tell me the {p}?",
    "Before I proceed, I need the {p}. What is it?",
    "I'm missing one detail: the {p}. Can you share it?",
]
ANSWER = ["It's {v}.", "Use {v}, please.", "The {p} is {v}.", "Oh right, {v}."]


def withhold_text(original: str, param: str, value: Any) -> str:
    """The request without one value: its '(param value)' item dropped, or the value named instead of stated."""
    lit = text.fmt_value(value)
    w = text.words(param)
    out = re.sub(rf",?\s*\b{re.escape(w)} {re.escape(lit)}(?=[,)])", "", original)
    out = re.sub(r"\(\s*,\s*", "(", out).replace(" ()", "")
    if out == original:
        out = re.sub(rf"(?<![\w-]){re.escape(lit)}(?![\w-])", f"the right {w}", original)
    return out.rstrip().rstrip(".?!") + ", but I'm not sure of the details."


def withheld_value(plan: TaskPlan, k: int) -> Optional[tuple[int, int, str]]:
    """(step, call, parameter) the MAS user leaves out of subtask k's request: a REQUIRED parameter (the assistant
    cannot proceed without it, so it must ask) whose value the user knows (a literal of its goal, not a value an
    earlier call returns), in a call that points at no earlier result. None when subtask k has no such value."""
    env_cls = get_env(plan.domain)
    specs = env_cls.tool_specs()
    goal = goal_view(plan)[k]
    for s, step in enumerate(plan.subtasks[k].steps):
        for c, cp in enumerate(step):
            shown = goal[s][c]["arguments"]
            if cp.refs or any(is_goal_ref(v) for v in shown.values()):
                continue
            # the value must not occur in another call of the task: the user would state it there anyway
            others = [json.dumps(x["arguments"], ensure_ascii=False) for s2, st2 in enumerate(goal)
                      for c2, x in enumerate(st2) if (s2, c2) != (s, c)]
            req = [p for p in specs[cp.tool].required if p in cp.arguments
                   and not any(json.dumps(cp.arguments[p], ensure_ascii=False) in o for o in others)]
            if req:
                return (s, c, req[0])
    return None


def clarify_subtask(plan: TaskPlan) -> int:
    """The subtask whose request the MAS user leaves one value out of (-1: none has such a value)."""
    for k in range(len(plan.subtasks)):
        if withheld_value(plan, k) is not None:
            return k
    return -1


@register
class Clarification(Injection):
    name = "clarification"
    order = 10
    needs_env = True

    def find(self, d, rng):
        plan = d.plan
        cands = []
        for i, tg in free_queries(d):
            t = tg.subtask
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
            o1 = text.render_query(cls, plan.subtasks[tg.subtask].steps, rng, withhold=(0, c, p),
                                   outputs=call_outputs(d, tg.subtask))
            if mentions(o1, v):
                continue  # the value appears elsewhere in the request: asking for it would be pointless
            return {"type": "clarification", "uid": tg.uid, "t": tg.subtask, "tool": tool, "param": p, "value": v,
                    "step_call": c, "roles": ["user", "assistant", "user"],
                    "instruction": f"The user's request omits the required '{p}' of {tool}; the assistant asks for "
                                   f"it (without suggesting or inventing an example value); the user then gives it: "
                                   f"{json.dumps(v)}. The first user turn must NOT contain "
                                   f"{json.dumps(v)}, and must keep every other value of the original request.",
                    "_o1": o1}
        return None

    def realise(self, d, spec, rng, env_cls, original):
        pw = text.words(spec["param"])
        return [spec["_o1"], rng.choice(ASK).format(p=pw),
                rng.choice(ANSWER).format(p=pw, v=text.fmt_value(spec["value"]))]

    def answer(self, facts, original, rng):
        pw = text.words(facts["param"])
        return [withhold_text(original, facts["param"], facts["value"]), rng.choice(ASK).format(p=pw),
                rng.choice(ANSWER).format(p=pw, v=text.fmt_value(facts["value"]))]

    def check_texts(self, spec, texts):
        if mentions(texts[0], spec["value"]):
            return "the clarification request already contains the withheld value"
        if not mentions(texts[2], spec["value"]):
            return "the user's answer does not supply the withheld value"
        return None

    def apply(self, d, spec, texts, rec):
        i, t = where(d, spec)
        d.replace(i, [(user(texts[0]), "clarify_ask", t), (assistant(texts[1]), "clarify_question", t),
                       (user(texts[2]), "clarify_answer", t)])
        return d.turns[i:i + 3]

    def mas_user(self, plan):
        """MAS: the user leaves one value it knows out of a request and gives it when the assistant asks."""
        k = clarify_subtask(plan) if not is_pool(plan.domain) else -1
        wh = withheld_value(plan, k) if k >= 0 else None
        if not wh:
            return {"withhold": None}
        return {"withhold": {"subtask": k, "param": wh[2],
                             "value": plan.subtasks[k].steps[wh[0]][wh[1]].arguments[wh[2]]}}

    def check(self, d, rec, pos):
        msgs, out = d.messages, []
        ask, q, ans = (msgs[p] for p in pos)
        param, value = rec.details["param"], rec.details["value"]
        if ask["role"] != "user" or value_in_text(value, ask.get("content")):
            out.append(f"the request at {pos[0]} already states {param}={json.dumps(value)}")
        if q["role"] != "assistant" or q.get("tool_calls") or not q.get("content"):
            out.append(f"message {pos[1]} is not an assistant question")
        if ans["role"] != "user" or not value_in_text(value, ans.get("content")):
            out.append(f"the answer at {pos[2]} does not supply {param}")
        return out

