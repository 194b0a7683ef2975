"""Stage 1b, trajectory initialization (paper §2.1): a structurally complete dialogue from each plan.

Sub-trajectories are built in subtask order, each conditioned on the earlier ones: a user query holding every
argument value (constraint 2), the assistant's calls step by step (parallel calls when independent), the
REAL tool outputs from executing on the environment, and a closing assistant reply. The `rules` engine
writes text from tool phrases and templates; the `llm` engine asks the model for the plan's descriptions
(one batched request) and then, per subtask index, for every dialogue's sub-trajectory at once (one batched
request per subtask index), executing the calls it proposes.
"""
from __future__ import annotations

import random
from typing import Any

from toolace_mt.envs import get_env

import json

from . import llm_io, text
from .plan import CallPlan, TaskPlan, derive_seed, make_env
from .pool import is_pool, load_pool
from .dialogue import new_dialogue as blank_dialogue, next_call_ids
from .work import append, assistant, call, fail, fill_empty, tool_msg, user

GENERATOR = "toolace_mt"


class Catalog:
    """The tools of a dialogue's world: an environment's, or a schema-only pool's (outputs simulated)."""

    def __init__(self, domain: str, cfg=None):
        self.domain = domain
        self.simulated = is_pool(domain)
        if self.simulated:
            if cfg is None or not cfg.tool_pool:
                raise ValueError(f"domain {domain!r} needs the recipe's tool_pool")
            self.pool = load_pool(cfg.tool_pool)
            self.names = set(self.pool)
            self.description = "a collection of web APIs"
        else:
            self.cls = get_env(domain)
            self.names = set(self.cls.tool_specs())
            self.description = self.cls.description

    def schemas(self, names: list[str]) -> list[dict[str, Any]]:
        if self.simulated:
            return [self.pool[n] for n in names if n in self.pool]
        return self.cls.tool_schemas([n for n in names if n in self.names])


def new_dialogue(plan: TaskPlan, index: int, cfg) -> dict[str, Any]:
    return blank_dialogue(f"tmt-{cfg.seed}-{index:06d}", Catalog(plan.domain, cfg).schemas(plan.tools), plan,
                          index, cfg, GENERATOR)


def _cid(d: dict[str, Any]) -> str:
    return next_call_ids(d, 1)[0]


def _run_steps(d: dict[str, Any], env, steps: list[list[CallPlan]], t: int,
               simulated: list[list[Any]] | None = None) -> list[tuple[str, Any]]:
    """Emit each step's calls and outputs: REAL outputs from `env`, or the LLM's for a schema-only pool."""
    results = []
    for s, step in enumerate(steps):
        calls = [(c, _cid(d)) for c in step]
        append(d, assistant(None, [call(cid, c.tool, c.arguments) for c, cid in calls]), "call", t)
        for k, (c, cid) in enumerate(calls):
            if env is None:
                out = simulated[s][k]
                append(d, tool_msg(cid, c.tool, json.dumps(out, ensure_ascii=False)), "output", t)
                results.append((c.tool, out))
                continue
            r = env.execute(c.tool, c.arguments)
            append(d, tool_msg(cid, c.tool, r.content()), "output", t)
            results.append((c.tool, r.output if r.ok else r.error.to_dict()))
    return results


def build_rules(plan: TaskPlan, index: int, cfg) -> dict[str, Any]:
    """The rules skeleton of one plan: executes every planned call for real."""
    d = new_dialogue(plan, index, cfg)
    if not plan.subtasks:
        fail(d, "skeleton", "empty_plan", "no executable call was found for any subtask")
        fill_empty(d)
        return d
    rng = random.Random(derive_seed(plan.seed, "skeleton"))
    cls = get_env(plan.domain)
    executed = getattr(plan, "_executed", None)
    env = None if executed is not None else make_env(plan)
    pos = 0
    for t, sub in enumerate(plan.subtasks):
        sim = None
        outs = None
        if executed is not None:
            sim = []
            for step in sub.steps:
                sim.append(executed[0][pos:pos + len(step)])
                pos += len(step)
            outs = [(c.tool, o) for st, so in zip(sub.steps, sim) for c, o in zip(st, so)]
        append(d, user(text.render_query(cls, sub.steps, rng, outputs=outs)), "query", t)
        results = _run_steps(d, env, sub.steps, t, sim)
        append(d, assistant(text.render_reply(cls, results, rng)), "reply", t)
    d["meta"]["final_state_hash"] = env.state_hash() if env is not None else executed[1]
    return d


# ------------------------------------------------------------------------------------------------ llm engine
def known_values(plan: TaskPlan, limit: int = 6) -> dict[str, list[Any]]:
    """Entity values of the initial state, per kind (what a user of this world could refer to)."""
    if is_pool(plan.domain):
        return {}
    env = make_env(plan)
    return {k: env.entity_values(k)[:limit] for k in type(env).ENTITIES}


