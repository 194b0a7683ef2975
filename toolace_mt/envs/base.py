"""Executable, stateful tool environments (ARCHITECTURE.md §4).

A domain is a subclass of `Env` whose public tool methods are marked with `@tool(...)`. Their JSON Schemas
are derived from type hints and Google-style docstrings by `transformers.utils.get_json_schema` (never
written twice). Each tool declares

* ``writes``: whether it changes state (read tools must leave `state_hash()` unchanged);
* ``consumes``: parameter -> entity kind (e.g. ``{"order_id": "order_id"}``): the parameter takes a value of
  that kind, which exists in the state (`Env.entity_values(kind)`) or appears in an earlier tool output;
* ``produces``: entity kind -> path into the tool's output (e.g. ``{"order_id": "orders[].order_id"}``): the
  output holds values of that kind there. A producer of kind K feeds every consumer of K; the generators
  chain tools along these edges (`dependency_edges()`), and tests check that they hold;
* ``phrases``: user-utterance templates (``{param}`` placeholders) used by the `rules` engine to write a
  request that holds every argument value; several give several realisations.

Executing a call validates the arguments against the schema first and never raises: the result is a
`ToolResult` with either an output or a structured `ToolError`. Nothing here touches the real file system or
network, and nothing evaluates text as code.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import inspect
import json
import os
import pickle
import random
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

from ..schema import Tool, argument_errors


class ToolFailure(Exception):
    """Raised inside a tool method for an expected, domain-level failure (not found, insufficient funds)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class ToolError:
    kind: str  # unknown_tool | invalid_arguments | not_found | conflict | forbidden | ... | internal_error
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"error": self.kind, "message": self.message}


@dataclass
class ToolResult:
    name: str
    arguments: dict[str, Any]
    output: Any = None
    error: Optional[ToolError] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def content(self) -> str:
        """The tool message content: JSON of the output, or of the error."""
        payload = self.output if self.ok else self.error.to_dict()
        return json.dumps(payload, ensure_ascii=False, sort_keys=False)


@dataclass
class ToolSpec:
    name: str
    func: Callable[..., Any]
    writes: bool
    consumes: dict[str, str] = field(default_factory=dict)
    produces: dict[str, str] = field(default_factory=dict)
    phrases: list[str] = field(default_factory=list)
    domain: str = ""
    _tool: Optional[Tool] = None

    @property
    def schema(self) -> dict[str, Any]:
        """OpenAI tool dict: {"type": "function", "function": {name, description, parameters}}.

        A fresh copy: callers put it into dialogues and may change it; the cached original must stay intact.
        """
        return copy.deepcopy(_derive_schema(self.func))

    @property
    def tool(self) -> Tool:
        """The validated `Tool`, built once (execute() checks arguments against it on every call)."""
        if self._tool is None:
            self._tool = Tool.model_validate(self.schema)
        return self._tool

    @property
    def parameters(self) -> dict[str, Any]:
        return self.schema["function"]["parameters"]

    @property
    def required(self) -> list[str]:
        return list(_derive_schema(self.func)["function"]["parameters"].get("required", []))


def tool(*, writes: bool, consumes: Optional[dict[str, str]] = None, produces: Optional[dict[str, str]] = None,
         phrases: Optional[list[str]] = None):
    """Mark an Env method as a tool. See the module docstring for the meaning of each field."""

    def deco(fn):
        fn.__tool_meta__ = dict(writes=writes, consumes=dict(consumes or {}), produces=dict(produces or {}),
                                phrases=list(phrases or []))
        return fn

    return deco


def _fix_nullable(schema: Any) -> Any:
    # get_json_schema marks Optional[X] as {"type": X, "nullable": true} (OpenAPI style); JSON Schema wants a
    # type list so that null validates.
    if isinstance(schema, dict):
        out = {k: _fix_nullable(v) for k, v in schema.items() if k != "nullable"}
        if schema.get("nullable") and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]  # else `enum` alone would still reject null
        return out
    if isinstance(schema, list):
        return [_fix_nullable(x) for x in schema]
    return schema


