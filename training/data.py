"""Training data: load and mix datasets, convert dialogues to TRL conversational rows, check before training.

Rows are ``{"messages": [...], "tools": "<JSON string>"}`` (TRL json.loads ``tools`` per row; a JSON string
avoids `datasets`' struct merging, which would union every schema). Tools that become available mid-dialogue
(``meta["tool_updates"]``) are shown as the official BFCL runner shows them at evaluation: the whole prompt is
rendered again with the updated tool list (initial tools, then the new ones in update order). A dialogue with
k updates therefore becomes k+1 rows, one per tool list: row j holds the messages up to the (j+1)-th update
with the tools visible there (the last row: the whole dialogue with every tool), so every prompt the evaluation
harness builds is a prefix of one training row. Earlier assistant turns are trained again in later rows.

Checks run BEFORE TRL sees the data, each failing with a message that says what to change:
every called tool is among the tools visible at that point; the assistant mask covers the assistant content
(decoded and compared on a sample); token lengths against ``max_length`` with the rows TRL would truncate and
the rows it would silently drop (no assistant token left, P7). Everything lands in ``data_report.json``.
"""
from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path
from typing import Any, Optional

from toolace_mt.envs.base import is_error_text
from toolace_mt.io import read_dataset
from toolace_mt.schema import Dialogue


class DataError(ValueError):
    """The data cannot be trained on as configured; the message says why and what to change."""


# ------------------------------------------------------------------------------------------------ mixing
def load_mixture(datasets: list[dict[str, Any]], seed: int = 0,
                 refused: Optional[list[dict[str, Any]]] = None) -> list[tuple[str, Dialogue]]:
    """(source, dialogue) pairs: `weight` = fraction of each dataset's rows (sampled with the seed; >1 repeats).

    Rows the project's dataset reader refuses (too large, too deep, a bad or duplicate id, not a dialogue) are
    left out and appended to ``refused`` with their line and reason; a dataset left with no row is a DataError."""
    rng = random.Random(seed)
    out: list[tuple[str, Dialogue]] = []
    for d in datasets:
        path = str(d["path"])
        if not (Path(path).is_file() or (Path(path) / "train.jsonl").is_file()):
            raise DataError(f"dataset {path}: neither a file nor a directory holding train.jsonl")
        got = read_dataset(path)
        if refused is not None:
            refused.extend(got.rejected)
        dialogues = got.dialogues
        if not dialogues:
            why = f"; first refused row: {got.rejected[0]['reason']}" if got.rejected else ""
            raise DataError(f"dataset {path}: no row could be read as a dialogue ({len(got.rejected)} refused{why})")
        w = float(d.get("weight", 1.0))
        whole, frac = int(w), w - int(w)
        picked = dialogues * whole
        if frac > 0:
            k = int(round(frac * len(dialogues)))
            picked += rng.sample(dialogues, k)
        name = str(d.get("name") or path)
        out += [(name, x) for x in picked]
    rng.shuffle(out)
    return out


def first_turn(d: Dialogue) -> Dialogue:
    """The dialogue cut after the assistant's answer to the first user message (single-turn tool calling)."""
    users = [i for i, m in enumerate(d.messages) if m.role == "user"]
    if len(users) < 2:
        return d
    return d.model_copy(update={"messages": d.messages[:users[1]]})


# ------------------------------------------------------------------------------------------------ rows
def _schema_order(d: Dialogue) -> dict[str, list[str]]:
    """Tool name -> its parameters in schema order, over the initial tools and every tool update."""
    tools = list(d.tools) + [t for _, ts in d.tool_updates() for t in ts]
    return {t.name: list((t.function.parameters or {}).get("properties") or {}) for t in tools}


def failed_call_messages(d: Dialogue) -> set[int]:
    """Indices of the assistant messages one of whose calls got an environment error back."""
    failed_ids = {m.tool_call_id for m in d.messages if m.role == "tool" and is_error_text(m.content)}
    return {i for i, m in enumerate(d.messages)
            if m.role == "assistant" and any(tc.id in failed_ids for tc in (m.tool_calls or []))}


