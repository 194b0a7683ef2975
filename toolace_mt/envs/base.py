"""Executable, stateful tool environments.

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
  request that holds every argument value; several give several realisations;
* ``rules``: parameter -> `Rule`, the semantics beyond the JSON type (bounds, whole cents, a real calendar
  date within the environment's booking window, a length cap, a pattern). Bounds, ``format: date``,
  ``maxLength`` and ``pattern`` are also written into the derived schema, so the model sees them.

Every parameter also gets the defaults of `Rule` (finite numbers within ``MAX_NUMBER``, integers that are
integers, strings within ``DEFAULT_MAX_LEN`` without control characters or lone surrogates, and non-empty
strings where the environment sets ``NONEMPTY_STRINGS``), so the semantic checks live here once rather than
in each tool. A date rule with ``window=True`` compares with the state's ``today`` (a sampled constant of the
domain): nothing can be booked in the past. Every refused call is a structured error and leaves the state
unchanged.

Executing a call validates the arguments against the schema first and never raises: the result is a
`ToolResult` with either an output or a structured `ToolError`. Nothing here touches the real file system or
network, and nothing evaluates text as code.
"""
from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import functools
import hashlib
import inspect
import json
import math
import os
import pickle
import random
import re
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


def is_error_text(content: Optional[str]) -> bool:
    """A recorded tool message that is an environment error (`ToolError.to_dict`: exactly ``{"error", "message"}``)."""
    try:
        v = json.loads(content or "")
    except (json.JSONDecodeError, TypeError):
        return False
    return isinstance(v, dict) and set(v) == {"error", "message"}


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
        """The tool message content: strict JSON (no NaN/Infinity) of the output, or of the error."""
        payload = self.output if self.ok else self.error.to_dict()
        return json.dumps(payload, ensure_ascii=False, sort_keys=False, allow_nan=False)


# chosen: no quantity, price or count in these domains comes near a billion, and below it float arithmetic
# on cents stays exact (2**53 cents is about 9e13 dollars); 1e308 or 1e30 are refused instead of overflowing.
MAX_NUMBER = 1e9
# chosen: the longest sampled value (a message, a ticket description) is under 200 characters; 1000 leaves
# room for a long message while keeping a 100k-character value out of the state and the tool messages.
DEFAULT_MAX_LEN = 1000
# chosen: airlines and hotels sell about a year ahead and calendars plan a few; two years covers both.
DATE_WINDOW_DAYS = 730
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# C0/C1 control characters other than tab, newline and carriage return, and lone UTF-16 surrogates (legal in
# JSON escapes, but not text: they cannot be encoded as UTF-8 and break every writer after the tool).
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True)
class Rule:
    """What one parameter means beyond its JSON type. Unset fields keep the defaults of every parameter.

    * ``ge``/``gt``/``le``: numeric bounds (``le`` defaults to ``MAX_NUMBER``, and ``-MAX_NUMBER`` is the floor);
    * ``cents``: money, in whole cents (a 0.001 transfer would round away and break the books);
    * ``max_len``: string length cap (default ``DEFAULT_MAX_LEN``); ``allow_empty``: "" is a legal value;
    * ``pattern``: a regex the whole string must match (IBAN, e-mail, phone);
    * ``date``: a real calendar day ``YYYY-MM-DD``; ``window``: also on or after the state's ``today`` and at
      most ``DATE_WINDOW_DAYS`` later (bookings, new events, due dates).
    """

    ge: Optional[float] = None
    gt: Optional[float] = None
    le: Optional[float] = None
    cents: bool = False
    max_len: Optional[int] = None
    allow_empty: bool = False
    pattern: Optional[str] = None
    date: bool = False
    window: bool = False

    def schema_keywords(self, types: set[str]) -> dict[str, Any]:
        """JSON Schema keywords that advertise this rule (only what was declared, to keep schemas short)."""
        kw: dict[str, Any] = {}
        if types & {"number", "integer"}:
            if self.ge is not None:
                kw["minimum"] = self.ge
            if self.gt is not None:
                kw["exclusiveMinimum"] = self.gt
            if self.le is not None:
                kw["maximum"] = self.le
        if "string" in types:
            if self.max_len is not None:
                kw["maxLength"] = self.max_len
            if self.pattern is not None:
                kw["pattern"] = f"^(?:{self.pattern})$"
            if self.date:
                kw["format"] = "date"
        return kw


