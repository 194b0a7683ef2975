"""Tool environments: the `Env` base and the registry of domains (`get_env`, `all_envs`)."""
from __future__ import annotations

import importlib
import pkgutil

from .base import MONEY, Env, Rule, ToolError, ToolFailure, ToolResult, ToolSpec, canonical_json, extract, tool

_REGISTRY: dict[str, type[Env]] = {}


def register(cls: type[Env]) -> type[Env]:
    """Class decorator: make a domain available by its `domain` name."""
    if not cls.domain:
        raise ValueError(f"{cls.__name__} has no domain name")
    _REGISTRY[cls.domain] = cls
    return cls


def _load_domains() -> None:
    from . import domains

    for m in pkgutil.iter_modules(domains.__path__):
        importlib.import_module(f"{domains.__name__}.{m.name}")


def all_envs() -> dict[str, type[Env]]:
    if not _REGISTRY:
        _load_domains()
    return dict(sorted(_REGISTRY.items()))


def get_env(domain: str) -> type[Env]:
    envs = all_envs()
    if domain not in envs:
        raise KeyError(f"unknown domain {domain!r}; known: {', '.join(envs)}")
    return envs[domain]


__all__ = ["Env", "Rule", "MONEY", "ToolError", "ToolFailure", "ToolResult", "ToolSpec", "tool", "extract", "canonical_json",
           "register", "all_envs", "get_env"]
