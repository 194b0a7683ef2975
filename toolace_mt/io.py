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
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional

from .runs import dumps_strict  # NaN/Infinity refused, lone surrogates escaped: every row stays valid JSON
from .schema import Dialogue, Message, Tool, ToolCall


class DataFileError(ValueError):
    """A data file that cannot be read as dialogues: names the file, the line and what is wrong."""


# ------------------------------------------------------------------------------------------------ JSONL
# chosen: limits every command's reader applies to every JSON line (dataset rows, result files), so that no
# input can exhaust the stack or the memory of a later step. Our rows nest about 8 levels (row > messages >
# tool_calls > function > arguments > a value); 64 leaves room for real tool arguments. A 128k-token context
# holds about 0.5 MB of text, so a row 8x that can be neither trained nor judged whole.
MAX_NESTING = 64
MAX_ROW_BYTES = 4 << 20


def nesting_depth(obj: Any) -> int:
    """Depth of nested lists/dicts, computed without recursion (a hostile value cannot overflow the stack)."""
    depth, stack = 0, [(obj, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            depth = max(depth, d)
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return depth


def _no_constant(name: str):
    raise ValueError(f"holds {name}, which is not a JSON number")


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, Any, Optional[str]]]:
    """``(line number, value, None)`` or ``(line number, None, reason)`` for each non-blank line of a JSONL file.

    A line over MAX_ROW_BYTES is skipped without being held in memory whole; a line that is not UTF-8, not JSON,
    or nested deeper than MAX_NESTING is a reason, not an exception, so one bad line never hides the others.
    Raises `DataFileError` only when the file itself cannot be read."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DataFileError(f"{path}: cannot read: {e.strerror or e}") from None
    with f:
        n = 0
        while True:
            line = f.readline(MAX_ROW_BYTES + 1)
            if not line:
                return
            n += 1
            if len(line) > MAX_ROW_BYTES and not line.endswith(b"\n"):
                size = len(line)
                while line and not line.endswith(b"\n"):  # skip the rest of the line in bounded chunks
                    line = f.readline(1 << 20)
                    size += len(line)
                yield n, None, f"a line of {size:,} bytes, over the {MAX_ROW_BYTES:,}-byte limit per row"
                continue
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                yield n, None, f"not UTF-8 text ({e.reason} at byte {e.start})"
                continue
            try:
                value = json.loads(text, parse_constant=_no_constant)
            except json.JSONDecodeError as e:
                yield n, None, f"not valid JSON: {e.msg} (column {e.colno})"
                continue
            except ValueError as e:  # NaN / Infinity: Python reads them, JSON has no such numbers
                yield n, None, str(e)
                continue
            except RecursionError:
                yield n, None, f"nested deeper than {MAX_NESTING} levels"
                continue
            if nesting_depth(value) > MAX_NESTING:
                yield n, None, f"nested deeper than {MAX_NESTING} levels"
                continue
            yield n, value, None


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every value of a JSONL file; the first bad line is a `DataFileError` naming the file and line."""
    for n, value, why in iter_json_lines(path):
        if why is not None:
            raise DataFileError(f"{path}:{n}: {why}")
        yield value


@dataclass
class DatasetRead:
    """What one read of a dataset file gave: the dialogues, the rows refused (line, reason, start of the raw
    record) and notes about what the reader did (e.g. rows numbered by line for want of an id)."""
    dialogues: list[Dialogue] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _row_id(row: dict[str, Any], where: str) -> tuple[Optional[str], Optional[str]]:
    """(id, None) or (None, reason). Strings are ids; integers are written in decimal (lossless); anything else
    (a list, an object, a boolean, a float) is refused rather than turned into a string."""
    v = row.get("id")
    if v is None:
        return None, None
    if isinstance(v, str):
        return (v, None) if v.strip() else (None, "an empty id")
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v), None
    return None, f"id must be a string or an integer, got {type(v).__name__} {str(v)[:40]!r}"


