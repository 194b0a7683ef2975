"""Stage 1b, trajectory initialization (paper §2.1): a structurally complete dialogue from each plan.

Sub-trajectories are built in subtask order, each conditioned on the earlier ones: a user query holding every
argument value (constraint 2), the assistant's calls step by step (parallel calls when independent), the
REAL tool outputs from executing on the environment, and a closing assistant reply. The `rules` engine
writes text from tool phrases and templates; the `llm` engine asks the model for the plan's descriptions
(one batched request) and then, per subtask index, for every dialogue's sub-trajectory at once (one batched
request per subtask index), executing the calls it proposes.
"""
from __future__ import annotations

import json
import random
import re
from typing import Any, Optional

from toolace_mt.envs import get_env

from . import llm_io, text
from .plan import CallPlan, TaskPlan, derive_seed, goal_view, make_env, tool_info
from .pool import is_pool, load_pool
from .dialogue import WorkDialogue
from .work import assistant, call, tool_msg, user

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


def new_dialogue(plan: TaskPlan, index: int, cfg) -> WorkDialogue:
    return WorkDialogue.new(f"tmt-{cfg.seed}-{index:06d}", Catalog(plan.domain, cfg).schemas(plan.tools), plan,
                            index, cfg, GENERATOR)


def _cid(d: WorkDialogue) -> str:
    return d.next_call_ids(1)[0]


def _run_steps(d: WorkDialogue, env, steps: list[list[CallPlan]], t: int,
               simulated: list[list[Any]] | None = None) -> list[tuple[str, Any]]:
    """Emit each step's calls and outputs: REAL outputs from `env`, or the LLM's for a schema-only pool."""
    results = []
    for s, step in enumerate(steps):
        calls = [(c, _cid(d)) for c in step]
        d.append(assistant(None, [call(cid, c.tool, c.arguments) for c, cid in calls]), "call", t)
        for k, (c, cid) in enumerate(calls):
            if env is None:
                out = simulated[s][k]
                d.append(tool_msg(cid, c.tool, json.dumps(out, ensure_ascii=False)), "output", t)
                results.append((c.tool, out))
                continue
            r = env.execute(c.tool, c.arguments)
            d.append(tool_msg(cid, c.tool, r.content()), "output", t)
            results.append((c.tool, r.output if r.ok else r.error.to_dict()))
    return results


def build_rules(plan: TaskPlan, index: int, cfg) -> WorkDialogue:
    """The rules skeleton of one plan: executes every planned call for real."""
    d = new_dialogue(plan, index, cfg)
    if not plan.subtasks:
        d.fail("skeleton", "empty_plan", "no executable call was found for any subtask")
        d.fill_empty()
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
        d.append(user(text.render_query(cls, sub.steps, rng, outputs=outs)), "query", t)
        results = _run_steps(d, env, sub.steps, t, sim)
        d.append(assistant(text.render_reply(cls, results, rng)), "reply", t)
    d.final_state_hash = env.state_hash() if env is not None else executed[1]
    return d


# ------------------------------------------------------------------------------------------------ llm engine
def known_values(plan: TaskPlan, limit: int = 6) -> dict[str, list[Any]]:
    """Entity values of the initial state, per kind (what a user of this world could refer to)."""
    if is_pool(plan.domain):
        return {}
    env = make_env(plan)
    return {k: env.entity_values(k)[:limit] for k in type(env).ENTITIES}