def _row_messages(d: Dialogue, end: int, train_on_failed_calls: bool = True) -> list[dict[str, Any]]:
    """The first `end` messages as template input. A call's arguments are put in its tool's schema order (keys
    the schema does not name keep their place after them). chosen: JSON key order carries no meaning, but the
    generators differ in it (the rules MAS assistant writes arguments in the order the user mentioned them,
    ToolACE-MT's skeleton in schema order), and a token-level target or metric (teacher-forced exact calls on gold
    dialogues, rendered by this function too) would otherwise reward one generator's habit, not its content.
    With ``train_on_failed_calls=False`` an assistant message whose call failed gets ``"weight": 0``
    (`DataArguments.train_on_failed_calls`)."""
    order = _schema_order(d)
    msgs = [m.to_dict() for m in d.messages[:end]]
    for i in (set() if train_on_failed_calls else failed_call_messages(d)):
        if i < end:
            msgs[i]["weight"] = 0  # the chat templates leave a weight-0 message outside the assistant mask
    for m in msgs:
        if m["role"] != "tool":
            m.pop("tool_call_id", None)
            m.pop("name", None)
        for tc in m.get("tool_calls") or []:
            fn = tc["function"]
            keys = order.get(fn["name"], [])
            args = fn["arguments"]
            fn["arguments"] = {**{k: args[k] for k in keys if k in args},
                               **{k: v for k, v in args.items() if k not in keys}}
    return msgs


def dialogue_to_rows(d: Dialogue, train_on_failed_calls: bool = True) -> list[dict[str, Any]]:
    """TRL conversational rows, one per tool list the dialogue shows (see module doc): ``[{"messages", "tools",
    "id"}]``; a dialogue without tool updates is one row."""
    tools = [t.model_dump() for t in d.tools]
    ups = sorted(((at, ts) for at, ts in d.tool_updates() if 0 < at < len(d.messages)), key=lambda u: u[0])
    rows = []
    for j, (at, new) in enumerate(ups):
        rows.append({"messages": _row_messages(d, at, train_on_failed_calls), "tools": json.dumps(tools, ensure_ascii=False),
                     "id": f"{d.id}#tools{j}"})
        seen = {t["function"]["name"] for t in tools}
        tools = tools + [t.model_dump() for t in new if t.name not in seen]
    # an update after the last message (e.g. cut by turns: first) opens nothing and adds no row
    rows.append({"messages": _row_messages(d, len(d.messages), train_on_failed_calls), "tools": json.dumps(tools, ensure_ascii=False),
                 "id": d.id if not ups else f"{d.id}#tools{len(ups)}"})
    # a row whose prefix holds no trained assistant message has nothing to train on
    return [r for r in rows if any(m["role"] == "assistant" and m.get("weight", 1) for m in r["messages"])]


def dialogue_to_row(d: Dialogue) -> dict[str, Any]:
    """The last (complete) row of `dialogue_to_rows`: the whole dialogue with every tool it shows."""
    return dialogue_to_rows(d)[-1] if d.messages else {"messages": [], "tools": json.dumps(
        [t.model_dump() for t in d.tools], ensure_ascii=False), "id": d.id}


def with_domain_tools(d: Dialogue) -> Optional[Dialogue]:
    """`d` listing every tool of its domain (``meta["domain"]``) in the env's order; tools that arrive by a tool
    update stay out of the initial list. None when the domain is not a registered env (e.g. a schema pool)."""
    from toolace_mt.envs import all_envs
    from toolace_mt.schema import Tool

    cls = all_envs().get(str(d.meta.get("domain") or ""))
    if cls is None:
        return None
    late = {t.name for _, ts in d.tool_updates() for t in ts}
    tools = [Tool.model_validate(t) for t in cls.tool_schemas() if t["function"]["name"] not in late]
    return d.model_copy(update={"tools": tools})


