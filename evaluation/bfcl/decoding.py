"""How a model's text becomes BFCL calls: the official prompting decoder, our port of it, and ``lenient``.

Modes (suite option ``decoding``; reports record it):

* ``official`` (default on ``source: official``): a step written as text by a prompting-style policy
  (``tool_call_format: pythonic``, or replayed result files) is decoded as BFCL's evaluation decodes it --
  `bfcl_eval.model_handler.utils.default_decode_execute_prompting` when `bfcl-eval` is importable, else
  `own_decode_execute`, a port with the same semantics (tested against the official one). Structured tool calls
  (FC-style policies, the oracle) are written as ``f(k=repr(v))`` strings, as BFCL's FC handlers do.
* ``lenient`` (default on our own task sets): the calls the policy itself parsed (`toolace_mt.llm.toolparse`:
  any format, fences and prose tolerated).

The official decoder's semantics, as ported here: the text is stripped of backticks, newlines and spaces at both
ends (so a fence with a language tag, e.g. `````python``, fails), wrapped in ``[...]`` when it does not start /
end with a bracket (so a bare call decodes), stripped of wrapping single quotes and parsed as one Python
expression (any prose fails the whole step); only keyword arguments are kept (positional ones are dropped); a
bare name as a value is its name as a string (``dir_name=Projects`` -> ``'Projects'``); a qualified name is kept
as written (``Class.method``: the official executor then fails it with ``name 'Class' is not defined``); a step
that fails to decode, or decodes to no call, is dropped (in play it ends the turn). Arithmetic values are
computed (only on literals here; the official decoder `eval`s them), a call without keywords as a value becomes
its source text, a subscript its source text; an empty dict value fails the step (the official
``parse_nested_value`` indexes its first key).
"""
from __future__ import annotations

import ast
import operator
from functools import lru_cache
from typing import Any, Callable, Optional

from toolace_mt.pycalls import PyCallError, parse_python_calls

MODES = ("official", "lenient")
IMPLS = ("auto", "bfcl-eval", "own")


@lru_cache(maxsize=1)
def _bfcl_decoder() -> Optional[Callable[[str], list[str]]]:
    from . import official

    if not official.available():
        return None
    official.ensure_project_root()
    try:
        from bfcl_eval.model_handler.utils import default_decode_execute_prompting
    except ImportError:  # its parser dependencies (tree-sitter, tenacity) are missing: the port is used
        return None
    return default_decode_execute_prompting


@lru_cache(maxsize=1)
def bfcl_fc_converter() -> Optional[Callable[[Any], list[str]]]:
    """bfcl-eval's FC decoder (`convert_to_function_call`) when importable, else None (the port in
    `policies.replay.fc_decode_execute` is used)."""
    from . import official

    if not official.available():
        return None
    official.ensure_project_root()
    try:
        from bfcl_eval.model_handler.utils import convert_to_function_call
    except ImportError:
        return None
    return convert_to_function_call


def official_decoder_available() -> bool:
    return _bfcl_decoder() is not None


def bfcl_decode_execute(text: str) -> list[str]:
    fn = _bfcl_decoder()
    if fn is None:
        raise RuntimeError("bfcl-eval's decoder is not importable (pip install the `bfcl` extra)")
    return fn(text)


# ---------------------------------------------------------------------------------------------- the port
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}


def _arith(node: ast.expr) -> Any:
    """A BinOp value on literals (the official decoder evals its source; we never eval)."""
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_arith(node.left), _arith(node.right))
    return ast.literal_eval(node)


def _value(v: ast.expr) -> Any:
    if isinstance(v, ast.Constant):
        return "..." if v.value is Ellipsis else v.value
    if isinstance(v, ast.UnaryOp):
        return -v.operand.value  # as the official decoder: any unary op negates a constant operand
    if isinstance(v, ast.List):
        return [_value(x) for x in v.elts]
    if isinstance(v, ast.Dict):
        return {_value(k): _value(x) for k, x in zip(v.keys, v.values)}
    if isinstance(v, ast.BinOp):
        return _arith(v)
    if isinstance(v, ast.Name):
        return v.id
    if isinstance(v, ast.Call):
        return ast.unparse(v) if not v.keywords else _call(v)
    if isinstance(v, ast.Tuple):
        return tuple(_value(x) for x in v.elts)
    if isinstance(v, ast.Subscript):
        return ast.unparse(v.value) + "[" + ast.unparse(v.slice) + "]"
    raise ValueError(f"Unsupported AST type: {type(v)}")