def read_dataset(path: str | Path) -> DatasetRead:
    """The one dataset reader of every command (verify, train, generate's inputs, the app): a JSONL file in our
    format, a dataset row with JSON-string columns, ShareGPT, or Parquet; a directory means its train.jsonl.

    Each row is read on its own: too large, too deep, not JSON, not a dialogue, a bad or duplicate id are refused
    with their line and reason, and the rest is read. Rows without an id are named ``line-N`` by their line
    number (stated in ``notes``)."""
    p = Path(path)
    if p.is_dir():
        p = p / "train.jsonl"
    out = DatasetRead()
    if p.suffix == ".parquet":
        records = _parquet_records(p)
    else:
        records = iter_json_lines(p)
    seen: dict[str, int] = {}
    unnamed = 0
    for n, raw, why in records:
        if why is None and not isinstance(raw, dict):
            why = f"expected a JSON object, got {type(raw).__name__}"
        if why is None:
            rid, why = _row_id(raw, f"{p}:{n}")
            if why is None and rid is None:
                rid, unnamed = f"line-{n}", unnamed + 1
            if why is None and rid in seen:
                why = f"duplicate id {rid!r} (first at line {seen[rid]})"
        if why is None:
            try:
                d = row_to_dialogue({**raw, "id": rid})
            except (ValueError, TypeError, KeyError, RecursionError) as e:  # pydantic's ValidationError is a ValueError
                why = "not a dialogue: " + " ".join(str(e).split())[:300]
            else:
                seen[rid] = n
                out.dialogues.append(d)
                continue
        out.rejected.append({"line": n, "reason": f"{p}:{n}: {why}",
                             "raw": (json.dumps(raw, ensure_ascii=False, default=str)[:500] if raw is not None else "")})
    if unnamed:
        out.notes.append(f"{unnamed} row(s) without an id were named line-N by their line number")
    return out


def _parquet_records(p: Path) -> Iterator[tuple[int, Any, Optional[str]]]:
    from datasets import Dataset

    try:
        ds = Dataset.from_parquet(str(p))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataFileError(f"{p}: not a dialogue dataset: {type(e).__name__}: {e}") from None
    for n, r in enumerate(ds, 1):
        r = dict(r)
        if nesting_depth(r) > MAX_NESTING:
            yield n, None, f"nested deeper than {MAX_NESTING} levels"
        else:
            yield n, r, None


def read_dialogues(path: str | Path) -> list[Dialogue]:
    """Dialogues from a JSONL file (our format, a dataset row with JSON-string columns, or ShareGPT); strict:
    the first refused row is a `DataFileError`."""
    got = read_dataset(path)
    if got.rejected:
        raise DataFileError(got.rejected[0]["reason"])
    return got.dialogues


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
    for key in ("tools", "meta", "messages"):  # JSON-string columns (dataset rows): the same depth bound
        if isinstance(row.get(key), str) and (key != "messages" or row[key]):
            row[key] = json.loads(row[key]) if row[key] else ([] if key == "tools" else {})
            if nesting_depth(row[key]) > MAX_NESTING:
                raise ValueError(f"column {key!r} nested deeper than {MAX_NESTING} levels")
    if row.get("id") is None:
        raise ValueError("no 'id'")
    if not isinstance(row["id"], str):
        raise ValueError(f"id must be a string, got {type(row['id']).__name__}")
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
    """Dialogues from a JSONL/Parquet file or a directory holding train.jsonl, strictly: a refused row is a
    `DataFileError` (use `read_dataset` to read the rest). A dataset without a single dialogue is a
    `DataFileError` unless ``allow_empty`` (training or verifying nothing is a mistake)."""
    p = Path(path)
    out = read_dialogues(p)
    if not out and not allow_empty:
        raise DataFileError(f"{p / 'train.jsonl' if p.is_dir() else p}: holds no dialogues")
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
