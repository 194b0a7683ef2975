"""Rules-engine text: user queries from tool `phrases` and assistant replies from templates (injection turns: `injections/`).

Every function takes an `rng` and a `variant` choice is drawn from it, so the refinement stage can ask for
"another realisation" of the same turn. Values are always written verbatim (ids, amounts), so every
argument value a call uses appears in the user's words.
"""
from __future__ import annotations

import json
import random
import re
from typing import Any

from toolace_mt.envs import Env

from .plan import PLACEHOLDER, CallPlan, phrase_params, tool_info

CONNECTORS = ["", "Also, ", "Then ", "After that, ", "And ", "Next, "]
OPENERS = ["", "Hi! ", "Hello, ", "Hey, ", "Good morning. ", "Quick request: "]


def fmt_value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(v)  # "25.0": grounding compares numbers by value, text keeps the exact literal
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def words(name: str) -> str:
    return name.replace("_", " ")


def tool_summary(env_cls: type[Env], name: str) -> str:
    if name not in env_cls.tool_specs():
        return words(name)
    d = tool_info(env_cls, name)[2]
    return (d[:1].lower() + d[1:]) if d else words(name)


ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]


def ref_phrase(env_cls: type[Env], p: str, value: Any, outputs: list[tuple[str, Any]] | None) -> str:
    """How a user points at a value an earlier result of the request gives: "the <p> from that result" when
    the result lists exactly one such value, else with the value's rank in it (the shared resolver's rule)."""
    from .resolve import reference_rank

    marked = re.match(r"^<the ([a-z0-9]+) \w+ (?:returned|listed) by ", value) if isinstance(value, str) else None
    if marked and (marked.group(1) in ORDINALS or marked.group(1)[:1].isdigit()):  # a goal reference names the rank
        return f"the {marked.group(1)} {words(p)} from that result"
    r = reference_rank(env_cls, p, value, outputs) if outputs is not None else None
    if r is not None and r[1] > 1 and r[0] < len(ORDINALS):
        return f"the {ORDINALS[r[0]]} {words(p)} from that result"
    return f"the {words(p)} from that result"


def render_call_request(env_cls: type[Env], cp: CallPlan, rng: random.Random, withhold: str | None = None,
                        outputs: list[tuple[str, Any]] | None = None) -> str:
    """One sentence asking for `cp`, holding every argument value (except referenced ones and `withhold`).
    `outputs`: the results the call's references point into (earlier calls of the request), when known."""
    spec = env_cls.tool_specs()[cp.tool]
    shown = {p: v for p, v in cp.arguments.items() if p not in cp.refs and p != withhold}
    if withhold is not None:
        # the clarification variant: ask for the action without the withheld value
        text = f"I want to {tool_summary(env_cls, cp.tool)}"
        rest = [f"{words(p)} {fmt_value(v)}" for p, v in shown.items()]
        return text + (" (" + ", ".join(rest) + ")" if rest else "") + ", but I'm not sure of the details."
    eligible = [ph for ph in spec.phrases if phrase_params(ph) <= set(cp.arguments)]
    if eligible:
        ph = rng.choice(eligible)
        text = PLACEHOLDER.sub(lambda m: fmt_value(cp.arguments[m.group(1)]) if m.group(1) not in cp.refs
                               else ref_phrase(env_cls, m.group(1), cp.arguments[m.group(1)], outputs), ph)
        covered = phrase_params(ph)
    else:
        text = f"Please {tool_summary(env_cls, cp.tool)}."
        covered = set()
    extra = [f"{words(p)} {fmt_value(v)}" for p, v in shown.items() if p not in covered]
    refd = [ref_phrase(env_cls, p, cp.arguments.get(p), outputs) for p in cp.refs if p not in covered]
    if extra or refd:
        text = text.rstrip(".?!") + " (" + ", ".join(extra + refd) + ")."
    return text


