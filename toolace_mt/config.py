"""Recipes: flat YAML files whose keys are the fields of a config dataclass (alignment-handbook style).

Every recipe names its kind with ``task:`` (generate | train | evaluate | reproduce | ...). The kind maps to a
module that exposes ``parse_recipe(raw: dict) -> config``; parsing is strict (an unknown key, a wrong type or a
bad value is a `RecipeError` that names the recipe, the key and what is wrong), so `toolace-mt validate`
catches a broken recipe before it burns compute.

``--set key=value`` overrides are applied before parsing; values are read as YAML (``--set n=5`` is an int,
``--set tools=[a,b]`` a list); dotted keys reach into nested dicts.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import math
import os
import re
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


# ------------------------------------------------------------------------------------------------
# YAML 1.1 traps: PyYAML reads `010` as octal (8) and `yes/no/on/off` as booleans
# ------------------------------------------------------------------------------------------------
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_OCTAL = re.compile(r"^[-+]?0[0-7_]+$")  # PyYAML's YAML 1.1 octal form (`0o17` is not YAML 1.1: a string)
_SEXAGESIMAL = re.compile(r"^[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+$")  # `1:30` reads as 90
_BOOL_WORDS = frozenset({"yes", "no", "on", "off"})  # PyYAML's YAML 1.1 booleans besides true/false (not y/n)

# Dotted key path -> the word (yes/no/on/off) a boolean value of the recipe being parsed was written as; set by
# `load_recipe` while the kind's parser runs, read by `yaml_word` (dataclass_from_dict, the train parser).
_WORDS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("toolace_mt_yaml_words", default={})


def _key_text(path: tuple) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _scan_yaml11(node: yaml.Node, path: tuple, words: dict[str, str]) -> None:
    """Refuse plain scalars whose YAML 1.1 reading differs from what anyone means (octal `010`, sexagesimal
    `1:30`); note where a yes/no/on/off word became a boolean (refused later for keys that are not booleans)."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            _scan_yaml11(v, path + (k.value if isinstance(k, yaml.ScalarNode) else "?",), words)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _scan_yaml11(v, path + (i,), words)
    elif isinstance(node, yaml.ScalarNode) and node.style is None:  # plain (unquoted) scalars only
        text = node.value
        where = f"key {_key_text(path)!r} (line {node.start_mark.line + 1}): " if path else ""
        if node.tag == _INT_TAG and _OCTAL.match(text):
            digits = text.replace("_", "")
            sign = "-" if digits.startswith("-") else ""
            octal, decimal = int(digits, 8), int(digits.lstrip("+-").lstrip("0") or "0") * (-1 if sign else 1)
            if octal != decimal:
                raise RecipeError(f"{where}{text} is an octal number in YAML 1.1 (it reads as {octal}); write "
                                  f"{decimal} for the number, or \"{text}\" (quoted) for the text")
        elif node.tag == _INT_TAG and _SEXAGESIMAL.match(text):
            raise RecipeError(f"{where}{text} is a base-60 number in YAML 1.1 (it reads as "
                              f"{yaml.safe_load(text)}); quote it (\"{text}\") for the text, or write the number")
        elif node.tag == _BOOL_TAG and text.lower() in _BOOL_WORDS:
            words[".".join(str(p) for p in path)] = text


def _safe_load_checked(text: str) -> tuple[Any, dict[str, str]]:
    """`yaml.safe_load` that refuses the YAML 1.1 number traps; returns (data, {key path: yes/no/on/off word})."""
    # chosen: compose the node graph (which keeps each scalar's source text, style and line), scan it, then let
    # PyYAML construct the same document: no parser of our own, and the values are exactly safe_load's. Octal and
    # base-60 are refused for every key (no one means 8 by `010`); the words only where the key takes no boolean,
    # which only the kind's parser knows, so their paths are handed on.
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        words: dict[str, str] = {}
        if node is None:
            return None, words
        _scan_yaml11(node, (), words)
        return loader.construct_document(node), words
    finally:
        loader.dispose()


def yaml_word(key: str) -> Optional[str]:
    """The word (yes/no/on/off) the boolean at dotted `key` of the recipe being parsed was written as, else None."""
    return _WORDS.get().get(key)


def bool_word_error(key: str, value: Any, tp: Any) -> Optional[str]:
    """The error for a yes/no/on/off word YAML 1.1 turned into a boolean, given to a key that takes no boolean."""
    word = yaml_word(key) if isinstance(value, bool) else None
    if word is None or _takes_bool(tp):
        return None
    leaf = key.rsplit(".", 1)[-1]
    return (f"key {key!r}: {word} is a boolean in YAML 1.1 (it reads as {str(value).lower()}), and {key!r} takes "
            f"no boolean; quote it for the word: {leaf}: \"{word}\"")


