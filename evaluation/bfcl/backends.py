"""Worlds: the live env instances of one task, a safe executor, and their public state.

A task names its env classes in ``involved_classes`` and their starting state in ``initial_config``.
`make_world(task)` builds them from

* the official `bfcl-eval` env classes (``backend: official``): ``C()`` then
  ``_load_scenario(deepcopy(config), long_context=...)``, state = public (non-``_``) attributes;
* our own `toolace_mt.envs` domains (``backend: own``): ``Env(state=config)``, state = ``env.state``.

Calls are dispatched by their unique method name to the instance that has it (on official worlds a qualified
``Class.method`` name fails, as in the official executor), with literal arguments only
(parsed by `toolace_mt.pycalls` or given as dicts) -- nothing is ever `eval`-ed. Results are rendered as the
official executor renders them (a str as is, a dict as ``json.dumps``, anything else ``str()``, an exception
as ``"Error during execution: <message>"``), because the checker's response check compares these strings.
"""
from __future__ import annotations

import copy
import inspect
import json
from typing import Any, Callable

from toolace_mt.pycalls import PyCallError, parse_python_calls

# Names the official executor refuses before running anything; we give the same refusal
BLOCKED = {"kill", "exit", "quit", "remove", "unlink", "popen", "Popen", "run"}
_BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "list": "array", "int": "integer",
               "integer": "integer", "string": "string", "boolean": "boolean", "bool": "boolean", "array": "array",
               "object": "object", "number": "number"}


