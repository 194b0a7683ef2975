"""ACEBench function docs -> OpenAI tool dicts with JSON Schema parameters.

ACEBench's docs use loose type names (`dict`, `float`, `list(string)`, `objectArray`, `tuple`, `any`, ...);
a model served through a chat template wants JSON Schema. The mapping keeps every other key (description,
enum, required, items, properties) and writes the loose name into ``x-ace-type`` so a checker can still see it.
"""
from __future__ import annotations

import copy
from typing import Any

_SIMPLE = {
    "string": "string", "str": "string", "any": "string", "enum": "string",
    "integer": "integer", "int": "integer",
    "number": "number", "float": "number", "double": "number",
    "boolean": "boolean", "bool": "boolean",
    "object": "object", "dict": "object",
    "array": "array", "list": "array", "tuple": "array", "objectArray": "array",
}


def map_type(t: str) -> dict[str, Any]:
    """One ACE type name -> the JSON Schema fragment it means."""
    t = t.strip()
    if t in _SIMPLE:
        out: dict[str, Any] = {"type": _SIMPLE[t]}
        if t == "objectArray":
            out["items"] = {"type": "object"}
        return out
    if t.startswith("list(") and t.endswith(")"):
        inner = t[5:-1]
        return {"type": "array", "items": map_type("string" if inner == "enum" else inner)}
    return {"type": "string"}  # chosen: an unknown type name is treated as free text, never an error


def to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "properties" and isinstance(v, dict):
            out[k] = {p: to_json_schema(s) for p, s in v.items()}
        elif k in ("items", "additionalProperties") and isinstance(v, dict):
            out[k] = to_json_schema(v)
        elif k == "type" and isinstance(v, str):
            mapped = map_type(v)
            out["type"] = mapped["type"]
            if "items" in mapped and "items" not in node:
                out["items"] = mapped["items"]
            if mapped["type"] != v:
                out["x-ace-type"] = v
        else:
            out[k] = copy.deepcopy(v)
    return out


def to_tool(fn: dict[str, Any]) -> dict[str, Any]:
    """An ACE function doc -> ``{"type": "function", "function": {name, description, parameters}}``."""
    params = to_json_schema(fn.get("parameters") or {"type": "object", "properties": {}})
    params.setdefault("type", "object")
    params.setdefault("properties", {})
    return {"type": "function", "function": {"name": fn["name"], "description": fn.get("description", ""),
                                             "parameters": params}}