def llm_describe(plans: list[TaskPlan], client, llm_cfg=None, holders: list[WorkDialogue] | None = None,
                 cfg=None) -> None:
    """One batched plan request: the LLM writes the subtasks' user-facing descriptions.

    For an environment's plan (its calls sampled and executed by the rules planner) the request shows those
    calls as the user's goal (`goal_view`: values created by earlier calls as references) and the model writes one
    description per subtask FOR them, so a description never contradicts the calls it is paired with (live runs
    showed "an overview of my finances" paired with two payments when the model designed subtasks freely). For a
    schema-only pool (no calls planned) the model designs the subtasks and their tools (`plan.jinja`)."""
    holders = holders or [WorkDialogue(id="", tools=[], messages=[]) for _ in plans]
    items = []
    for p, h in zip(plans, holders):
        cat = Catalog(p.domain, cfg)
        # bookkeeping only (logs); the offline stand-in reads nothing but the rendered context
        payload = {"domain": p.domain, "m": len(p.subtasks), "step_counts": [s.n_steps for s in p.subtasks]}
        if cat.simulated or not p.calls():
            items.append((h, llm_io.request("plan.jinja", "plan", payload, llm_io.PLAN_SCHEMA, llm_cfg,
                                            domain=p.domain, description=cat.description,
                                            tools=cat.schemas(p.tools), m=len(p.subtasks),
                                            step_counts=[s.n_steps for s in p.subtasks],
                                            known_values=known_values(p))))
            continue
        schema = json.loads(json.dumps(llm_io.DESCRIBE_SCHEMA))
        schema["properties"]["subtasks"].update(minItems=len(p.subtasks), maxItems=len(p.subtasks))
        used = list(dict.fromkeys(c.tool for c in p.calls()))
        lines = [f"{n}: {tool_info(cat.cls, n)[2]}" for n in used]
        items.append((h, llm_io.request("describe.jinja", "plan", payload, schema, llm_cfg, domain=p.domain,
                                        description=cat.description, tool_lines=lines, m=len(p.subtasks),
                                        goal=goal_view(p))))
    for p, h, (val, err) in zip(plans, holders, llm_io.ask(client, items, "plan")):
        if err is not None:
            h.fail("plan", err["kind"], err["message"])
            continue
        subs = val["subtasks"]
        if len(subs) != len(p.subtasks):
            h.fail("plan", "plan_mismatch", f"{len(subs)} subtasks planned, {len(p.subtasks)} asked for")
            continue
        if "tools" not in subs[0]:  # descriptions of the planned calls: tools and calls stay the plan's
            for s, v in zip(p.subtasks, subs):
                s.description = v["description"]
            p.planner = "rules+llm"
            continue
        bad = sorted({t for s in subs for t in s["tools"]} - Catalog(p.domain, cfg).names)
        if bad:
            h.fail("plan", "unknown_tool", f"plan names tools that do not exist: {bad[:5]}")
            continue
        for s, v in zip(p.subtasks, subs):
            s.description, s.tools = v["description"], list(dict.fromkeys(v["tools"]))
        p.planner = "llm"


REF_ARG = re.compile(r"^\$(\d+)\.(.+)$")
PATH_STEP = re.compile(r"([A-Za-z_]\w*)|\[(\d+)\]")


def _lookup(out: Any, field: str) -> list[Any]:
    """Values under key `field` anywhere in a tool output (depth first, in order)."""
    found: list[Any] = []
    if isinstance(out, dict):
        for k, v in out.items():
            if k == field:
                found.append(v)
            found.extend(_lookup(v, field))
    elif isinstance(out, list):
        for x in out:
            found.extend(_lookup(x, field))
    return found


def _walk(out: Any, path: str) -> tuple[bool, Any]:
    """Follow a JSON path ("restaurants[1].restaurant_id") from the top of an output: (found, value)."""
    cur = out
    pos = 0
    for m in PATH_STEP.finditer(path):
        if path[pos:m.start()] not in ("", "."):
            return False, None
        pos = m.end()
        key, idx = m.group(1), m.group(2)
        if key is not None:
            if not isinstance(cur, dict) or key not in cur:
                return False, None
            cur = cur[key]
        else:
            if not isinstance(cur, list) or int(idx) >= len(cur):
                return False, None
            cur = cur[int(idx)]
    return pos == len(path), cur