@functools.lru_cache(maxsize=None)
def _derive_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    from transformers.utils import get_json_schema  # lazy: only needed when schemas are first asked for

    s = get_json_schema(fn)
    s.pop("return", None)
    fdef = s["function"]
    fdef.pop("return", None)
    params = _fix_nullable(fdef["parameters"])
    params["additionalProperties"] = False  # chosen: a call with an unknown argument is a bad call
    fdef["parameters"] = params
    return {"type": "function", "function": fdef}


def extract(obj: Any, path: str) -> list[Any]:
    """Values at a simple path like ``orders[].order_id`` or ``account.balance`` (``[]`` = every element)."""
    cur = [obj]
    for part in [p for p in path.split(".") if p]:
        many = part.endswith("[]")
        key = part[:-2] if many else part
        nxt = []
        for c in cur:
            v = c.get(key) if (isinstance(c, dict) and key) else c
            if v is None:
                continue
            if many:
                if isinstance(v, list):
                    nxt.extend(v)
                elif isinstance(v, dict):
                    nxt.extend(v.values())
            else:
                nxt.append(v)
        cur = nxt
    return cur


def copy_state(state: Any) -> Any:
    """Deep copy of a JSON-like state. pickle round trip: ~5x faster than copy.deepcopy (every write call
    snapshots the state for rollback, and the generators execute millions of calls)."""
    return pickle.loads(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))


ID_STYLES = ("long", "short")
# The id style of the env samplers (`unique_ids`): an environment variable, so that a reproduce run that sets it
# reaches every process it starts (generation workers, task builders) and the samplers need no new argument.
ID_STYLE_ENV = "TOOLACE_MT_ID_STYLE"


def id_style() -> str:
    style = os.environ.get(ID_STYLE_ENV) or "long"
    if style not in ID_STYLES:
        raise ValueError(f"{ID_STYLE_ENV}={style!r} is not one of {', '.join(ID_STYLES)}")
    return style


@contextlib.contextmanager
def use_id_style(style: Optional[str]):
    """Sample ids in `style` inside the block (None: leave the current style)."""
    if style is not None and style not in ID_STYLES:
        raise ValueError(f"id_style: {style!r} is not one of {', '.join(ID_STYLES)}")
    old = os.environ.get(ID_STYLE_ENV)
    if style is not None:
        os.environ[ID_STYLE_ENV] = style
    try:
        yield
    finally:
        if style is not None:
            if old is None:
                os.environ.pop(ID_STYLE_ENV, None)
            else:
                os.environ[ID_STYLE_ENV] = old


