"""Does every subtask's calls serve its description? (a rule check on the plan a dialogue was generated from)

Why: when a model writes the subtask descriptions, a description and the calls paired with it can disagree (live
runs showed a read-only "overview of my finances" paired with two payments). Both methods generate from the same
plan, so a dialogue built on an incoherent plan is rejected whichever method built it. Checked only where a model
wrote the descriptions (`plan["planner"]` is not "rules": the rules planner's descriptions are the tools'
summaries, which name no value).

Two directions, on values that identify things (tokens holding a digit: ids, amounts, dates; `id_tokens`):
- a value a description names must be an argument of one of its subtask's calls (or of an earlier subtask's, when
  the description recalls it): a description asking for something no call does;
- a literal id-like argument the user must give (not a value an earlier call returns: `plan.goal_view`) must be
  named by its subtask's description: a call serving nothing the description asks for.
"""
from __future__ import annotations

import json

from ..dialogue import WorkDialogue, reads_dialogue
from ..plan import TaskPlan, goal_view, is_goal_ref
from ..pool import is_pool
from ..resolve import atoms, id_tokens, mentions_token


def _returned_before(p: TaskPlan) -> list[set[str]]:
    """Per call of the plan (in order), the JSON of every value an EARLIER call's output returned (replayed on a
    fresh environment)."""
    from ..plan import make_env, produced_values

    env = make_env(p)
    cls = type(env)
    seen: set[str] = set()
    out: list[set[str]] = []
    for c in p.calls():
        out.append(set(seen))
        r = env.execute(c.tool, c.arguments)
        if r.ok and c.tool in cls.tool_specs():
            for vals in produced_values(cls, c.tool, r.output).values():
                seen |= {json.dumps(v, sort_keys=True) for v in vals}
    return out


@reads_dialogue
def completion_problems(d: WorkDialogue) -> list[tuple[str, str]]:
    """A dialogue that ends before a subtask of its plan was served: none of that subtask's tools was called.

    ToolACE-MT builds every subtask by construction; a MAS dialogue grows turn by turn and the user agent may say
    it is done (or a malformed turn may end it) after the first subtask. Such a dialogue is cut short of the goal
    both methods were given, so it is rejected whichever method built it (issue 24 item 6). chosen: a tool of the
    subtask called anywhere counts (the assistant may serve subtasks in another order or with the same tool)."""
    plan = d.plan
    if plan is None or not plan.subtasks or is_pool(plan.domain) or not d.messages:
        return []
    called = {tc["function"]["name"] for m in d.messages if m.get("role") == "assistant"
              for tc in m.get("tool_calls") or [] if isinstance(tc, dict) and isinstance(tc.get("function"), dict)}
    out = []
    for t, sub in enumerate(plan.subtasks):
        tools = {c.tool for st in sub.steps for c in st}
        if tools and not tools & called:
            out.append(("plan", f"subtask {t + 1} was never served: none of its tools ({', '.join(sorted(tools))}) "
                                "was called (the dialogue ends short of its goal)"))
    return out


@reads_dialogue
def plan_problems(d: WorkDialogue) -> list[tuple[str, str]]:
    tp = d.plan
    if tp is None or not tp.subtasks or tp.planner == "rules" or is_pool(tp.domain):
        return []
    try:
        goal = goal_view(tp)
        from_outputs = _returned_before(tp)
    except Exception:  # noqa: BLE001 -- a plan that cannot be replayed is the replay check's finding, not ours
        return []
    out = []
    seen_args = ""
    k = -1  # index of the call in plan order
    for t, (sub, g) in enumerate(zip(tp.subtasks, goal)):
        desc = sub.description or ""
        args = " ".join(json.dumps(c.arguments, ensure_ascii=False) for st in sub.steps for c in st)
        for tok in dict.fromkeys(id_tokens(desc)):
            # an id starts with letters ("ACC123", "RS79"); "17th", "3-unit", "4-star" are positions and amounts
            if tok[:1].isalpha() and any(ch.isalpha() for ch in tok) and not mentions_token(args + " " + seen_args, tok):
                out.append(("plan", f"subtask {t + 1}: the description names {tok!r}, which none of its calls uses"))
        for st in g:
            for c in st:
                k += 1
                for p, v in c["arguments"].items():
                    # a value an earlier call's output gave may be described by where it comes from ("the second
                    # account listed"): in description mode the model's own calls carry it as a literal
                    if is_goal_ref(v) or json.dumps(v, sort_keys=True) in from_outputs[k]:
                        continue
                    for a in atoms(v):
                        if isinstance(a, str) and any(ch.isdigit() for ch in a) and any(ch.isalpha() for ch in a) \
                                and len(a) <= 40 and not mentions_token(desc, a):
                            out.append(("plan", f"subtask {t + 1}: {c['tool']}({p}={a!r}) serves nothing its "
                                                f"description asks for"))
        seen_args += " " + args
    return out