MONEY = Rule(gt=0, cents=True)  # a positive amount of money in whole cents, at most MAX_NUMBER
_DEFAULT_RULE = Rule()


def _types(schema: dict[str, Any]) -> set[str]:
    t = schema.get("type")
    return set(t) if isinstance(t, list) else {t} if t else set()


def _fmt(x: Any) -> str:
    return repr(x) if not isinstance(x, str) or len(x) <= 40 else repr(x[:40] + "...")


def _value_errors(where: str, v: Any, depth: int = 0) -> list[str]:
    """Defaults that hold for every value at any depth: finite numbers within MAX_NUMBER, strings (values and
    keys) without control characters or lone surrogates. Length caps apply to parameters (`_string_errors`)."""
    if isinstance(v, bool) or v is None:
        return []
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            return [f"{where}: {v} is not a finite number"]
        if abs(v) > MAX_NUMBER:
            return [f"{where}: {_fmt(v)} is out of range (at most {MAX_NUMBER:g} in magnitude)"]
        return []
    if isinstance(v, str):
        if _BAD_CHARS.search(v):
            return [f"{where}: contains control characters or invalid unicode"]
        return []
    if depth > 20:  # chosen: no tool takes arguments nested this deep
        return [f"{where}: nested too deeply"]
    if isinstance(v, dict):
        bad_keys = [f"{where}: a key contains control characters or invalid unicode"
                    for k in v if isinstance(k, str) and _BAD_CHARS.search(k)]
        return bad_keys or [e for k, x in v.items() for e in _value_errors(f"{where}/{k}", x, depth + 1)]
    if isinstance(v, list):
        return [e for i, x in enumerate(v) for e in _value_errors(f"{where}/{i}", x, depth + 1)]
    return []