def unique_ids(rng: random.Random, prefix: str, n: int, lo: int, hi: int, taken: Any = ()) -> list[str]:
    """`n` distinct ids ``prefix + number`` (number in [lo, hi)) not in `taken`: seeded and collision-free.

    With the ``short`` id style (`use_id_style`) the number has as few digits as leave 4x room for the ids
    needed (2 digits for a handful: ``ACC27``), so a small model can copy it as one or two tokens."""
    taken = set(taken)
    if id_style() == "short":
        width = 2  # chosen: two digits keep ids distinct per prefix while one digit group covers them
        while 9 * 10 ** (width - 1) < 4 * (n + len(taken)):
            width += 1
        lo, hi = 10 ** (width - 1), 10 ** width
    out: list[str] = []
    while len(out) < n:
        v = f"{prefix}{rng.randrange(lo, hi)}"
        if v not in taken:
            taken.add(v)
            out.append(v)
    return out


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class Env:
    """Base of every domain. Subclasses set `domain`, `description`, `ENTITIES`, `VALUE_POOLS`, implement
    `sample_state(rng)` and tool methods decorated with `@tool`.

    * ``ENTITIES``: entity kind -> path into the state where values of that kind live (for `entity_values`).
    * ``VALUE_POOLS``: parameter name -> realistic literal values, for parameters that consume no entity
      (message text, amounts, dates). The rules engine samples argument values from these.
    """

    domain: ClassVar[str] = ""
    description: ClassVar[str] = ""
    ENTITIES: ClassVar[dict[str, str]] = {}
    VALUE_POOLS: ClassVar[dict[str, list[Any]]] = {}
    # State paths (lists) where `add_distractors` appends bulk records (BFCL long_context style).
    LONG_CONTEXT_KEYS: ClassVar[list[str]] = []
    _specs: ClassVar[dict[str, ToolSpec]]

    def __init__(self, state: Optional[dict[str, Any]] = None, seed: Optional[int] = None):
        if state is None:
            state = self.sample_state(random.Random(seed if seed is not None else 0))
        self.state: dict[str, Any] = copy_state(state)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        specs = {}
        for name, fn in inspect.getmembers(cls, predicate=inspect.isfunction):
            meta = getattr(fn, "__tool_meta__", None)
            if meta is not None and not name.startswith("_"):
                specs[name] = ToolSpec(name=name, func=fn, domain=cls.domain, **meta)
        cls._specs = specs

    # --- state ---------------------------------------------------------------------------------
    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def add_distractors(cls, state: dict[str, Any], rng: random.Random, n: int) -> dict[str, Any]:
        """Append `n` realistic, irrelevant records under `LONG_CONTEXT_KEYS` (in place; returns `state`).

        Used by long-context injection: the records must not collide with existing ids, so every call that
        succeeded before still succeeds after.
        """
        raise NotImplementedError(f"{cls.__name__} does not support long-context distractors")

    def state_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.state).encode()).hexdigest()

    def snapshot(self) -> dict[str, Any]:
        return copy_state(self.state)

    def restore(self, snap: dict[str, Any]) -> None:
        self.state = copy_state(snap)

    def entity_values(self, kind: str) -> list[Any]:
        path = self.ENTITIES.get(kind)
        return extract(self.state, path) if path else []

    # --- tools ---------------------------------------------------------------------------------
    @classmethod
    def tool_specs(cls) -> dict[str, ToolSpec]:
        return dict(cls._specs)

    @classmethod
    def tool_schemas(cls, names: Optional[list[str]] = None) -> list[dict[str, Any]]:
        specs = cls._specs
        return [specs[n].schema for n in (names if names is not None else sorted(specs))]

    @classmethod
    def dependency_edges(cls) -> list[tuple[str, str, str, str]]:
        """(producer tool, consumer tool, consumer parameter, entity kind) for every declared data flow."""
        edges = []
        for p in cls._specs.values():
            for kind in p.produces:
                for c in cls._specs.values():
                    for param, ckind in c.consumes.items():
                        if ckind == kind and c.name != p.name:
                            edges.append((p.name, c.name, param, kind))
        return edges

    def execute(self, name: str, arguments: Optional[dict[str, Any]] = None) -> ToolResult:
        """Validate, then run one call. Never raises; state is unchanged when the call fails."""
        arguments = {} if arguments is None else arguments
        spec = self._specs.get(name)
        if spec is None:
            return ToolResult(name, arguments, error=ToolError("unknown_tool", f"no tool named {name!r} in {self.domain}"))
        if not isinstance(arguments, dict):
            return ToolResult(name, arguments, error=ToolError("invalid_arguments", "arguments must be an object"))
        errs = argument_errors(spec.tool, arguments)
        if errs:
            return ToolResult(name, arguments, error=ToolError("invalid_arguments", "; ".join(errs)))
        before = self.snapshot() if spec.writes else None
        try:
            out = spec.func(self, **arguments)
            json.dumps(out)  # outputs must be JSON-serialisable
            return ToolResult(name, arguments, output=out)
        except ToolFailure as f:
            if before is not None:
                self.state = before
            return ToolResult(name, arguments, error=ToolError(f.kind, f.message))
        except Exception as e:  # a bug in a tool must not crash a generation run: record it
            if before is not None:
                self.state = before
            return ToolResult(name, arguments, error=ToolError("internal_error", f"{type(e).__name__}: {e}"))
