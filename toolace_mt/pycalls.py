"""Pythonic tool calls (`[f(a=1, b='x'), g()]`), parsed and written without evaluating anything.

Parsing uses `ast.parse` and accepts only literals (`ast.literal_eval` on each argument node), so model output
can never run code. Used by the ShareGPT importer, the BFCL-style harness and its parsers.
"""
from __future__ import annotations

import ast
import math
from typing import Any


class PyCallError(ValueError):
    pass


def _call_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_call_name(node.value)}.{node.attr}"
    raise PyCallError(f"not a function name: {ast.dump(node)[:60]}")


def _check_finite(name: str, value: Any) -> None:
    """Refuse values JSON cannot hold: 1e999 (inf), nan-producing literals, complex numbers."""
    if isinstance(value, complex) or (isinstance(value, float) and not math.isfinite(value)):
        raise PyCallError(f"argument {name!r} is not a finite number")
    if isinstance(value, dict):
        for v in value.values():
            _check_finite(name, v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            _check_finite(name, v)


def parse_python_calls(text: str, keep_positional: bool = False) -> list[dict[str, Any]]:
    """`[f(a=1), g(b=[1,2])]` -> [{"name": "f", "arguments": {"a": 1}}, ...]. Raises PyCallError.

    Positional arguments are dropped unless `keep_positional`, in which case they are kept under
    ``"_args"`` (BFCL's decoder drops them too).
    """
    t = text.strip()
    if not t:
        raise PyCallError("empty text")
    if not t.startswith("["):
        t = f"[{t}]"
    try:
        tree = ast.parse(t, mode="eval")
    except SyntaxError as e:
        raise PyCallError(f"not a python call list: {e.msg}") from e
    body = tree.body
    if not isinstance(body, (ast.List, ast.Tuple)):
        raise PyCallError("expected a list of calls")
    calls = []
    for el in body.elts:
        if not isinstance(el, ast.Call):
            raise PyCallError("list element is not a call")
        args: dict[str, Any] = {}
        for kw in el.keywords:
            if kw.arg is None:
                raise PyCallError("**kwargs are not allowed")
            if kw.arg in args:  # `f(a=1, a=2)`: ambiguous, never resolved to either value
                raise PyCallError(f"argument {kw.arg!r} is given twice")
            try:
                args[kw.arg] = ast.literal_eval(kw.value)
            except (ValueError, SyntaxError, TypeError) as e:
                raise PyCallError(f"argument {kw.arg!r} is not a literal") from e
            _check_finite(kw.arg, args[kw.arg])
        if el.args and keep_positional:
            try:
                args["_args"] = [ast.literal_eval(a) for a in el.args]
            except (ValueError, SyntaxError, TypeError) as e:
                raise PyCallError("positional argument is not a literal") from e
        calls.append({"name": _call_name(el.func), "arguments": args})
    return calls


def format_python_call(name: str, arguments: dict[str, Any]) -> str:
    """`f(a=1, b='x')` with Python literal syntax (repr), keyword arguments in the given order."""
    return f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in arguments.items()) + ")"


def format_python_calls(calls: list[dict[str, Any]]) -> str:
    return "[" + ", ".join(format_python_call(c["name"], c.get("arguments") or {}) for c in calls) + "]"