def _call(elem: ast.Call) -> dict[str, dict[str, Any]]:
    parts, f = [], elem.func
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return {".".join(reversed(parts)): {kw.arg: _value(kw.value) for kw in elem.keywords}}


def _nested(value: Any) -> str:
    if isinstance(value, dict):
        if all(isinstance(v, dict) for v in value.values()):
            name = list(value.keys())[0]  # IndexError on {}, as the official code
            return f"{name}(" + ", ".join(f"{k}={_nested(v)}" for k, v in value[name].items()) + ")"
        return "{" + ", ".join(f"'{k}': {_nested(v)}" for k, v in value.items()) + "}"
    return repr(value)


def own_decode_execute(text: str) -> list[str]:
    """Our port of the official prompting decoder: text -> call strings; raises where it raises."""
    text = text.strip("`\n ")
    if not text.startswith("["):
        text = "[" + text
    if not text.endswith("]"):
        text = text + "]"
    body = ast.parse(text.strip().strip("'"), mode="eval").body
    if isinstance(body, ast.Call):
        calls = [body]
    else:
        calls = list(body.elts)  # AttributeError on a non-sequence, as the official code
        for c in calls:
            if not isinstance(c, ast.Call):
                raise ValueError("list element is not a call")
    out = []
    for c in calls:
        for name, args in _call(c).items():
            out.append(f"{name}(" + ", ".join(f"{k}={_nested(v)}" for k, v in args.items()) + ")")
    return out


# ------------------------------------------------------------------------------------------------ use
def decode_execute(text: str, impl: str = "auto") -> list[str]:
    """Call strings of one step (raises when the step does not decode). impl: auto | bfcl-eval | own."""
    if impl == "bfcl-eval" or (impl == "auto" and official_decoder_available()):
        return bfcl_decode_execute(text)
    return own_decode_execute(text)


def decoder_name(impl: str = "auto") -> str:
    if impl == "bfcl-eval" or (impl == "auto" and official_decoder_available()):
        from . import official

        return f"bfcl-eval {official.version()} default_decode_execute_prompting"
    return "toolace-mt port of BFCL's default_decode_execute_prompting"


def string_to_call(s: str) -> dict[str, Any]:
    """A decoded call string -> our executor's call dict. A value that is not a literal (a nested call) cannot
    be run without eval: the call is kept with an ``_error`` the executor reports as its result."""
    try:
        calls = parse_python_calls(s)
        if len(calls) == 1:
            return calls[0]
    except PyCallError:
        pass
    return {"name": s.split("(", 1)[0], "arguments": {}, "_error": f"argument of {s[:80]!r} is not a literal"}


def decode_text(text: str, impl: str = "auto") -> list[dict[str, Any]]:
    """The calls of one text step as the official runner sees them: [] when it does not decode or is empty."""
    try:
        strs = decode_execute(text, impl)
    except Exception:  # noqa: BLE001 - the official runner drops a step on any decoding error
        return []
    if not strs or (len(strs) == 1 and not strs[0]):
        return []
    return [string_to_call(s) for s in strs]


def step_calls(step: dict[str, Any], mode: str, call_format: str, impl: str = "auto") -> list[dict[str, Any]]:
    """The calls of one saved step under a decoding mode. Official mode decodes the raw text of pythonic
    (prompting-style) steps; structured calls are taken as they are (the FC path)."""
    if step.get("call_format") == "fc":  # a replayed FC step: decoded once, as BFCL's FC decoder does
        return list(step.get("tool_calls") or [])
    if mode == "official" and call_format == "pythonic":
        text = step.get("raw") or step.get("content") or ""
        return decode_text(text, impl) if isinstance(text, str) and text.strip() else []
    return list(step.get("tool_calls") or [])