def resolve_refs(args: dict[str, Any], outputs: list[Any]) -> tuple[dict[str, Any], Optional[str]]:
    """Arguments with every "$k.<path>" filled from the outputs of the part's calls so far.

    "$k.key" is the first value under `key` anywhere in call k's output and "$k.key[i]" the (i+1)-th (so
    "$2.restaurant_id[1]" is the second restaurant a search listed, whatever the output's nesting); a full path
    from the top ("$2.restaurants[1].restaurant_id") works too. A "$k." string that names nothing is a typed
    failure, never sent to a tool as text.

    Why: in `skeleton_goal: description` the model writes all the calls of a part before any runs, and a call
    that needs what an earlier step returns (the id a create makes, a search hit) cannot be guessed; the paper's
    model writes the outputs too, but with an executable environment the real output must supply it."""
    out: dict[str, Any] = {}
    for k, v in args.items():
        m = REF_ARG.match(v.strip()) if isinstance(v, str) else None
        if m is None:
            out[k] = v
            continue
        n, path = int(m.group(1)), m.group(2)
        if not 1 <= n <= len(outputs):
            return args, f"{k}={v!r} points at call {n}, but only {len(outputs)} call(s) ran before it"
        ok, val = _walk(outputs[n - 1], path)
        if not ok:
            flat = re.search(r"(\w+)(?:\[(\d+)\])?$", path)  # else the last key, found anywhere
            vals = _lookup(outputs[n - 1], flat.group(1)) if flat else []
            vals = [x for val_ in vals for x in (val_ if isinstance(val_, list) and flat.group(2) is not None else [val_])]
            pick = int(flat.group(2)) if flat and flat.group(2) is not None else 0
            if pick >= len(vals):
                return args, f"{k}={v!r}: the output of call {n} has no field {path!r}"
            val = vals[pick]
        if isinstance(val, (dict, list)):
            return args, f"{k}={v!r}: names a whole object or list of call {n}'s output, not a value"
        out[k] = val
    return out, None


def build_llm(plans: list[TaskPlan], indices: list[int], cfg, client) -> list[WorkDialogue]:
    """LLM stage 1: the plan request (one batched call), then the parts (one batched call per part index).

    Environment domains: part t's request writes the reply closing part t-1 (its calls have run, so the reply
    reports real outputs) and the user's request of part t; a last request writes the final reply. So a
    dialogue of m subtasks costs m + 1 part requests (one more than writing the replies blind). With
    `skeleton_goal: calls` the part's calls are the plan's (shown to the model, executed on the environment);
    with `description` the model writes the calls from the description, referring to outputs of earlier steps of
    the part as "$k.field" (filled in as the calls run). Schema-only pools keep one request per subtask that
    also writes the simulated outputs (`_build_pool_part`)."""
    ds = [new_dialogue(p, i, cfg) for p, i in zip(plans, indices)]
    llm_describe(plans, client, cfg.llm, holders=ds, cfg=cfg)
    envs = [None if is_pool(p.domain) else make_env(p) for p in plans]
    goals = [goal_view(p) if env is not None and getattr(cfg, "skeleton_goal", "calls") == "calls" else None
             for p, env in zip(plans, envs)]
    for d, p in zip(ds, plans):
        d.plan = p
        if not p.subtasks:
            d.fail("skeleton", "empty_plan", "no executable call was found for any subtask")
    m_max = max((len(p.subtasks) for p in plans), default=0)
    for t in range(m_max + 1):
        items, who = [], []
        for k, (d, p) in enumerate(zip(ds, plans)):
            m = len(p.subtasks)
            if d.failure is not None or t > m or (envs[k] is None and t == m):
                continue
            req = _part_request(d, p, t, cfg, goals[k]) if envs[k] is not None else _pool_request(d, p, t, cfg)
            items.append((d, req))
            who.append(k)
        for k, (val, err) in zip(who, llm_io.ask(client, items, "skeleton")):
            d, p, env = ds[k], plans[k], envs[k]
            if err is not None:
                d.fail("skeleton", err["kind"], err["message"])
                continue
            if env is None:
                _apply_pool_part(d, p, t, val, cfg)
            else:
                _apply_part(d, p, t, val, env, cfg)
            d.plan = p
    for d, p, env in zip(ds, plans, envs):
        # tools the model used are the ones offered (plus the planned distractors)
        used = sorted({c.tool for c in p.calls()} | set(p.tools))
        p.tools = used
        d.plan = p
        d.tools = Catalog(p.domain, cfg).schemas(used)
        if env is not None:
            d.final_state_hash = env.state_hash()
        else:
            d.simulated_outputs = True  # schema-only pool: outputs written by the LLM
        d.fill_empty()
    return ds