def render_query(env_cls: type[Env], steps: list[list[CallPlan]], rng: random.Random,
                 withhold: tuple[int, int, str] | None = None, outputs: list[tuple[str, Any]] | None = None) -> str:
    """The user's query for a subtask: one sentence per call, joined; `withhold` = (step, call, param);
    `outputs`: (tool, output) of the subtask's calls in order, when known (references then name one value)."""
    parts = []
    k = 0
    for s, step in enumerate(steps):
        before = outputs[:k] if outputs is not None else None  # results of the earlier steps
        for c, cp in enumerate(step):
            w = withhold[2] if withhold is not None and withhold[:2] == (s, c) else None
            sent = render_call_request(env_cls, cp, rng, withhold=w, outputs=before)
            conn = rng.choice(CONNECTORS) if parts else rng.choice(OPENERS)
            if conn and sent:
                mid_sentence = (conn.rstrip()[-1:].isalpha() or conn.rstrip().endswith(",")) \
                    and not (sent[:2] in ("I ", "I'") or sent[:1].isupper() and sent[1:2].isupper())  # "I", ids
                sent = conn + (sent[:1].lower() + sent[1:] if mid_sentence else sent)
            parts.append(sent)
        k += len(step)
    return " ".join(parts)


def _brief(output: Any, limit: int = 3) -> str:
    """A short, true description of a tool output: its first scalar fields, or a count for lists."""
    if isinstance(output, dict):
        if "error" in output and "message" in output:
            return f"it failed ({output['message']})"
        bits = []
        for k, v in output.items():
            if isinstance(v, list):
                bits.append(f"{words(k)}: {len(v)} item{'s' if len(v) != 1 else ''}")
            elif isinstance(v, (str, int, float, bool)):
                bits.append(f"{words(k)} {fmt_value(v)}")
            if len(bits) >= limit:
                break
        return ", ".join(bits) if bits else "done"
    if isinstance(output, list):
        return f"{len(output)} item{'s' if len(output) != 1 else ''}"
    return fmt_value(output)


REPLY_TEMPLATES = [
    "Done. {summary}",
    "All set: {summary}",
    "Here is what I found: {summary}",
    "I've taken care of that. {summary}",
    "Finished. {summary} Anything else?",
]


def render_reply(env_cls: type[Env], results: list[tuple[str, Any]], rng: random.Random) -> str:
    """Closing reply of a subtask, from the (tool, output) pairs it ran."""
    lines = []
    for name, out in results:
        lines.append(f"{tool_summary(env_cls, name)[:1].upper()}{tool_summary(env_cls, name)[1:]}: {_brief(out)}.")
    return rng.choice(REPLY_TEMPLATES).format(summary=" ".join(lines))


# ------------------------------------------------------------------------------------------------ rewording
def _strip_prefix(s: str, prefixes: list[str]) -> tuple[str, bool]:
    for p in sorted((p for p in prefixes if p), key=len, reverse=True):
        if s.startswith(p):
            return s[len(p):], True
    return s, False


def rephrase(orig: str, role: str, rng: random.Random) -> str:
    """The same turn with another opening (every value kept verbatim): a user request gets another greeting,
    a reply another lead-in. Used by the offline refill, which sees only the original text."""
    s = (orig or "").strip()
    if role == "assistant":
        leads = [t.split("{summary}")[0] for t in REPLY_TEMPLATES]
        body, had = _strip_prefix(s, leads)
        body = body[:-len(" Anything else?")] if body.endswith(" Anything else?") else body
        lead = rng.choice([x for x in leads if x != s[:len(x)]] or leads)
        return (lead + body).strip() if had or body else s
    body, _ = _strip_prefix(s, OPENERS)
    opener = rng.choice([o for o in OPENERS if o and not s.startswith(o)] or OPENERS)
    if body[:1].isupper() and body[1:2].islower():  # "Show ..." after "Hi! " keeps its capital; ids stay as they are
        pass
    return opener + body