@dataclass
class ToolSpec:
    name: str
    func: Callable[..., Any]
    writes: bool
    consumes: dict[str, str] = field(default_factory=dict)
    produces: dict[str, str] = field(default_factory=dict)
    phrases: list[str] = field(default_factory=list)
    rules: dict[str, Rule] = field(default_factory=dict)
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
         phrases: Optional[list[str]] = None, rules: Optional[dict[str, Rule]] = None):
    """Mark an Env method as a tool. See the module docstring for the meaning of each field."""

    def deco(fn):
        unknown = set(rules or {}) - set(inspect.signature(fn).parameters)
        if unknown:
            raise TypeError(f"{fn.__name__}: rules for unknown parameters {sorted(unknown)}")
        fn.__tool_meta__ = dict(writes=writes, consumes=dict(consumes or {}), produces=dict(produces or {}),
                                phrases=list(phrases or []), rules=dict(rules or {}))
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
    for name, rule in (getattr(fn, "__tool_meta__", {}).get("rules") or {}).items():
        prop = params.get("properties", {}).get(name)
        if prop is not None:
            prop.update(rule.schema_keywords(_types(prop)))
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
    # Whether a string parameter without `Rule(allow_empty=True)` refuses "" and whitespace. Off by default:
    # an environment built on this base elsewhere may take an empty string as a value (a blank address line).
    NONEMPTY_STRINGS: ClassVar[bool] = False
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
        # surrogatepass: a state handed in from outside may hold a lone surrogate; hashing must not fail on it
        return hashlib.sha256(canonical_json(self.state).encode("utf-8", "surrogatepass")).hexdigest()

    def today(self) -> Optional[_dt.date]:
        """The environment's current day (``state["today"]``, sampled with the state), or None if it has none."""
        t = self.state.get("today") if isinstance(self.state, dict) else None
        try:
            return _dt.date.fromisoformat(t) if isinstance(t, str) else None
        except ValueError:
            return None

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
        errs = _value_errors("(arguments)", arguments)  # before the schema: jsonschema lets NaN pass bounds
        errs = errs or argument_errors(spec.tool, arguments)
        call_args: dict[str, Any] = {}
        if not errs:
            call_args, errs = self._apply_rules(spec, arguments)
        if errs:
            return ToolResult(name, arguments, error=ToolError("invalid_arguments", "; ".join(errs)))
        bad_day = self._date_window_error(spec, call_args)
        if bad_day:
            return ToolResult(name, arguments, error=ToolError("invalid_request", bad_day))
        before = self.snapshot() if spec.writes else None
        try:
            out = spec.func(self, **call_args)
            json.dumps(out, allow_nan=False)  # outputs must be strict JSON
            return ToolResult(name, arguments, output=out)
        except ToolFailure as f:
            if before is not None:
                self.state = before
            return ToolResult(name, arguments, error=ToolError(f.kind, f.message))
        except Exception as e:  # a bug in a tool must not crash a generation run: record it
            if before is not None:
                self.state = before
            return ToolResult(name, arguments, error=ToolError("internal_error", f"{type(e).__name__}: {e}"))

    # --- semantic validation (after the JSON Schema) ---------------------------------------------
    def _apply_rules(self, spec: ToolSpec, arguments: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """(arguments to call with, errors): every parameter's `Rule` (declared or default) checked; an integral
        float for an integer parameter (``3.0``) is passed on as an int."""
        props = _derive_schema(spec.func)["function"]["parameters"].get("properties", {})  # cached; read only
        out, errs = dict(arguments), []
        for name, v in arguments.items():
            rule = spec.rules.get(name, _DEFAULT_RULE)
            types = _types(props.get(name, {}))
            if v is None or isinstance(v, bool):
                continue
            if isinstance(v, (int, float)):
                if "integer" in types and "number" not in types:
                    if isinstance(v, float):
                        if not v.is_integer():
                            errs.append(f"{name}: {v} is not an integer")
                            continue
                        out[name] = v = int(v)
                errs += self._number_errors(name, v, rule)
            elif isinstance(v, str) and "enum" not in props.get(name, {}):
                errs += self._string_errors(name, v, rule, self.NONEMPTY_STRINGS)
        return out, errs

    @staticmethod
    def _number_errors(name: str, v: float, rule: Rule) -> list[str]:
        errs = []
        if rule.ge is not None and not v >= rule.ge:
            errs.append(f"{name}: {_fmt(v)} is below the minimum {rule.ge:g}")
        if rule.gt is not None and not v > rule.gt:
            errs.append(f"{name}: {_fmt(v)} must be greater than {rule.gt:g}")
        if rule.le is not None and not v <= rule.le:
            errs.append(f"{name}: {_fmt(v)} is above the maximum {rule.le:g}")
        if rule.cents and round(v, 2) != v:
            errs.append(f"{name}: {_fmt(v)} is not a whole number of cents")
        return errs

    @staticmethod
    def _string_errors(name: str, v: str, rule: Rule, nonempty: bool) -> list[str]:
        cap = rule.max_len if rule.max_len is not None else DEFAULT_MAX_LEN
        if len(v) > cap:
            return [f"{name}: {len(v)} characters, at most {cap} allowed"]
        if not v.strip():
            return [f"{name}: must not be empty"] if nonempty and not rule.allow_empty else []
        if rule.pattern is not None and not re.fullmatch(rule.pattern, v):
            return [f"{name}: {_fmt(v)} is not in the expected format"]
        if rule.date:
            if not _DATE_RE.fullmatch(v):
                return [f"{name}: {_fmt(v)} is not a date in YYYY-MM-DD form"]
            try:
                _dt.date.fromisoformat(v)
            except ValueError:
                return [f"{name}: {_fmt(v)} is not a real calendar date"]
        return []

    def _date_window_error(self, spec: ToolSpec, args: dict[str, Any]) -> str:
        """A date argument of a `window` rule outside [today, today + DATE_WINDOW_DAYS] (no check without a today)."""
        today = self.today()
        if today is None:
            return ""
        for name, rule in spec.rules.items():
            v = args.get(name)
            if rule.window and isinstance(v, str):
                day = _dt.date.fromisoformat(v)
                if day < today:
                    return f"{name}: {v} is in the past (today is {today.isoformat()})"
                if (day - today).days > DATE_WINDOW_DAYS:
                    return f"{name}: {v} is more than {DATE_WINDOW_DAYS} days ahead (today is {today.isoformat()})"
        return ""
