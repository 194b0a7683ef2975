"""The MAS loop: dialogues grow one turn and one agent decision at a time (paper §4, the baseline).

Each step looks at every dialogue still running and asks its next speaker for one turn, conditioned on the
whole history: the user agent after an assistant text (or at the start), the assistant agent after a user or
tool message. The tool agent is the environment: the assistant's calls are executed for real at once and
their outputs appended (no model call, as in ToolACE-MT's skeleton, so both methods pay the same for tool
outputs); for a schema-only tool pool (no environment) it is the LLM, one request per assistant call message. A dialogue stops when the user agent is satisfied (it answers done after an assistant reply) or
when it hits the turn limit (a typed failure, so verification rejects it with that reason).

Engines: ``rules`` renders each agent's prompt and answers it with the agent's offline answer
(`agents.OFFLINE`), from the prompt's visible context only, exactly as the `simulated` backend does; ``llm``
sends ONE batched ``client.chat`` per step for all running dialogues (user and assistant requests together),
parsing the JSON answers; a bad answer is a typed failure of that dialogue. The assistant's prompt holds only
the tools and the conversation -- never the plan.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from toolace_mt.llm.types import ChatRequest

from .. import llm_io
from ..injections import INJECTIONS
from ..llm_io import CALL_SCHEMA, visible_messages
from ..plan import TaskPlan, goal_view, make_env
from ..pool import is_pool, plan_for
from ..dialogue import MasCounters, WorkDialogue
from ..work import assistant, call, tool_msg, user
from . import agents

GENERATOR = "mas"
METHOD = "mas"
TURN_SLACK = 8  # chosen: messages allowed beyond what the plan needs (clarifications, small talk, retries)

USER_SCHEMA = {"type": "object", "required": ["done", "message"], "additionalProperties": False,
               "properties": {"done": {"type": "boolean"}, "message": {"type": "string"}}}
TOOL_SCHEMA = {"type": "object", "required": ["outputs"], "additionalProperties": False,
               "properties": {"outputs": {"type": "array"}}}
ASSISTANT_SCHEMA = {"type": "object", "required": ["content", "tool_calls"], "additionalProperties": False,
                    "properties": {"content": {"type": ["string", "null"]},
                                   "tool_calls": {"type": "array", "items": CALL_SCHEMA}}}


# ------------------------------------------------------------------------------------------------ prompts
def _request(name: str, stage: str, payload: dict[str, Any], schema: dict[str, Any], llm_cfg, **ctx) -> ChatRequest:
    """The agents' prompts go through the same request path as every ToolACE-MT stage (`llm_io.request`)."""
    return llm_io.request(name, stage, payload, schema, llm_cfg, method=METHOD, **ctx)


