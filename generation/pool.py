"""Schema-only API pools (paper §3: ToolACE-style pools): tools without an environment, outputs simulated.

A pool file is a JSON list of tools, either OpenAI tool dicts or ToolACE/BFCL docs (``name``,
``description``, ``parameters`` with BFCL type names). Dialogues drawn from a pool have the domain
``pool:<file stem>``; the `llm` engine writes their calls AND outputs in one request per subtask (the paper's
constraint 1), and replay-based checks are skipped for them (there is nothing to replay against).
"""
from __future__ import annotations

import functools
import json
import random
from pathlib import Path
from typing import Any

from toolace_mt.config import RecipeError

from .plan import SubtaskPlan, TaskPlan, derive_seed, domain_for, plan_rules

POOL_PREFIX = "pool:"
# chosen: ToolACE samples a handful of related APIs; 3-8 keeps the tool list readable in one prompt
POOL_TOOLS = (3, 8)


def is_pool(domain: str) -> bool:
    return str(domain).startswith(POOL_PREFIX)


@functools.lru_cache(maxsize=8)
def _load(path: str) -> tuple[str, ...]:
    from toolace_mt.io import _bfcl_params_to_jsonschema
    from toolace_mt.schema import Tool, check_schema

    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RecipeError(f"tool_pool {path}: cannot read a JSON list of tools: {e}") from None
    if not isinstance(raw, list) or not raw:
        raise RecipeError(f"tool_pool {path}: expected a non-empty JSON list of tools")
    out = []
    for k, t in enumerate(raw):
        if not isinstance(t, dict) or "name" not in t.get("function", t):
            raise RecipeError(f"tool_pool {path}: entry {k} is not a tool (needs a name)")
        if "function" not in t:
            t = {"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                                  "parameters": _bfcl_params_to_jsonschema(t.get("parameters", {}))}}
        try:
            tool = Tool.model_validate(t)
            check_schema(tool.function.parameters)
        except Exception as e:
            raise RecipeError(f"tool_pool {path}: tool {t['function'].get('name')!r} is invalid: {e}") from None
        out.append(json.dumps(tool.model_dump(), sort_keys=True))
    return tuple(out)


def load_pool(path: str) -> dict[str, dict[str, Any]]:
    """Tool name -> OpenAI tool dict."""
    tools = [json.loads(s) for s in _load(str(path))]
    return {t["function"]["name"]: t for t in tools}


def pool_domain(path: str) -> str:
    return POOL_PREFIX + Path(path).stem


def plan_pool(cfg, index: int) -> TaskPlan:
    """Tools, m and step counts for a pool dialogue; the LLM fills subtasks and calls."""
    pool = load_pool(cfg.tool_pool)
    seed = derive_seed(cfg.seed, index)
    rng = random.Random(seed)
    names = sorted(pool)
    k = min(len(names), rng.randint(*POOL_TOOLS))
    tools = sorted(rng.sample(names, k))
    m = rng.randint(*cfg.subtasks)  # paper §2.1
    steps = [rng.randint(*cfg.steps) for _ in range(m)]  # paper §2.1
    n_inj = rng.randint(*cfg.injections)
    types = [t for t in cfg.injection_types if cfg.injection_weights.get(t, 1.0) > 0]
    inj = []
    while types and len(inj) < n_inj:
        t = rng.choices(types, weights=[cfg.injection_weights.get(x, 1.0) for x in types])[0]
        inj.append(t)
        types.remove(t)
    subs = [SubtaskPlan(description=f"subtask {t + 1}", tools=[], n_steps=s) for t, s in enumerate(steps)]
    return TaskPlan(domain=pool_domain(cfg.tool_pool), state_seed=0, tools=tools, subtasks=subs, injections=inj,
                    seed=seed, planner="pool")


def plan_for(cfg, index: int) -> TaskPlan:
    """The stage-1a plan of dialogue `index`, the same for both methods: a schema-only pool plan when the recipe
    names a tool pool, otherwise the rules planner over the environment's dependency edges."""
    return plan_pool(cfg, index) if cfg.tool_pool else plan_rules(cfg, index, domain_for(cfg, index))
