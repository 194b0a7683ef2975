"""The tau-style domains we ship: name -> (Env class, deterministic task builder)."""
from __future__ import annotations

from typing import Any, Callable

from .airline import AirlineEnv
from .airline.tasks import build_tasks as _airline_tasks
from ..episodes.domain import Task, TauEnv
from .retail import RetailEnv
from .retail.tasks import build_tasks as _retail_tasks

DOMAINS: dict[str, tuple[type[TauEnv], Callable[[], list[Task]]]] = {
    "retail": (RetailEnv, _retail_tasks),
    "airline": (AirlineEnv, _airline_tasks),
}


def get_domain(name: str) -> type[TauEnv]:
    if name not in DOMAINS:
        raise KeyError(f"unknown tau domain {name!r}; known: {', '.join(DOMAINS)}")
    return DOMAINS[name][0]


def own_tasks(domains: list[str] | None = None) -> list[Task]:
    """Every task of the given domains (all when None), in a fixed order."""
    out: list[Task] = []
    for name in domains or list(DOMAINS):
        get_domain(name)
        out.extend(DOMAINS[name][1]())
    return out


def tau_env(task: Task) -> tuple[Any, list[dict[str, Any]], str]:
    """(fresh env, tool schemas, system prompt) for a task of our tau domains: the episode runner's `make_env`."""
    cls = get_domain(task.domain)
    return cls.fresh(), cls.tool_schemas(), cls.policy()
