"""Reading and writing dialogues: JSONL, Hugging Face `datasets` (what TRL's SFTTrainer reads), importers.

Dataset rows are ``{"id", "messages", "tools", "meta"}``. ``tools`` and ``meta`` are stored as JSON strings
and ``messages`` as a list of Json values: `datasets`' default struct merging would otherwise union every
tool schema and argument dict into one struct and fill the gaps with nulls; TRL's SFTTrainer
accepts ``tools`` as a JSON string (it json.loads it per row).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

from .runs import dumps_strict  # NaN/Infinity refused, lone surrogates escaped: every row stays valid JSON
from .schema import Dialogue, Message, Tool, ToolCall


class DataFileError(ValueError):
    """A data file that cannot be read as dialogues: names the file, the line and what is wrong."""


# ------------------------------------------------------------------------------------------------ JSONL
def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise DataFileError(f"{path}: cannot read: {e.strerror or e}") from None
    with f:
        n = 0
        try:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as e:
                        raise DataFileError(f"{path}:{n}: not valid JSON: {e.msg}") from e
        except UnicodeDecodeError as e:
            raise DataFileError(f"{path}:{n + 1}: not UTF-8 text ({e.reason})") from None


def read_dialogues(path: str | Path) -> list[Dialogue]:
    """Dialogues from a JSONL file (our format, a dataset row with JSON-string columns, or ShareGPT)."""
    out = []
    for n, row in enumerate(iter_jsonl(path), 1):
        try:
            out.append(row_to_dialogue(row))
        except Exception as e:
            raise DataFileError(f"{path}:{n}: not a dialogue: {e}") from e
    return out


def write_dialogues(path: str | Path, dialogues: Iterable[Dialogue]) -> int:
    from .runs import atomic_write_jsonl

    rows = [d.to_dict() for d in dialogues]
    atomic_write_jsonl(path, rows)
    return len(rows)


# ------------------------------------------------------------------------------------------------ rows
def dialogue_to_row(d: Dialogue) -> dict[str, Any]:
    """A dataset row: messages as HF-format dicts (arguments as dicts), tools/meta as JSON strings."""
    return {"id": d.id, "messages": [m.to_dict() for m in d.messages],
            "tools": dumps_strict([t.model_dump() for t in d.tools]),
            "meta": dumps_strict(d.meta)}


def row_to_dialogue(row: dict[str, Any]) -> Dialogue:
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    if "conversations" in row and "messages" not in row:
        return from_sharegpt(row)
    if "messages" not in row:  # a foreign row must not become an empty dialogue
        raise ValueError(f"no 'messages' (nor ShareGPT 'conversations'); keys: {sorted(row)[:8]}")
    row = dict(row)
    for key in ("tools", "meta"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key]) if row[key] else ([] if key == "tools" else {})
    if isinstance(row.get("messages"), str):
        row["messages"] = json.loads(row["messages"])
    row.setdefault("id", "row")
    row["id"] = str(row["id"])
    return Dialogue.model_validate(row)


def to_hf_dataset(dialogues: Iterable[Dialogue]):
    """A `datasets.Dataset` with columns id, messages, tools, meta (TRL-ready)."""
    from datasets import Dataset

    rows = [dialogue_to_row(d) for d in dialogues]
    # use_json keeps heterogeneous nested dicts (tool-call arguments) as they are (no struct merging).
    return Dataset.from_list(rows, on_mixed_types="use_json")


def from_hf_dataset(ds) -> list[Dialogue]:
    return [row_to_dialogue(dict(r)) for r in ds]


def save_dataset(dialogues: list[Dialogue], out_dir: str | Path) -> dict[str, str]:
    """Write `train.jsonl` and `train.parquet` (both readable by `datasets.load_dataset`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from .runs import atomic_write_jsonl

    rows = [dialogue_to_row(d) for d in dialogues]
    atomic_write_jsonl(out_dir / "train.jsonl", rows)
    paths = {"jsonl": str(out_dir / "train.jsonl")}
    try:
        ds = to_hf_dataset(dialogues)
        ds.to_parquet(str(out_dir / "train.parquet"))
        paths["parquet"] = str(out_dir / "train.parquet")
    except Exception as e:  # parquet is a convenience; JSONL is the source of truth
        paths["parquet_error"] = f"{type(e).__name__}: {e}"
    return paths


def load_dataset_dialogues(path: str | Path, allow_empty: bool = False) -> list[Dialogue]:
    """Dialogues from a JSONL/Parquet file or a directory holding train.jsonl. A dataset without a single
    dialogue is a `DataFileError` unless ``allow_empty`` (training or verifying nothing is a mistake)."""
    p = Path(path)
    if p.is_dir():
        p = p / "train.jsonl"
    if p.suffix == ".parquet":
        from datasets import Dataset

        try:
            out = from_hf_dataset(Dataset.from_parquet(str(p)))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataFileError(f"{p}: not a dialogue dataset: {type(e).__name__}: {e}") from None
    else:
        out = read_dialogues(p)
    if not out and not allow_empty:
        raise DataFileError(f"{p}: holds no dialogues")
    return out


# ------------------------------------------------------------------------------------------------ ShareGPT
_PY_CALL = re.compile(r"^\s*\[(.*)\]\s*$", re.S)


def _parse_sharegpt_calls(text: str) -> list[dict[str, Any]] | None:
    """Assistant calls in ToolACE ShareGPT data: pythonic `[f(a=1), g(b='x')]` or a JSON list of calls."""
    t = text.strip()
    try:
        v = json.loads(t)
        if isinstance(v, dict):
            v = [v]
        if isinstance(v, list) and v and all(isinstance(c, dict) and "name" in c for c in v):
            return [{"name": c["name"], "arguments": c.get("arguments", c.get("parameters", {})) or {}} for c in v]
    except json.JSONDecodeError:
        pass
    if _PY_CALL.match(t):
        from .pycalls import parse_python_calls

        calls = parse_python_calls(t)
        return calls or None
    return None


def from_sharegpt(row: dict[str, Any], id_: str | None = None) -> Dialogue:
    """Import a ShareGPT / ToolACE row: ``{"system", "conversations": [{"from", "value"}], "tools"?}``.

    Roles: human/user -> user; gpt/assistant -> assistant (pythonic or JSON calls become tool_calls);
    tool/function/observation -> tool messages answering the previous calls in order. Tools come from a
    ``tools`` field (JSON list) or, as in ToolACE, from a JSON list embedded in the system prompt.
    """
    tools_raw = row.get("tools")
    if isinstance(tools_raw, str):
        tools_raw = json.loads(tools_raw) if tools_raw.strip() else []
    system = row.get("system") or ""
    if not tools_raw and system:
        m = re.search(r"(\[\s*\{.*\}\s*\])", system, re.S)
        if m:
            try:
                tools_raw = json.loads(m.group(1))
            except json.JSONDecodeError:
                tools_raw = []
    tools = []
    for t in tools_raw or []:
        if "function" not in t:
            t = {"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                                  "parameters": _bfcl_params_to_jsonschema(t.get("parameters", {}))}}
        tools.append(Tool.model_validate(t))
    messages: list[Message] = []
    if system:
        messages.append(Message(role="system", content=system))
    pending: list[ToolCall] = []
    n_call = 0
    for turn in row["conversations"]:
        who = (turn.get("from") or turn.get("role") or "").lower()
        val = turn.get("value", turn.get("content", ""))
        if who in ("human", "user"):
            messages.append(Message(role="user", content=val))
        elif who in ("gpt", "assistant"):
            calls = _parse_sharegpt_calls(val)
            if calls:
                tcs = []
                for c in calls:
                    n_call += 1
                    tcs.append(ToolCall(id=f"call_{n_call}", function={"name": c["name"], "arguments": c["arguments"]}))
                messages.append(Message(role="assistant", content=None, tool_calls=tcs))
                pending = list(tcs)
            else:
                messages.append(Message(role="assistant", content=val))
        elif who in ("tool", "function", "observation"):
            outputs = [val]
            try:
                parsed = json.loads(val)
                if isinstance(parsed, list) and len(parsed) == len(pending) and len(pending) > 1:
                    outputs = [dumps_strict(x) for x in parsed]
            except (json.JSONDecodeError, TypeError):
                pass
            for out in outputs:
                if not pending:
                    raise ValueError("tool output with no pending call")
                tc = pending.pop(0)
                messages.append(Message(role="tool", content=out, tool_call_id=tc.id, name=tc.name))
        else:
            raise ValueError(f"unknown ShareGPT role {who!r}")
    return Dialogue(id=str(id_ or row.get("id", "sharegpt")), tools=tools, messages=messages,
                    meta={"source": "sharegpt"})


def _bfcl_params_to_jsonschema(p: dict[str, Any]) -> dict[str, Any]:
    """BFCL/ToolACE docs use type 'dict' and 'float'; map them onto JSON Schema."""
    mapping = {"dict": "object", "float": "number", "tuple": "array", "any": None, "list": "array", "bool": "boolean",
               "int": "integer", "str": "string"}

    def fix(s: Any) -> Any:
        if isinstance(s, dict):
            out = {}
            for k, v in s.items():
                if k == "type" and isinstance(v, str) and v in mapping:
                    if mapping[v] is not None:
                        out[k] = mapping[v]
                    continue
                out[k] = fix(v) if k not in ("enum", "default", "required") else v
            if "properties" in out:
                out["properties"] = {k: fix(v) for k, v in out["properties"].items()}
            return out
        if isinstance(s, list):
            return [fix(x) for x in s]
        return s

    out = fix(p or {})
    out.setdefault("type", "object")
    return out