def _takes_bool(tp: Any) -> bool:
    """Whether a field of type `tp` is meant to take a boolean (bool, Optional[bool], a union with bool, Any)."""
    if tp is bool or tp is Any:  # chosen: Any fields (pass-through dicts) may mean a boolean; not refused
        return True
    if isinstance(tp, str):  # a postponed annotation we do not resolve: refuse only where it surely has no bool
        return "bool" in tp or "Any" in tp
    if typing.get_origin(tp) in (Union, types.UnionType):
        return any(_takes_bool(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is typing.Literal:
        return any(isinstance(a, bool) for a in typing.get_args(tp))
    return False


# ------------------------------------------------------------------------------------------------
# input paths that an earlier step writes (validate checks a pipeline before any of it ran)
# ------------------------------------------------------------------------------------------------
_PRODUCED: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar("toolace_mt_produced", default=())


@contextlib.contextmanager
def produced_paths(paths):
    """While inside, `check_input` accepts a missing path at or under one of `paths` (the output directories of
    earlier steps: a reproduce recipe's own steps, or the other recipes validated together)."""
    token = _PRODUCED.set(_PRODUCED.get() + tuple(Path(os.path.abspath(p)) for p in paths))
    try:
        yield
    finally:
        _PRODUCED.reset(token)


def is_produced(path: str | Path) -> bool:
    p = Path(os.path.abspath(path))
    return any(p == q or q in p.parents for q in _PRODUCED.get())


def check_input(key: str, path: str | Path) -> bool:
    """An input path a step reads: True if it exists, False if an earlier step writes it; else a RecipeError."""
    p = Path(path)
    if p.exists():
        return True
    if is_produced(p):
        return False
    hint = ""
    if p.parts[:1] == ("runs",) and len(p.parts) >= 3:
        kind = {"generate": "generate", "train": "train", "evaluate": "evaluate"}.get(p.parts[1])
        if kind:
            hint = (f"; it is the output of `toolace-mt {kind}` of a recipe named {p.parts[2]!r}: run that first, or "
                    f"validate both recipes in one call")
    raise RecipeError(f"{key}: {p} does not exist{hint}")


def looks_local(path: str) -> bool:
    """Whether a model reference is a local path rather than a hub id (``org/name``): absolute, ./.., under
    runs/, or more than two parts."""
    p = Path(path)
    return p.is_absolute() or path.startswith((".", "~")) or p.parts[:1] == ("runs",) or len(p.parts) > 2


def load_yaml(path: str | Path) -> dict[str, Any]:
    return _load_yaml_words(path)[0]


def _load_yaml_words(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"recipe {p}: file not found")
    try:
        raw, words = _safe_load_checked(p.read_text())
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe {p}: not valid YAML: {e}") from e
    except RecipeError as e:
        raise RecipeError(f"recipe {p}: {e}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {p}: top level must be a mapping of keys to values, got {type(raw).__name__}")
    raw.setdefault("name", p.stem)
    return raw, words


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    return _apply_overrides(raw, overrides, {})


def _apply_overrides(raw: dict[str, Any], overrides: list[str] | None, words: dict[str, str]) -> dict[str, Any]:
    """`raw` with the ``--set`` overrides applied; `words` (key path -> yes/no/on/off) updated to match."""
    out = dict(raw)
    for item in overrides or []:
        if "=" not in item:
            raise RecipeError(f"--set {item!r}: expected key=value")
        key, val = item.split("=", 1)
        key = key.strip()
        try:
            value, set_words = _safe_load_checked(val) if val != "" else ("", {})
        except yaml.YAMLError:
            value, set_words = val, {}
        except RecipeError as e:  # say which --set it was
            raise RecipeError(f"--set {item}: {e}") from None
        for k in [k for k in words if k == key or k.startswith(key + ".")]:
            del words[k]  # the value these words described is replaced
        for k, w in set_words.items():
            words[f"{key}.{k}" if k else key] = w
        cur = out
        parts = key.split(".")
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
    raw, words = _load_yaml_words(path)
    raw = _apply_overrides(raw, overrides, words)
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
    token = _WORDS.set(words)
    try:
        cfg = parse(raw)
    except RecipeError as e:
        raise RecipeError(f"recipe {path}: {e}") from None
    finally:
        _WORDS.reset(token)
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


def number_text_hint(value: Any, tp: Any = float) -> str:
    """A hint for a number YAML read as text, that suggests a value the key then accepts: PyYAML follows YAML
    1.1, where ``1e-3`` (no dot) is a string; a quoted ``"2"`` is a string too. `tp`: the type the key wants."""
    if not isinstance(value, str):
        return ""
    try:
        number = float(value)
    except ValueError:
        return ""
    if not math.isfinite(number):
        return ""
    shown = value.strip()
    if tp is int or (typing.get_origin(tp) in (Union, types.UnionType) and int in typing.get_args(tp)
                     and float not in typing.get_args(tp)):
        if not number.is_integer():
            return f" (an integer is expected, got the text {shown!r})"
        return f" (YAML reads {shown} as text; write it as an integer, without quotes: {int(number)})"
    text = repr(number)  # shortest exact form; YAML 1.1 needs a dot before an exponent ("1e-05" is text)
    if "e" in text and "." not in text.split("e")[0]:
        mant, exp = text.split("e")
        text = f"{mant}.0e{exp if exp[0] in '+-' else '+' + exp}"
    return f" (YAML reads {shown} as text; write it with a dot, e.g. {text})"


def _type_name(tp: Any) -> str:
    """`int`, `Optional[float]`, `list[str]`: a plain class by its name, a typing form as written in code."""
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


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
        word_error = bool_word_error(where + key, value, tp)
        if word_error:
            raise RecipeError(word_error)
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            value = dataclass_from_dict(tp, value, where=f"{where}{key}.")
        elif not _type_ok(value, tp):
            raise RecipeError(f"key {where + key!r}: {value!r} is not of type {_type_name(tp)}"
                              f"{number_text_hint(value, tp)}")
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