def user_view(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a real user sees of the conversation: the user's and the assistant's texts, no calls, no outputs."""
    out = []
    for m in visible_messages(messages):
        if m["role"] == "user" or (m["role"] == "assistant" and (m.get("content") or "").strip()):
            out.append({"role": m["role"], "content": m.get("content")})
    return out


def user_goal(plan: TaskPlan) -> list[dict[str, Any]]:
    """The user agent's goal: per subtask its description and the calls that serve it, a value an earlier call
    creates or returns shown as a reference (`plan.goal_view`, the same goal ToolACE-MT's prompts show)."""
    goal = goal_view(plan) if not is_pool(plan.domain) else [[] for _ in plan.subtasks]
    return [{"description": s.description, "goal": g} for s, g in zip(plan.subtasks, goal)]


def user_request(d: WorkDialogue, plan: TaskPlan, llm_cfg=None) -> ChatRequest:
    """The user agent's prompt: its goal (the plan) and the conversation so far, as a user sees it."""
    payload = {"role": "user", "domain": plan.domain, "dialogue_id": d.id}  # bookkeeping: logs, audits
    return _request("mas_user.jinja", "mas_user", payload, USER_SCHEMA, llm_cfg, domain=plan.domain,
                    subtasks=user_goal(plan), **acted_out(plan), history_messages=user_view(d.messages))


def acted_out(plan: TaskPlan) -> dict[str, Any]:
    """What the user agent is asked to act out for the plan's injections, each type through its own module's
    `mas_user` hook (clarification: a withheld value; non_function_call: small talk; a new type: lines of
    ``user_instructions``). A type without the hook never gets here: `GenerateConfig` refuses it for MAS."""
    ctx: dict[str, Any] = {"withhold": None, "smalltalk_before": None}
    for t in dict.fromkeys(plan.injections):
        extra = INJECTIONS.get(t).mas_user(plan)
        if extra is None:
            raise ValueError(f"injection type {t!r} has no MAS realisation (no `mas_user` hook in its module)")
        for k, v in extra.items():
            if k == "user_instructions":
                ctx.setdefault(k, []).extend(v)
            else:
                ctx[k] = v
    return ctx


def assistant_request(d: WorkDialogue, llm_cfg=None) -> ChatRequest:
    """The assistant agent's prompt: the tools and the conversation so far, nothing else."""
    payload = {"role": "assistant", "domain": d.domain, "dialogue_id": d.id}
    return _request("mas_assistant.jinja", "mas_assistant", payload, ASSISTANT_SCHEMA, llm_cfg, tools=d.tools,
                    history_messages=visible_messages(d.messages))


def tool_request(d: WorkDialogue, llm_cfg=None) -> ChatRequest:
    """The tool agent's prompt (schema-only pool tools, no environment): simulate the outputs of the last calls."""
    calls = [{"name": tc["function"]["name"], "arguments": tc["function"]["arguments"]}
             for tc in d.messages[-1]["tool_calls"]]
    names = {c["name"] for c in calls}
    tools = [t for t in d.tools if t["function"]["name"] in names]
    schema = json.loads(json.dumps(TOOL_SCHEMA))
    schema["properties"]["outputs"].update(minItems=len(calls), maxItems=len(calls))
    payload = {"role": "tool", "domain": d.domain, "dialogue_id": d.id}
    return _request("mas_tool.jinja", "mas_tool", payload, schema, llm_cfg, tools=tools, calls=calls,
                    history_messages=visible_messages(d.messages[:-1]))


# ------------------------------------------------------------------------------------------------ dialogues
def new_dialogue(plan: TaskPlan, index: int, cfg) -> WorkDialogue:
    from ..skeleton import Catalog

    return WorkDialogue.new(f"mas-{cfg.seed}-{index:06d}", Catalog(plan.domain, cfg).schemas(plan.tools), plan,
                            index, cfg, GENERATOR, mas=MasCounters())


def max_messages(plan: TaskPlan) -> int:
    """Turn limit: the messages the plan needs (request, calls, outputs, reply per subtask) plus slack."""
    calls = len(plan.calls())
    steps = sum(len(s.steps) for s in plan.subtasks)
    return 2 * len(plan.subtasks) + steps + calls + TURN_SLACK


def next_speaker(d: WorkDialogue) -> str:
    msgs = d.messages
    if not msgs:
        return "user"
    last = msgs[-1]
    if last["role"] in ("user", "tool"):
        return "assistant"
    if last.get("tool_calls"):
        return "tool"  # only without an environment: the LLM tool agent simulates the outputs
    return "user"  # an assistant text


class _Live:
    """A running dialogue: the typed dialogue, its plan, live environment and the subtask the user is on."""

    def __init__(self, d: WorkDialogue, plan: TaskPlan):
        self.d, self.plan = d, plan
        self.env = None if is_pool(plan.domain) else make_env(plan)  # None: the LLM is the tool agent
        self.limit = max_messages(plan)
        self.done = False

    @property
    def t(self) -> int:
        return max(0, self.d.mas.user_turns - 1)

    def apply_user(self, ans: dict[str, Any]) -> None:
        d = self.d
        if ans["done"] or not ans["message"].strip():
            if not d.messages:
                d.fail("simulate", "empty_dialogue", "the user agent was done before saying anything")
            self.finish("satisfied")
            return
        d.mas.user_turns += 1
        d.append(user(ans["message"]), "query", self.t)

    def apply_assistant(self, ans: dict[str, Any]) -> None:
        d = self.d
        calls = [c for c in ans.get("tool_calls") or []]
        content = ans.get("content")
        if not calls and not (content or "").strip():
            d.fail("simulate", "empty_turn", "the assistant agent answered with neither text nor calls")
            self.finish("failed")
            return
        if not calls:
            d.append(assistant(content), "reply", self.t)
            return
        ids = d.next_call_ids(len(calls))
        d.append(assistant(content or None, [call(i, c["name"], c.get("arguments") or {}) for i, c in zip(ids, calls)]),
               "call", self.t)
        if self.env is None:
            return  # the LLM tool agent answers in the next step
        for cid, c in zip(ids, calls):  # the tool agent: the environment answers every call for real
            r = self.env.execute(c["name"], c.get("arguments") or {})
            d.append(tool_msg(cid, c["name"], r.content()), "output", self.t)

    def apply_tool(self, ans: dict[str, Any]) -> None:
        """Simulated outputs, one per call of the last assistant message."""
        d = self.d
        for tc, out in zip(d.messages[-1]["tool_calls"], ans["outputs"]):
            content = out if isinstance(out, str) else json.dumps(out, ensure_ascii=False)
            d.append(tool_msg(tc["id"], tc["function"]["name"], content), "output", self.t)

    def finish(self, why: str) -> None:
        self.done = True
        self.d.mas.stop = why

    def step_done(self) -> None:
        self.d.mas.steps += 1
        if not self.done and len(self.d.messages) >= self.limit:
            self.d.fail("simulate", "turn_limit", f"{len(self.d.messages)} messages without the user being satisfied")
            self.finish("turn_limit")


def _rules_answer(live: _Live, who: str) -> dict[str, Any]:
    """The `rules` engine answers exactly as the offline stand-in does: from the visible context only."""
    req = user_request(live.d, live.plan) if who == "user" else assistant_request(live.d)
    return agents.OFFLINE[req.payload["prompt"]](req.payload["visible"])


def _llm_answers(lives: list[_Live], whos: list[str], client, llm_cfg) -> list[tuple[Optional[dict], Optional[dict]]]:
    """One batched chat for this step (`llm_io.ask`, as every ToolACE-MT stage): (answer, None) or (None, failure)
    per dialogue; each request's usage is booked under its agent's stage."""
    make = {"user": lambda lv: user_request(lv.d, lv.plan, llm_cfg), "assistant": lambda lv: assistant_request(lv.d, llm_cfg),
            "tool": lambda lv: tool_request(lv.d, llm_cfg)}
    return llm_io.ask(client, [(lv.d, make[w](lv)) for lv, w in zip(lives, whos)])


def simulate(cfg, indices: list[int], client=None) -> list[dict[str, Any]]:
    """Grow one dialogue per index, all of them together, one agent turn per step."""
    if cfg.engine == "llm" and client is None:
        raise ValueError("engine 'llm' needs an LLM client")
    # the SAME plans ToolACE-MT stage 1 makes
    plans = [plan_for(cfg, i) for i in indices]
    ds = [new_dialogue(p, i, cfg) for p, i in zip(plans, indices)]
    if cfg.engine == "llm":
        from ..skeleton import llm_describe

        llm_describe(plans, client, cfg.llm, holders=ds, cfg=cfg)  # the goal's wording, as ToolACE-MT pays for it too
    lives = []
    for d, p in zip(ds, plans):
        lv = _Live(d, p)
        if d.failure is not None or not p.subtasks:
            d.fail("plan", "empty_plan", "no executable call was found for any subtask")
            lv.finish("failed")
        lives.append(lv)
    while True:
        running = [lv for lv in lives if not lv.done]
        if not running:
            break
        whos = [next_speaker(lv.d) for lv in running]
        if cfg.engine == "rules":
            answers = [(_rules_answer(lv, w), None) for lv, w in zip(running, whos)]
        else:
            answers = _llm_answers(running, whos, client, cfg.llm)
        for lv, w, (ans, err) in zip(running, whos, answers):
            if err is not None:
                lv.d.fail(f"mas_{w}", err["kind"], err["message"])
                lv.finish("failed")
            elif w == "user":
                lv.apply_user(ans)
            elif w == "tool":
                lv.apply_tool(ans)
            else:
                lv.apply_assistant(ans)
            lv.step_done()
    for lv in lives:
        d = lv.d
        d.fill_empty()
        if lv.env is not None:
            d.final_state_hash = lv.env.state_hash()
        d.mas.n_messages = len(d.messages)
    return [d.to_dict() for d in ds]  # JSON at the stage boundary
