"""Tiny offline chat model for tests: a 2-layer Qwen2 with a BPE tokenizer trained here (no download).

Built with the product builder `toolace_mt.training.tiny.build_tiny_model` and the project chat template
(Hermes/Qwen2.5 wire format), on a small synthetic corpus of tool-calling conversations. Random weights: tests
assert on mechanics (shapes, token counts, determinism, parsing), never on what the model says.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "send_money", "description": "Transfer money.",
                                      "parameters": {"type": "object",
                                                     "properties": {"to": {"type": "string"},
                                                                    "amount": {"type": "number"}},
                                                     "required": ["to", "amount"]}}},
]
CITIES = ["Oslo", "Rome", "Paris", "Lima", "Tokyo", "Cairo"]
NAMES = ["Ann", "Bob", "Chen", "Dara", "Eli"]


def corpus(n: int = 120, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        city, name, amt = rng.choice(CITIES), rng.choice(NAMES), rng.randint(1, 500)
        rows.append({"tools": TOOLS, "messages": [
            {"role": "user", "content": f"What is the weather in {city}? Then send {amt} to {name}."},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": f"c{i}", "type": "function", "function": {"name": "get_weather", "arguments": {"city": city}}}]},
            {"role": "tool", "tool_call_id": f"c{i}", "name": "get_weather", "content": json.dumps({"temp": amt % 30})},
            {"role": "assistant", "content": f"It is {amt % 30} degrees in {city}. Sending {amt} to {name} now."},
        ]})
    return rows


def build(out_dir: str | Path) -> Path:
    from toolace_mt.training.template import project_template
    from toolace_mt.training.tiny import build_tiny_model, render_corpus

    template = project_template()
    texts = render_corpus(corpus(), template)
    return build_tiny_model(texts, out_dir, chat_template=template)
