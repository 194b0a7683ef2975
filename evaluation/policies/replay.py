"""``replay``: play outputs a model produced elsewhere through the same harness, scoring and reports.

Recipe: ``policy: {kind: replay, path: ..., format: bfcl_result | ace_result | trajectories}``.

* ``bfcl_result``: BFCL's result files (``BFCL_v3_<category>_result.json`` or ``BFCL_v4_...``; one JSON line
  per entry: ``id`` and ``result`` = per turn, a list of steps). A step is the model's text (prompting models;
  decoded by the suite's decoding mode) or a list of ``{name: arguments}`` (FC models; written as the pythonic
  call list BFCL's FC decoder produces). ``path``: the folder that holds the files, or one file.
* ``ace_result``: ACEBench's result files (``data_<category>_result.json``; ``id``, ``result`` = the answer text).
* ``trajectories``: JSON lines with ``task_id`` (or ``id``) and either our trajectory fields (``turns`` for
  BFCL; ``content``/``tool_calls``/``raw`` for ACE) or OpenAI-format ``messages`` (assistant messages with
  ``tool_calls``; for BFCL a user message starts a turn). ``path``: a file, or a run folder's
  ``trajectories.jsonl``.

The run is labelled by the source model's name: ``name``, else ``model``, else the folder that holds the files
(BFCL and ACEBench both write ``<model>/...``). The harness asks for one step at a time; the policy finds the
step from the conversation so far (turn = assistant answers without calls, step = calls since). When the
recorded entry has no more steps for the harness's question, the entry ends there (``stop``): for BFCL this is
the official runner's force termination (fewer turns than the ground truth).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ...config import RecipeError
from ...runs import read_jsonl  # a bad line is an error naming file:line (exit 2)
from ..policy import PolicyInput, PolicyOutput
from . import PolicyConfig, register_policy
from .prompting import decoded_arguments

FORMATS = ("bfcl_result", "ace_result", "trajectories")
_BFCL_FILE = re.compile(r"^BFCL_v\d+_(.+)_result\.json$")
_BFCL_GROUPS = {"multi_turn", "non_live", "live", "agentic", "memory", "web_search", "format_sensitivity"}
_ACE_FILE = re.compile(r"^data_(.+)_result\.json$")


def result_files(path: Path, fmt: str) -> list[Path]:
    pat = _BFCL_FILE if fmt == "bfcl_result" else _ACE_FILE
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*.json") if pat.match(p.name))
    if not files:
        raise RecipeError(f"policy.path: no {fmt} files ({pat.pattern}) under {path}")
    return files


def source_model(path: str, fmt: str) -> str:
    """The model name a result folder carries (the folder holding the result files)."""
    p = Path(path)
    if fmt == "trajectories":
        return p.parent.name if p.is_file() else p.name
    files = result_files(p, fmt) if p.exists() else []
    # newer BFCL releases write <model>/<group>/BFCL_v4_...: the group folder is not the model
    parents = {(f.parent.parent if f.parent.name in _BFCL_GROUPS else f.parent).name for f in files}
    return parents.pop() if len(parents) == 1 else p.name


def _fc_step_text(step: list) -> str:
    """An FC model's step (list of {name: arguments-json-or-dict}) as pythonic text."""
    from toolace_mt.pycalls import format_python_calls

    calls = []
    for c in step:
        if not isinstance(c, dict) or len(c) != 1:
            return json.dumps(step)
        (name, args), = c.items()
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                return json.dumps(step)
        calls.append({"name": name, "arguments": args if isinstance(args, dict) else {}})
    return format_python_calls(calls)


def _text_output(text: str) -> PolicyOutput:
    from .prompting import text_to_output

    return text_to_output(text, "auto")


