"""Echo rows: synthetic dialogues that teach a model trained from scratch to copy a value from its context.

A pretrained LLM brings in-context copying with it; a tiny model trained from random weights on a few thousand
tool-calling rows does not learn it (measured on the CPU tier: after thousands of steps it names the right tool
but writes the id it saw most often in training, not the one the user stated). Every argument of a BFCL-style
call is a verbatim copy from the user's text, so the tier's base pretraining can mix in `n` echo rows: the user
lists 3-8 values drawn from the argument values of the training rows themselves, and the assistant repeats them
in order. They are base pretraining data (shared by every arm), built from nothing but the loaded rows, with a
fixed seed; the data report counts them.
"""
from __future__ import annotations

import json
import random
from typing import Any, Iterable

MIN_VALUES, MAX_VALUES = 3, 8  # chosen: as many values as one to three calls of the tier carry


def argument_values(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The distinct scalar argument values of the rows' tool calls, as the calls render them (sorted)."""
    seen: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str):
            if v.strip():
                seen.add(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            seen.add(json.dumps(v))

    for r in rows:
        for m in r["messages"]:
            for c in m.get("tool_calls") or []:
                args = (c.get("function") or c).get("arguments")
                walk(json.loads(args) if isinstance(args, str) else args)
    return sorted(seen)


def echo_rows(rows: list[dict[str, Any]], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` echo dialogues (user: values, assistant: the same values) in the training rows' format."""
    values = argument_values(rows)
    if n <= 0 or len(values) < MIN_VALUES:
        return []
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        pick = rng.sample(values, rng.randint(MIN_VALUES, min(MAX_VALUES, len(values))))
        text = " ".join(pick)
        out.append({"id": f"echo-{len(out)}", "messages": [{"role": "user", "content": f"Repeat: {text}"},
                                 {"role": "assistant", "content": text}], "tools": "[]"})
    return out