def bfcl_schema_to_json_schema(s: Any) -> Any:
    """BFCL function-doc parameter schema (types dict/float/tuple/any) -> JSON Schema."""
    if isinstance(s, list):
        return [bfcl_schema_to_json_schema(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k == "type" and isinstance(v, str):
            if v in _BFCL_TYPES:
                out["type"] = _BFCL_TYPES[v]
            # "any" (and unknown names): no type constraint
        elif k in ("properties",) and isinstance(v, dict):
            out[k] = {name: bfcl_schema_to_json_schema(p) for name, p in v.items()}
        elif isinstance(v, (dict, list)):
            out[k] = bfcl_schema_to_json_schema(v)
        else:
            out[k] = v
    return out


def bfcl_doc_to_tool(doc: dict[str, Any]) -> dict[str, Any]:
    params = bfcl_schema_to_json_schema(doc.get("parameters") or {"type": "dict", "properties": {}})
    params.setdefault("type", "object")
    params.setdefault("properties", {})
    return {"type": "function", "function": {"name": doc["name"], "description": doc.get("description", ""),
                                             "parameters": params}}


def render_result(value: Any) -> str:
    if isinstance(value, str):
        return value
    if type(value) is dict:
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def parse_gt_call(text: str) -> dict[str, Any]:
    """One ground-truth call string -> {"name", "arguments", "_args"?} (positional args kept under _args)."""
    calls = parse_python_calls(text, keep_positional=True)
    if len(calls) != 1:
        raise PyCallError(f"expected one call in {text!r}")
    return calls[0]


class World:
    """Live instances + dispatcher. Subclasses fill ``self.instances`` and ``self.methods`` (name -> callable)."""

    instances: dict[str, Any]
    methods: dict[str, Callable[..., Any]]

    def execute(self, call: dict[str, Any]) -> str:
        """Run one call {"name", "arguments"[, "_args"]}; never raises; returns the result string."""
        name = call.get("name")
        if not isinstance(name, str):
            return f"Error during execution: bad function name {name!r}"
        if call.get("_error"):  # a decoded call that cannot run without eval (see decoding.string_to_call)
            return f"Error during execution: {call['_error']}"
        short = name.split(".")[-1]
        if short in BLOCKED:
            return f"Error during execution: Function call {short} is not allowed."
        fn = self.lookup(name)
        if fn is None:
            return f"Error during execution: name '{name.split('.')[0]}' is not defined"
        raw_args = call.get("arguments") or {}
        if not isinstance(raw_args, dict):
            return f"Error during execution: arguments of {name} must be keyword arguments (an object)"
        # a copy: envs keep argument objects in their state, and the caller's call must stay as it was
        args = copy.deepcopy(dict(raw_args))
        pos = list(args.pop("_args", []) or []) + copy.deepcopy(list(call.get("_args") or []))
        try:
            return self.run(short, fn, pos, args)
        except Exception as e:  # a failing call is a result the model sees, never a crash
            return f"Error during execution: {e}"

    def lookup(self, name: str) -> Any:
        """The method a call name runs (own worlds accept ``Class.method`` by its short name)."""
        return self.methods.get(name) or self.methods.get(name.split(".")[-1])

    def run(self, name: str, fn: Callable[..., Any], pos: list, kwargs: dict) -> str:
        return render_result(fn(*pos, **kwargs))

    def execute_all(self, calls: list[dict[str, Any]]) -> list[str]:
        return [self.execute(c) for c in calls]

    def param_names(self, name: str) -> list[str]:
        fn = self.methods.get(name)
        return list(inspect.signature(fn).parameters) if fn is not None else []

    def public_state(self, cls: str) -> dict[str, Any]:
        raise NotImplementedError

    def differences(self, expected: "World") -> list[str]:
        """Public attributes that differ from `expected` (the GT world), as ``Class.attr`` strings."""
        diffs = []
        for cls in expected.instances:
            exp = expected.public_state(cls)
            got = self.public_state(cls)
            for attr, v in exp.items():
                if attr not in got or got[attr] != v:
                    diffs.append(f"{cls}.{attr}")
        return diffs


class OfficialWorld(World):
    def __init__(self, task: dict[str, Any]):
        from . import official

        self.instances, self.methods = {}, {}
        for cls in task["involved_classes"]:
            inst = official.env_class(cls, task.get("data_version", "v4"))()
            if cls not in official.STATELESS:
                inst._load_scenario(copy.deepcopy(task.get("initial_config", {}).get(cls, {})),
                                    long_context=bool(task.get("long_context")))
            self.instances[cls] = inst
            for mname, m in inspect.getmembers(inst, predicate=inspect.ismethod):
                if not mname.startswith("_"):
                    self.methods[mname] = m

    def lookup(self, name: str) -> Any:
        """As the official executor: it prefixes bare method names with their instance and evals the call, so a
        qualified ``Class.method`` fails with ``name 'Class' is not defined``."""
        return None if "." in name else self.methods.get(name)

    def public_state(self, cls: str) -> dict[str, Any]:
        return {k: v for k, v in vars(self.instances[cls]).items() if not k.startswith("_")}

    @staticmethod
    def tools_for(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
        from . import official

        return {d["name"]: bfcl_doc_to_tool(d) for cls in task["involved_classes"]
                for d in official.function_docs(cls, task.get("data_version", "v4"))}


class OwnWorld(World):
    def __init__(self, task: dict[str, Any]):
        from toolace_mt.envs import get_env

        self.instances, self.methods = {}, {}
        for dom in task["involved_classes"]:
            env = get_env(dom)(state=task["initial_config"][dom])
            self.instances[dom] = env
            for tname in env.tool_specs():
                self.methods[tname] = (env, tname)  # type: ignore[assignment]

    def run(self, name: str, fn: Any, pos: list, kwargs: dict) -> str:
        env, tname = fn
        if pos:
            props = list(env.tool_specs()[tname].parameters.get("properties", {}))
            if len(pos) > len(props):
                raise TypeError(f"{tname}() takes {len(props)} arguments but {len(pos)} were given")
            for p, v in zip(props, pos):
                if p in kwargs:
                    raise TypeError(f"{tname}() got multiple values for argument '{p}'")
                kwargs[p] = v
        return env.execute(tname, kwargs).content()

    def param_names(self, name: str) -> list[str]:
        m = self.methods.get(name)
        if m is None:
            return []
        env, tname = m
        return list(env.tool_specs()[tname].parameters.get("properties", {}))

    def public_state(self, cls: str) -> dict[str, Any]:
        return {k: v for k, v in self.instances[cls].state.items() if not str(k).startswith("_")}

    @staticmethod
    def tools_for(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
        from toolace_mt.envs import get_env

        out = {}
        for dom in task["involved_classes"]:
            for s in get_env(dom).tool_schemas():
                out[s["function"]["name"]] = s
        return out


def world_class(task: dict[str, Any]) -> type[World]:
    b = task.get("backend", "official")
    if b == "official":
        return OfficialWorld
    if b == "own":
        return OwnWorld
    raise ValueError(f"task {task.get('id')}: unknown backend {b!r}")


def make_world(task: dict[str, Any]) -> World:
    return world_class(task)(task)


def all_tools(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> OpenAI tool dict, for every function of the task's involved classes (held-out ones included)."""
    return world_class(task).tools_for(task)


def missed(task: dict[str, Any]) -> dict[int, list[str]]:
    """turn index -> names of the functions held out until that turn (miss_func)."""
    out = {}
    for k, names in (task.get("missed_function") or {}).items():
        out[int(k)] = [n["name"] if isinstance(n, dict) else n for n in names]
    return out


def tools_at_turn(task: dict[str, Any], turn: int) -> list[dict[str, Any]]:
    """The tools the model sees at `turn`: everything except functions held out until a later turn."""
    hidden = {n for t, names in missed(task).items() if t > turn for n in names}
    shown_late = [n for t, names in sorted(missed(task).items()) if t <= turn for n in names]
    tools = all_tools(task)
    base = [tl for n, tl in tools.items() if n not in hidden and n not in shown_late]
    return base + [tools[n] for n in shown_late if n in tools]
