"""Tool environments: the `Env` base and the registry of domains (`get_env`, `all_envs`)."""
from __future__ import annotations

import importlib
import pkgutil

from ..registry import Registry
from .base import MONEY, Env, Rule, ToolError, ToolFailure, ToolResult, ToolSpec, canonical_json, extract, tool


def _load_domains() -> None:
    """Every module of `domains/` registers its class on import: adding a domain is adding one file."""
    from . import domains

    for m in pkgutil.iter_modules(domains.__path__):
        importlib.import_module(f"{domains.__name__}.{m.name}")


DOMAINS: Registry = Registry("domain", discover=_load_domains)


def register(cls: type[Env]) -> type[Env]:
    """Class decorator: make a domain available by its `domain` name."""
    if not cls.domain:
        raise ValueError(f"{cls.__name__} has no domain name")
    DOMAINS.register(cls.domain, cls)
    return cls


def all_envs() -> dict[str, type[Env]]:
    return dict(DOMAINS.items())


def get_env(domain: str) -> type[Env]:
    """The environment class of `domain` (a `RegistryError` naming the known domains if there is none)."""
    return DOMAINS.get(domain)


__all__ = ["Env", "Rule", "MONEY", "ToolError", "ToolFailure", "ToolResult", "ToolSpec", "tool", "extract", "canonical_json",
           "register", "all_envs", "get_env", "DOMAINS"]