def _openai_calls(msg: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for c in msg.get("tool_calls") or []:
        fn = c.get("function", c)
        args = decoded_arguments(fn)
        out.append({"name": fn.get("name", ""), "arguments": args if isinstance(args, dict) else {}})
    return out


def _openai_to_turns(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    turns: list[list[dict[str, Any]]] = []
    for m in messages:
        if m.get("role") == "user":
            turns.append([])
        elif m.get("role") == "assistant" and turns:
            turns[-1].append({"content": m.get("content"), "tool_calls": _openai_calls(m), "raw": ""})
    return turns


@register_policy("replay")
class ReplayPolicy:
    @staticmethod
    def check_config(cfg: PolicyConfig) -> None:
        if cfg.format not in FORMATS or not cfg.path:
            raise ValueError(f"kind replay needs path and format ({' | '.join(FORMATS)})")
        if not cfg.model:  # the source model's name, from the folder that holds its result files
            cfg.model = source_model(cfg.path, cfg.format)

    def __init__(self, cfg: PolicyConfig):
        self.cfg = cfg
        self.name = cfg.label
        self.format = cfg.format
        path = Path(cfg.path)
        self.steps: dict[str, list[list[Any]]] = {}  # BFCL-style: id -> turns -> steps
        self.answers: dict[str, Any] = {}  # single answers (ACE normal/special)
        if cfg.format == "bfcl_result":
            for f in result_files(path, cfg.format):
                for r in read_jsonl(f):
                    res = r.get("result")
                    if isinstance(res, list):
                        self.steps[str(r["id"])] = [t if isinstance(t, list) else [t] for t in res]
                    else:  # an inference error recorded instead of turns: the official checker fails it
                        self.steps[str(r["id"])] = []
        elif cfg.format == "ace_result":
            for f in result_files(path, cfg.format):
                for r in read_jsonl(f):
                    self.answers[str(r["id"])] = r.get("result")
        else:
            p = path / "trajectories.jsonl" if path.is_dir() else path
            if not p.is_file():
                raise RecipeError(f"policy.path: {p} is not a trajectories file")
            for r in read_jsonl(p):
                tid = str(r.get("task_id", r.get("id")))
                if r.get("trial", 0) != 0:
                    continue
                if "turns" in r:
                    self.steps[tid] = r["turns"]
                elif "messages" in r:
                    self.steps[tid] = _openai_to_turns(r["messages"])
                    last = next((m for m in reversed(r["messages"]) if m.get("role") == "assistant"), None)
                    if last is not None:
                        self.answers[tid] = {"content": last.get("content"), "tool_calls": _openai_calls(last),
                                             "raw": ""}
                else:
                    self.answers[tid] = {k: r.get(k) for k in ("content", "tool_calls", "raw")}

    def act(self, batch: list[PolicyInput]) -> list[PolicyOutput]:
        return [self._one(inp) for inp in batch]

    def _one(self, inp: PolicyInput) -> PolicyOutput:
        tid = inp.task_id
        if tid in self.answers and tid not in self.steps:
            return self._answer(self.answers[tid])
        if tid not in self.steps:
            return PolicyOutput(content="", parse_errors=[f"replay: no recorded output for {tid}"], stop=True)
        turn, step = _position(inp.messages)
        turns = self.steps[tid]
        if turn >= len(turns) or step >= len(turns[turn]):
            return PolicyOutput(content="", parse_errors=[f"replay: no recorded step {step} of turn {turn}"],
                                stop=True)
        return self._answer(turns[turn][step])

    @staticmethod
    def _answer(item: Any) -> PolicyOutput:
        if isinstance(item, str):
            return _text_output(item)
        if isinstance(item, list):  # an FC step of a BFCL result file
            return _text_output(_fc_step_text(item))
        if isinstance(item, dict):
            calls = [{"name": c.get("function", c).get("name"), "arguments": c.get("function", c).get("arguments")}
                     for c in item.get("tool_calls") or []]
            calls = [{"name": c["name"], "arguments": json.loads(c["arguments"]) if isinstance(c["arguments"], str)
                      else (c["arguments"] or {})} for c in calls]
            return PolicyOutput(content=item.get("content"), tool_calls=calls, raw=item.get("raw") or "")
        return _text_output("" if item is None else str(item))


def _position(messages: list[dict[str, Any]]) -> tuple[int, int]:
    """(turn, step) of the next answer in a BFCL-harness conversation: turns end with an answer without calls."""
    turn = step = 0
    for m in messages:
        if m.get("role") != "assistant":
            continue
        if m.get("tool_calls"):
            step += 1
        else:
            turn, step = turn + 1, 0
    return turn, step