def llm_describe(plans: list[TaskPlan], client, llm_cfg=None, holders: list[dict] | None = None, cfg=None) -> None:
    """One batched plan request: the LLM writes the subtasks (descriptions, tools) for the fixed m and steps."""
    holders = holders or [{"meta": {}} for _ in plans]
    items = []
    for p, h in zip(plans, holders):
        cat = Catalog(p.domain, cfg)
        # bookkeeping only (logs); the offline stand-in reads nothing but the rendered context
        payload = {"domain": p.domain, "m": len(p.subtasks), "step_counts": [s.n_steps for s in p.subtasks]}
        items.append((h, llm_io.request("plan.jinja", "plan", payload, llm_io.PLAN_SCHEMA, llm_cfg,
                                        domain=p.domain, description=cat.description,
                                        tools=cat.schemas(p.tools), m=len(p.subtasks),
                                        step_counts=[s.n_steps for s in p.subtasks],
                                        known_values=known_values(p))))
    for p, h, (val, err) in zip(plans, holders, llm_io.ask(client, items, "plan")):
        if err is not None:
            fail(h, "plan", err["kind"], err["message"])
            continue
        subs = val["subtasks"]
        if len(subs) != len(p.subtasks):
            fail(h, "plan", "plan_mismatch", f"{len(subs)} subtasks planned, {len(p.subtasks)} asked for")
            continue
        bad = sorted({t for s in subs for t in s["tools"]} - Catalog(p.domain, cfg).names)
        if bad:
            fail(h, "plan", "unknown_tool", f"plan names tools that do not exist: {bad[:5]}")
            continue
        for s, v in zip(p.subtasks, subs):
            s.description, s.tools = v["description"], list(dict.fromkeys(v["tools"]))
        p.planner = "llm"


def build_llm(plans: list[TaskPlan], indices: list[int], cfg, client) -> list[dict[str, Any]]:
    """LLM stage 1: plan (one batched request), then one batched sub-trajectory request per subtask index."""
    ds = [new_dialogue(p, i, cfg) for p, i in zip(plans, indices)]
    llm_describe(plans, client, cfg.llm, holders=ds, cfg=cfg)
    envs = [None if is_pool(p.domain) else make_env(p) for p in plans]
    for d, p in zip(ds, plans):
        d["meta"]["plan"] = p.to_dict()
        if not p.subtasks:
            fail(d, "skeleton", "empty_plan", "no executable call was found for any subtask")
    m_max = max((len(p.subtasks) for p in plans), default=0)
    for t in range(m_max):
        items, who = [], []
        for k, (d, p) in enumerate(zip(ds, plans)):
            if d["meta"]["failure"] is not None or t >= len(p.subtasks):
                continue
            sub, sim = p.subtasks[t], is_pool(p.domain)
            # bookkeeping only: the planner's pre-executed calls are NOT sent (the model writes its own calls)
            payload = {"domain": p.domain, "t": t, "simulate_outputs": sim}
            schema = llm_io.SUBTRAJ_POOL_SCHEMA if sim else llm_io.SUBTRAJ_SCHEMA
            req = llm_io.request("subtrajectory.jinja", "skeleton", payload, schema, cfg.llm, simulate_outputs=sim,
                                 domain=p.domain, tools=d["tools"], history_messages=llm_io.visible_messages(d["messages"]),
                                 known_values=known_values(p), t=t, m=len(p.subtasks), description=sub.description,
                                 subtask_tools=sub.tools, n_steps=sub.n_steps,
                                 goal=([[{"tool": c.tool, "arguments": c.arguments} for c in st] for st in sub.steps]
                                       if getattr(cfg, "skeleton_goal", "calls") == "calls" else None))
            items.append((d, req))
            who.append(k)
        for k, (val, err) in zip(who, llm_io.ask(client, items, "skeleton")):
            d, p, env = ds[k], plans[k], envs[k]
            if err is not None:
                fail(d, "skeleton", err["kind"], err["message"])
                continue
            steps = [[CallPlan(tool=c["name"], arguments=c["arguments"]) for c in step] for step in val["steps"]]
            known = Catalog(p.domain, cfg).names
            unknown = sorted({c.tool for st in steps for c in st} - known)
            if unknown:
                fail(d, "skeleton", "unknown_tool", f"the model called tools that do not exist: {unknown[:5]}")
                continue
            append(d, user(val["user"]), "query", t)
            sim = [[c.get("output") for c in st] for st in val["steps"]] if env is None else None
            _run_steps(d, env, steps, t, sim)
            append(d, assistant(val["reply"]), "reply", t)
            p.subtasks[t].steps = steps
            p.subtasks[t].n_steps = len(steps)
            p.subtasks[t].tools = list(dict.fromkeys(c.tool for st in steps for c in st))
            d["meta"]["plan"] = p.to_dict()
    for d, p, env in zip(ds, plans, envs):
        # tools the model used are the ones offered (plus the planned distractors)
        used = sorted({c.tool for c in p.calls()} | set(p.tools))
        p.tools = used
        d["meta"]["plan"] = p.to_dict()
        d["tools"] = Catalog(p.domain, cfg).schemas(used)
        if env is not None:
            d["meta"]["final_state_hash"] = env.state_hash()
        else:
            d["meta"]["simulated_outputs"] = True  # schema-only pool: outputs written by the LLM
        fill_empty(d)
    return ds
