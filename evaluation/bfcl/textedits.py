"""Text-level edits of BFCL trajectories: calls written the way prompting models write them.

A trajectory's call steps are first written as raw text (``[f(a=1), g(b='x')]``, what a pythonic prompting
model answers); each edit then rewrites some steps' text, seeded: a bare call without brackets, an unquoted
identifier value, a ```` ```python ```` or a plain ```` ``` ```` fence, a qualified ``Class.method`` name, prose
around the calls, calls split over several steps, a positional argument. The step's ``tool_calls`` are what our
own (lenient) parser reads from the new text, so the same trajectory can be decoded both ways: by the policy's
parse (``lenient``) and by the official decoder (``official``, from ``raw``).
"""
from __future__ import annotations

import copy
import random
import re
from typing import Any, Callable

from toolace_mt.pycalls import format_python_call

Turns = list[list[dict[str, Any]]]


def _reparse(step: dict[str, Any]) -> None:
    from ..policies.prompting import text_to_output

    out = text_to_output(step["raw"], "auto")
    step.update({"content": out.content, "tool_calls": out.tool_calls, "parse_errors": out.parse_errors})


def to_text(traj: dict[str, Any]) -> dict[str, Any]:
    """A copy with every call step written as pythonic text (``raw``) and ``call_format: pythonic``."""
    new = copy.deepcopy(traj)
    for turn in new["turns"]:
        for st in turn:
            if st.get("tool_calls"):
                st["raw"] = "[" + ", ".join(format_python_call(c["name"], c.get("arguments") or {})
                                            for c in st["tool_calls"]) + "]"
                _reparse(st)
            elif not st.get("raw"):
                st["raw"] = st.get("content") or ""
    new["call_format"] = "pythonic"
    return new


def _call_steps(turns: Turns) -> list[tuple[int, int]]:
    return [(t, s) for t, turn in enumerate(turns) for s, st in enumerate(turn) if st.get("tool_calls")]


def _edit_text(fn: Callable[[str, dict[str, Any], random.Random], str | None]):
    def edit(turns: Turns, rng: random.Random, ctx: dict[str, Any]) -> bool:
        sites = _call_steps(turns)
        rng.shuffle(sites)
        for t, s in sites:
            new = fn(turns[t][s]["raw"], ctx, rng)
            if new is not None and new != turns[t][s]["raw"]:
                turns[t][s]["raw"] = new
                _reparse(turns[t][s])
                return True
        return False

    edit.__name__ = fn.__name__
    return edit


@_edit_text
def bare_call(text, ctx, rng):
    return text[1:-1] if text.startswith("[") and text.endswith("]") else None


@_edit_text
def unquoted_value(text, ctx, rng):
    m = list(re.finditer(r"=(['\"])([A-Za-z_][A-Za-z0-9_]*)\1", text))
    if not m:
        return None
    x = rng.choice(m)
    return text[:x.start()] + "=" + x.group(2) + text[x.end():]


@_edit_text
def fence_python(text, ctx, rng):
    return f"```python\n{text}\n```"


@_edit_text
def fence_plain(text, ctx, rng):
    return f"```\n{text}\n```"


@_edit_text
def qualified_name(text, ctx, rng):
    owners = ctx.get("owners") or {}
    m = [x for x in re.finditer(r"(?<![\w.'\"])([A-Za-z_]\w*)\(", text) if x.group(1) in owners]
    if not m:
        return None
    x = rng.choice(m)
    return text[:x.start()] + f"{owners[x.group(1)]}.{x.group(1)}(" + text[x.end():]


@_edit_text
def prose_around(text, ctx, rng):
    return rng.choice([f"Sure, I will do that now.\n{text}", f"{text}\nThese calls complete the request.",
                       f"Calling: {text}"])


@_edit_text
def positional_arg(text, ctx, rng):
    m = list(re.finditer(r"\(([A-Za-z_]\w*)=", text))
    if not m:
        return None
    x = rng.choice(m)
    return text[:x.start()] + "(" + text[x.end():]


def split_calls(turns: Turns, rng: random.Random, ctx: dict[str, Any]) -> bool:
    """A step with several calls becomes one step per call (each its own text)."""
    sites = [(t, s) for t, s in _call_steps(turns) if len(turns[t][s]["tool_calls"]) > 1]
    if not sites:
        return False
    t, s = rng.choice(sites)
    st = turns[t][s]
    parts = []
    for c in st["tool_calls"]:
        p = copy.deepcopy(st)
        p["raw"] = format_python_call(c["name"], c.get("arguments") or {})
        _reparse(p)
        parts.append(p)
    turns[t][s:s + 1] = parts
    return True


EDITS: dict[str, Callable[[Turns, random.Random, dict[str, Any]], bool]] = {
    f.__name__: f for f in (bare_call, unquoted_value, fence_python, fence_plain, qualified_name, prose_around,
                            positional_arg, split_calls)
}


def owners_of(task: dict[str, Any]) -> dict[str, str]:
    """method name -> class name for an official task (for qualified-name edits)."""
    from . import official

    return {d["name"]: cls for cls in task.get("involved_classes", [])
            for d in official.function_docs(cls, task.get("data_version", "v4"))}


def edit(traj: dict[str, Any], rng: random.Random, ctx: dict[str, Any], kind: str | None = None,
         n_edits: int = 1) -> dict[str, Any]:
    """A text copy of `traj` with `n_edits` seeded edits (``text_edit`` names them; none applicable -> 'none')."""
    new = to_text(traj)
    done = []
    for _ in range(n_edits):
        kinds = [kind] if kind else list(EDITS)
        rng.shuffle(kinds)
        for k in kinds:
            if EDITS[k](new["turns"], rng, ctx):
                done.append(k)
                break
    new["text_edit"] = "+".join(done) or "none"
    return new
