"""non_function_call (paper §2.2(a)): small talk or a general question that needs no tool, answered in plain
text, after which the user returns to the task."""
from __future__ import annotations

from toolace_mt.envs import get_env

from .. import text
from ..work import assistant, user
from . import Injection, free_queries, register, where

# (user question, assistant answer); the MAS user agent reuses the questions without placeholders as small talk
CHITCHAT = [
    ("By the way, what kinds of things can you help me with here?",
     "I can help with {domain}: for example, I can {tools}. What would you like to do?"),
    ("Quick question first: what does '{tool}' do exactly?",
     "'{tool}' lets me {summary}. Let me know if you'd like me to use it."),
    ("Thanks for the help so far, by the way!",
     "You're welcome! I'm glad I could help. What else can I do for you?"),
    ("Sorry, I got distracted. Where were we?",
     "No problem! We were working through your requests. Just tell me what you need next."),
]
RETURN = ["Okay, back to it. {q}", "Great. Now: {q}", "{q}", "Alright. {q}"]


def _chitchat(cls, original, rng) -> list[str]:
    q, a = rng.choice(CHITCHAT)
    names = sorted(cls.tool_specs())
    tool = rng.choice(names)
    fill = dict(domain=cls.description.rstrip(".").lower() or cls.domain,
                tools=", ".join(text.tool_summary(cls, n) for n in names[:3]), tool=tool,
                summary=text.tool_summary(cls, tool))
    return [q.format(**fill), a.format(**fill), rng.choice(RETURN).format(q=original)]


@register
class NonFunctionCall(Injection):
    name = "non_function_call"
    order = 40
    needs_env = False

    def find(self, d, rng):
        qs = free_queries(d)
        if not qs:
            return None
        i, tg = rng.choice(qs)
        return {"type": "non_function_call", "uid": tg.uid, "t": tg.subtask, "roles": ["user", "assistant", "user"],
                "instruction": "Turn 1: the user makes small talk or asks a general question that needs no tool. "
                               "Turn 2: the assistant answers in plain text (no call). Turn 3: the user returns to the "
                               "task with the original request, keeping every value of it."}

    def realise(self, d, spec, rng, env_cls, original):
        return _chitchat(env_cls, original, rng)

    def answer(self, facts, original, rng):
        return _chitchat(get_env(facts["domain"]), original, rng)

    def apply(self, d, spec, texts, rec):
        i, t = where(d, spec)
        d.replace(i, [(user(texts[0]), "chitchat", t), (assistant(texts[1]), "chitchat_answer", t),
                       (user(texts[2]), "query", t)])
        return d.turns[i:i + 3]

    def mas_user(self, plan):
        """MAS: the user makes small talk once before a request (chosen: once the first subtask is served, as a
        pause in the task)."""
        return {"smalltalk_before": min(1, len(plan.subtasks) - 1) if plan.subtasks else None}

    def check(self, d, rec, pos):
        o1, a, o2 = (d.messages[p] for p in pos)
        if o1["role"] != "user" or a["role"] != "assistant" or a.get("tool_calls") or not a.get("content") \
                or o2["role"] != "user":
            return [f"turns {pos} are not user / assistant text / user"]
        return []
