"""The one lazy registry: lazy "module:attribute" entries, decorator registration, errors with suggestions."""
from __future__ import annotations

import sys
import types

import pytest

from toolace_mt.registry import Registry, RegistryError


def test_lazy_entry_is_imported_on_first_use_only(monkeypatch):
    mod = types.ModuleType("toolace_mt_test_lazy_mod")
    mod.thing = object()
    reg: Registry = Registry("widget")
    reg.register("w", "toolace_mt_test_lazy_mod:thing")
    assert "w" in reg and reg.names() == ["w"]
    with pytest.raises(RegistryError, match="widget 'w': module toolace_mt_test_lazy_mod is not installed"):
        reg.get("w")  # not importable yet: a clear error, not a ModuleNotFoundError traceback
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    assert reg.get("w") is mod.thing


def test_decorator_and_duplicates_are_errors():
    reg: Registry = Registry("suite")

    @reg.register("a")
    class A: ...

    assert reg.get("a") is A
    reg.register("a", A)  # the same entry again: a no-op
    with pytest.raises(RegistryError, match="suite 'a' is registered twice: .*A and 'collections:OrderedDict'"):
        reg.register("a", "collections:OrderedDict")
    with pytest.raises(RegistryError, match="registered twice"):
        @reg.register("a")
        class B: ...
    assert reg.get("a") is A
    reg.unregister("a")
    reg.register("a", "collections:OrderedDict")
    import collections

    assert reg.get("a") is collections.OrderedDict
    # a module registering the very object its lazy entry names resolves the entry (no duplicate)
    reg.register("od", "collections:OrderedDict")
    reg.register("od", collections.OrderedDict)
    assert reg.get("od") is collections.OrderedDict
    reg.register("od", "collections:OrderedDict")  # and the other way round (the module was imported first)
    assert reg.get("od") is collections.OrderedDict


def test_unknown_name_lists_known_and_suggests():
    reg: Registry = Registry("LLM backend")
    reg.register("openai", "collections:OrderedDict")
    reg.register("vllm", "collections:deque")
    with pytest.raises(RegistryError, match=r"unknown LLM backend 'opneai' \(known: openai, vllm\); did you mean 'openai'\?"):
        reg.get("opneai")
    with pytest.raises(RegistryError, match="must be 'module' or 'module:attribute'"):
        reg.register("bad", "collections:OrderedDict:x")
    reg.register("a_module", "collections")
    import collections

    assert reg.get("a_module") is collections
    reg.register("missing_attr", "collections:NoSuchThing")
    with pytest.raises(RegistryError, match="collections has no 'NoSuchThing'"):
        reg.get("missing_attr")


def test_discovery_runs_once_before_the_first_lookup():
    calls = []
    reg: Registry = Registry("domain", discover=lambda: (calls.append(1), reg.register("x", 1)))
    assert calls == []
    assert reg.names() == ["x"] and reg.get("x") == 1 and calls == [1]


def test_recipe_kinds_are_registered_by_the_app_not_by_core():
    import toolace_mt.app  # noqa: F401  (the app names the packages' kinds)
    from toolace_mt.config import RECIPE_KINDS

    assert {"generate", "train", "evaluate", "reproduce"} <= set(RECIPE_KINDS.names())
    from toolace_mt.generation.config import parse_recipe

    assert RECIPE_KINDS.get("generate") is parse_recipe