def unknown_tool_calls(d: Dialogue) -> list[str]:
    """Calls that name a tool not visible at their message (initial tools + updates made at or before it)."""
    out = []
    for i, tc in d.tool_calls():
        if tc.name not in d.tools_at(i):
            out.append(f"message {i}: call to {tc.name!r}, not among the row's tools "
                       f"({', '.join(sorted(d.tools_at(i))) or 'none'})")
    return out


# ------------------------------------------------------------------------------------------------ prepare
def load_rows(data, seed: int = 0, assistant_only: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Mix, cut to the chosen turns, convert, and enforce the tool check (no tokenizer needed). With the loss on
    every token (``assistant_only=False``) nothing can be left out of the loss, so failed calls are trained
    whatever ``train_on_failed_calls`` says, and the report says so."""
    if not data.datasets:
        raise DataError("no dataset given (recipe key `datasets: [{path, weight}]`)")
    refused: list[dict[str, Any]] = []
    mixed = load_mixture(data.datasets, seed, refused)
    if data.max_rows is not None:
        mixed = mixed[:data.max_rows]
    report: dict[str, Any] = {"sources": {}, "rows_loaded": len(mixed)}
    if refused:  # stated, not silent: the run trains on the rest
        report["rows_refused"] = len(refused)
        report["refused_examples"] = [{"line": r["line"], "reason": r["reason"]} for r in refused[:10]]
        import sys

        print(f"warning: {len(refused)} dataset row(s) refused and left out of training; first: "
              f"{refused[0]['reason']}", file=sys.stderr)
    for src, _ in mixed:
        report["sources"][src] = report["sources"].get(src, 0) + 1

    rows, dropped_tools = [], []
    tool_list_kept = failed_not_trained = 0
    train_failed = bool(getattr(data, "train_on_failed_calls", False)) or not assistant_only
    for src, d in mixed:
        if data.turns == "first":
            d = first_turn(d)
        if getattr(data, "tool_list", "as_generated") == "domain":
            full = with_domain_tools(d)
            tool_list_kept += full is None
            d = full if full is not None else d
        bad = unknown_tool_calls(d)
        if bad:
            dropped_tools.append({"id": d.id, "source": src, "problems": bad})
            continue
        new = dialogue_to_rows(d, train_failed)
        failed_not_trained += sum(m.get("weight", 1) == 0 for m in new[-1]["messages"]) if new else 0
        rows.extend(new)
    report["tool_list"] = getattr(data, "tool_list", "as_generated")
    report["tool_list_not_expanded"] = tool_list_kept  # dialogues whose domain is no registered env
    report["dialogues_loaded"] = len(mixed)
    # assistant messages whose call failed, shown but not trained on (train_on_failed_calls: false)
    report["failed_call_messages_not_trained"] = failed_not_trained
    report["failed_calls_trained"] = train_failed
    report["rows"] = len(rows)  # one row per tool list a dialogue shows (see dialogue_to_rows)
    report["unknown_tool_rows"] = len(dropped_tools)
    report["unknown_tool_examples"] = dropped_tools[:10]
    if dropped_tools and data.on_unknown_tool == "error":
        ex = dropped_tools[0]
        raise DataError(f"{len(dropped_tools)} row(s) call a tool that is not in the row's tools, e.g. "
                        f"{ex['id']!r} ({ex['source']}): {ex['problems'][0]}. Fix the data, or set "
                        "on_unknown_tool: drop to skip such rows")

    return rows, report


def check_rows(rows: list[dict[str, Any]], report: dict[str, Any], data, tokenizer, template: str | None,
               max_length: Optional[int], out_dir: Optional[Path] = None,
               assistant_only: bool = True) -> dict[str, Any]:
    """Tokenize as TRL will, check masks and lengths, split train/eval; raise DataError if nothing is left."""
    from .template import mask_problems

    # tokenize exactly as TRL will (same template, tools, assistant mask) and predict truncation / drops
    lengths, asst_tokens, first_asst = [], [], []
    mask_bad: list[dict[str, Any]] = []
    keep: list[dict[str, Any]] = []
    truncated = dropped_len = 0
    for k, row in enumerate(rows):
        tools = json.loads(row["tools"]) or None
        enc = tokenizer.apply_chat_template(row["messages"], tools=tools, chat_template=template, tokenize=True,
                                            return_dict=True, return_assistant_tokens_mask=True)
        ids, mask = list(enc["input_ids"]), list(enc["assistant_masks"])
        if not assistant_only:  # loss on every token: nothing is masked, so nothing is dropped
            mask = [1] * len(ids)
        elif k < data.mask_check_rows:
            ps = mask_problems(tokenizer, row["messages"], tools, template, encoded=enc)
            if ps:
                mask_bad.append({"id": row["id"], "problems": ps[:5]})
        n, first = len(ids), next((i for i, m in enumerate(mask) if m), None)
        lengths.append(n)
        asst_tokens.append(sum(mask))
        first_asst.append(first if first is not None else n)
        if max_length is not None and n > max_length:
            truncated += 1
        if first is None or (max_length is not None and first >= max_length):
            dropped_len += 1
            continue
        keep.append(row)
    report["mask_check"] = {"rows_checked": min(len(rows), data.mask_check_rows) if assistant_only else 0,
                            "rows_bad": len(mask_bad),
                            "examples": mask_bad[:5]}
    if mask_bad:
        if out_dir is not None:
            _write_report(out_dir, report)
        raise DataError("the assistant mask does not cover the assistant content as expected; e.g. row "
                        f"{mask_bad[0]['id']!r}: {mask_bad[0]['problems'][0]}")
    report["tokens"] = _stats(lengths)
    report["assistant_tokens"] = _stats(asst_tokens)
    report["prompt_tokens_before_first_assistant"] = _stats(first_asst)
    report["max_length"] = max_length
    report["rows_truncated"] = truncated
    report["rows_truncated_share"] = round(truncated / max(1, len(rows)), 4)
    report["rows_dropped_by_max_length"] = dropped_len
    report["total_tokens"] = sum(lengths)
    report["total_assistant_tokens"] = sum(asst_tokens)
    report["assistant_token_share"] = round(sum(asst_tokens) / max(1, sum(lengths)), 4)

    if len(keep) < max(1, data.min_train_rows) or not keep:
        why = (f"{dropped_len} of {len(rows)} row(s) would have no assistant token within max_length={max_length} "
               f"(the prompt before the first assistant token has {min(first_asst) if first_asst else 0}-"
               f"{max(first_asst) if first_asst else 0} tokens); raise max_length to at least "
               f"{(min(first_asst) + 1) if first_asst else '?'} or shorten the prompts") if dropped_len else \
            f"only {len(keep)} usable row(s) ({len(rows)} after tool checks, {report['rows_loaded']} loaded)"
        if out_dir is not None:
            _write_report(out_dir, report)
        raise DataError(f"nothing (or too little) to train on: {why}; min_train_rows={data.min_train_rows}")

    n_eval = int(math.floor(len(keep) * data.eval_split)) if data.eval_split > 0 else 0
    eval_rows, train_rows = keep[:n_eval], keep[n_eval:]
    report["rows_train"], report["rows_eval"] = len(train_rows), len(eval_rows)
    if out_dir is not None:
        _write_report(out_dir, report)
    return {"train": train_rows, "eval": eval_rows, "report": report}


def _write_report(out_dir: Path, report: dict[str, Any]) -> None:
    from toolace_mt.runs import atomic_write_json

    atomic_write_json(Path(out_dir) / "data_report.json", report)


def _stats(xs: list[int]) -> dict[str, Any]:
    if not xs:
        return {"n": 0}
    s = sorted(xs)
    return {"n": len(s), "min": s[0], "mean": round(statistics.fmean(s), 1), "p50": s[len(s) // 2],
            "p95": s[min(len(s) - 1, int(0.95 * len(s)))], "max": s[-1]}


def to_hf(rows: list[dict[str, Any]]):
    """A `datasets.Dataset` with the columns TRL reads (messages, tools); Json keeps nested dicts intact (P2)."""
    from datasets import Dataset

    return Dataset.from_list([{"messages": r["messages"], "tools": r["tools"]} for r in rows],
                             on_mixed_types="use_json")