def _part_request(d: WorkDialogue, p: TaskPlan, t: int, cfg, goal) -> Any:
    """Part t of an environment dialogue: the reply closing part t-1 (t > 0) and the request of part t (t < m)."""
    m = len(p.subtasks)
    write_reply, write_user = t > 0, t < m
    write_steps = write_user and goal is None
    schema = json.loads(json.dumps(llm_io.PART_SCHEMA))
    fields = (["reply"] if write_reply else []) + (["user"] if write_user else []) + (["steps"] if write_steps else [])
    schema["required"] = fields
    schema["properties"] = {f: schema["properties"][f] for f in fields}
    fmt = {"reply": '"reply": "..."', "user": '"user": "..."', "steps": '"steps": [[{"name": "...", "arguments": {...}}, ...], ...]'}
    sub = p.subtasks[t] if write_user else None
    # bookkeeping only: the payload is for logs; the model and its offline stand-in see the rendered context
    payload = {"domain": p.domain, "t": t, "fields": fields}
    return llm_io.request(
        "part.jinja", "skeleton", payload, schema, cfg.llm, domain=p.domain,
        answer_format="{" + ", ".join(fmt[f] for f in fields) + "}", write_reply=write_reply, write_user=write_user,
        write_steps=write_steps, tools=d.tools if write_steps else [],
        history_messages=llm_io.visible_messages(d.messages), t=t, m=m,
        description=sub.description if sub else "", n_steps=sub.n_steps if sub else 0,
        goal=goal[t] if (goal is not None and write_user) else None,
        known_values=known_values(p) if write_steps else {})


def _apply_part(d: WorkDialogue, p: TaskPlan, t: int, val: dict[str, Any], env, cfg) -> None:
    if t > 0:
        d.append(assistant(val["reply"]), "reply", t - 1)
    if t >= len(p.subtasks):
        return
    d.append(user(val["user"]), "query", t)
    sub = p.subtasks[t]
    if "steps" not in val:  # skeleton_goal: calls -- the plan's calls run on the environment
        _run_steps(d, env, sub.steps, t)
        return
    known = Catalog(p.domain, cfg).names
    unknown = sorted({c["name"] for st in val["steps"] for c in st} - known)
    if unknown:
        d.fail("skeleton", "unknown_tool", f"the model called tools that do not exist: {unknown[:5]}")
        return
    outputs: list[Any] = []
    steps: list[list[CallPlan]] = []
    for st in val["steps"]:
        step = []
        for c in st:
            args, why = resolve_refs(c["arguments"], outputs)
            if why is not None:
                d.fail("skeleton", "unresolved_reference", why)
                return
            step.append(CallPlan(tool=c["name"], arguments=args))
        outputs.extend(o for _, o in _run_steps(d, env, [step], t))
        steps.append(step)
    sub.steps, sub.n_steps = steps, len(steps)
    sub.tools = list(dict.fromkeys(c.tool for st in steps for c in st))


def _pool_request(d: WorkDialogue, p: TaskPlan, t: int, cfg) -> Any:
    """A schema-only pool's part: request, calls with their simulated outputs and the reply, in one answer
    (the model writes the outputs itself, so its reply is not written before them)."""
    sub = p.subtasks[t]
    payload = {"domain": p.domain, "t": t, "simulate_outputs": True}
    return llm_io.request("subtrajectory.jinja", "skeleton", payload, llm_io.SUBTRAJ_POOL_SCHEMA, cfg.llm,
                          simulate_outputs=True, domain=p.domain, tools=d.tools,
                          history_messages=llm_io.visible_messages(d.messages), known_values=known_values(p),
                          t=t, m=len(p.subtasks), description=sub.description, subtask_tools=sub.tools,
                          n_steps=sub.n_steps, goal=None)


def _apply_pool_part(d: WorkDialogue, p: TaskPlan, t: int, val: dict[str, Any], cfg) -> None:
    steps = [[CallPlan(tool=c["name"], arguments=c["arguments"]) for c in step] for step in val["steps"]]
    unknown = sorted({c.tool for st in steps for c in st} - Catalog(p.domain, cfg).names)
    if unknown:
        d.fail("skeleton", "unknown_tool", f"the model called tools that do not exist: {unknown[:5]}")
        return
    d.append(user(val["user"]), "query", t)
    _run_steps(d, None, steps, t, [[c.get("output") for c in st] for st in val["steps"]])
    d.append(assistant(val["reply"]), "reply", t)
    sub = p.subtasks[t]
    sub.steps, sub.n_steps = steps, len(steps)
    sub.tools = list(dict.fromkeys(c.tool for st in steps for c in st))
