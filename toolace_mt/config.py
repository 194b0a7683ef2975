"""Recipes: flat YAML files whose keys are the fields of a config dataclass (alignment-handbook style).

Every recipe names its kind with ``task:`` (generate | train | evaluate | reproduce | ...). The kind maps to a
module that exposes ``parse_recipe(raw: dict) -> config``; parsing is strict (an unknown key, a wrong type or a
bad value is a `RecipeError` that names the recipe, the key and what is wrong), so `toolace-mt validate`
catches a broken recipe before it burns compute.

``--set key=value`` overrides are applied before parsing; values are read as YAML (``--set n=5`` is an int,
``--set tools=[a,b]`` a list); dotted keys reach into nested dicts.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from .registry import Registry

# kind -> parse_recipe(raw) -> config. Core defines no kinds: each package's config module registers its own
# when imported, and the app registers all of them lazily, so `validate` reads any recipe.
RECIPE_KINDS: Registry = Registry("recipe kind")


class RecipeError(ValueError):
    """A recipe that cannot run: says which recipe, which key, and what is wrong."""


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"recipe {p}: file not found")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe {p}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {p}: top level must be a mapping of keys to values, got {type(raw).__name__}")
    raw.setdefault("name", p.stem)
    return raw


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    out = dict(raw)
    for item in overrides or []:
        if "=" not in item:
            raise RecipeError(f"--set {item!r}: expected key=value")
        key, val = item.split("=", 1)
        try:
            value = yaml.safe_load(val) if val != "" else ""
        except yaml.YAMLError:
            value = val
        cur = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            nxt = cur.get(p)
            if not isinstance(nxt, dict):
                nxt = {}
            cur[p] = dict(nxt)
            cur = cur[p]
        cur[parts[-1]] = value
    return out


def load_recipe(path: str | Path, overrides: list[str] | None = None, expect: Optional[str] = None) -> tuple[str, Any, dict]:
    """Read, override and parse a recipe. Returns (kind, parsed config, raw dict after overrides)."""
    raw = apply_overrides(load_yaml(path), overrides)
    kind = raw.get("task")
    if kind is None:
        if expect is None:
            raise RecipeError(f"recipe {path}: missing key 'task' (one of {', '.join(RECIPE_KINDS.names())})")
        kind = raw["task"] = expect
    if kind not in RECIPE_KINDS:
        raise RecipeError(f"recipe {path}: task {kind!r} is not one of {', '.join(RECIPE_KINDS.names())}")
    if expect is not None and kind != expect:
        raise RecipeError(f"recipe {path}: is a {kind!r} recipe, this command runs {expect!r} recipes")
    parse = RECIPE_KINDS.get(kind)
    try:
        cfg = parse(raw)
    except RecipeError as e:
        raise RecipeError(f"recipe {path}: {e}") from None
    return kind, cfg, raw


# ------------------------------------------------------------------------------------------------
# strict dataclass parsing, shared by the config modules
# ------------------------------------------------------------------------------------------------
def _type_ok(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if origin in (list, tuple):
        args = typing.get_args(tp)
        return isinstance(value, (list, tuple)) and (not args or all(_type_ok(v, args[0]) for v in value))
    if origin is dict:
        args = typing.get_args(tp)
        return isinstance(value, dict) and (not args or all(_type_ok(v, args[1]) for v in value.values()))
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if dataclasses.is_dataclass(tp):
        return isinstance(value, (dict, tp))
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def number_text_hint(value: Any) -> str:
    """A hint for a number YAML read as text: PyYAML follows YAML 1.1, where ``1e-3`` (no dot) is a string."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return f" (YAML reads {value} as text; write it with a dot, e.g. {float(value):.1e})"
    return ""


def dataclass_from_dict(cls: type, raw: dict[str, Any], where: str = "", ignore: tuple[str, ...] = ("task", "name")):
    """Build `cls` from `raw`, strictly: unknown keys and wrong types are RecipeErrors with a suggestion.

    Nested dataclass fields are parsed recursively from dicts.
    """
    if not isinstance(raw, dict):
        raise RecipeError(f"{where or cls.__name__}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            if key in ignore:
                continue
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RecipeError(f"unknown key {where + key!r}{hint}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            value = dataclass_from_dict(tp, value, where=f"{where}{key}.")
        elif not _type_ok(value, tp):
            raise RecipeError(f"key {where + key!r}: {value!r} is not of type {getattr(tp, '__name__', tp)}"
                              f"{number_text_hint(value)}")
        kwargs[key] = value
    try:
        obj = cls(**kwargs)
    except TypeError as e:
        raise RecipeError(f"{where or cls.__name__}: {e}") from None
    except ValueError as e:  # __post_init__ checks
        raise RecipeError(f"{where}{e}") from None
    return obj


def to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
