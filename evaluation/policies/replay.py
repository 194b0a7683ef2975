"""``replay``: play outputs a model produced elsewhere through the same harness, scoring and reports.

Recipe: ``policy: {kind: replay, path: ..., format: bfcl_result | ace_result | trajectories}``.

* ``bfcl_result``: BFCL's result files (``BFCL_v3_<category>_result.json`` or ``BFCL_v4_...``; one JSON line
  per entry: ``id`` and ``result``). Multi-turn: per turn, a list of steps; single-turn: one answer. A step is
  the model's text (prompting models: decoded by the suite's decoding mode) or a list of ``{name: arguments}``
  (FC models: decoded by BFCL's FC decoder, `convert_to_function_call`; a call that is not valid Python, such
  as ``ls<|channel|>commentary(...)``, is kept and fails when run, as BFCL's ``eval`` of it fails). Every
  recorded step is played and decoded on its own, as BFCL's evaluation does: a step that does not decode is a
  failed step and the turn goes on to the next recorded step. A file holding call lists is an FC model's
  (``policy.extra.handler: auto | fc | prompting`` overrides). ``path``: the folder that holds the files, or one
  file. Lines are validated (object, ``id``, ``result`` shape, duplicates) and the ids must name selected
  tasks, before a run directory exists.
* ``ace_result``: ACEBench's result files (``data_<category>_result.json``; ``id``, ``result`` = the answer text).
* ``trajectories``: JSON lines with ``task_id`` (or ``id``) and either our trajectory fields (``turns`` for
  BFCL; ``content``/``tool_calls``/``raw`` for ACE) or OpenAI-format ``messages`` (assistant messages with
  ``tool_calls``; for BFCL a user message starts a turn). ``path``: a file, or a run folder's
  ``trajectories.jsonl``.

The run is labelled by the source model's name: ``name``, else ``model``, else the folder that holds the files
(BFCL and ACEBench both write ``<model>/...``). The harness asks for one step at a time; the policy finds the
step from the harness's position (``PolicyInput.turn/step``; else from the conversation). When the recorded
entry has fewer turns than the task, the entry ends there (``stop``): for BFCL this is the official runner's
force termination (fewer turns than the ground truth).
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
_MULTI_TURN = {"base", "miss_param", "miss_func", "long_context"}  # our names of BFCL's multi-turn categories
# the result-file categories the bfcl suite scores (V4 and v3 names); others (web_search, memory, format_sensitivity
# files in the same folder) are not read
_BFCL_SCORED = {f"multi_turn_{c}" for c in _MULTI_TURN} | {
    "simple_python", "simple_java", "simple_javascript", "simple", "java", "javascript", "multiple", "parallel",
    "parallel_multiple", "irrelevance", "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
    "live_irrelevance", "live_relevance"}


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


def fc_decode_execute(step: Any) -> list[str]:
    """BFCL's FC decoder (`convert_to_function_call`, what its FC handlers' ``decode_execute`` is): a step's
    ``{name: arguments-json-or-dict}`` calls -> ``name(k=repr(v),...)`` strings; raises where it raises (a text
    step, unreadable JSON arguments). bfcl-eval's own function when importable, else this port of it."""
    from ..bfcl.decoding import bfcl_fc_converter

    fn = bfcl_fc_converter()
    if fn is not None:
        return fn(step)
    if isinstance(step, dict):
        step = [step]
    out = []
    for call in step:
        for key, value in call.items():  # AttributeError on a text step, as the official code
            if isinstance(value, str):
                value = json.loads(value)
            out.append(f"{key}({','.join(f'{k}={v!r}' for k, v in value.items())})")
    return out


def fc_step_calls(step: Any) -> list[dict[str, Any]]:
    """The calls BFCL's checker runs for one FC step: [] when the step does not decode (it is skipped); a call
    that is not valid Python (``ls<|channel|>commentary(...)``, an argument named ``""``) is kept and fails
    when executed, as BFCL's ``eval`` of it does."""
    from ..bfcl.decoding import string_to_call

    try:
        strs = fc_decode_execute(step)
    except Exception:  # noqa: BLE001 - BFCL's evaluation skips a step on any decoding error
        return []
    if not strs or (len(strs) == 1 and not strs[0]):
        return []
    return [string_to_call(s) for s in strs]


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


# ------------------------------------------------------------------------------------- validation (exit 2)
def _bad(where: str, what: str) -> RecipeError:
    return RecipeError(f"policy.path: {where}: {what}")


def _is_fc_step(step: Any) -> bool:
    return isinstance(step, dict) or (isinstance(step, list) and bool(step) and all(isinstance(c, dict) for c in step))


def _check_step(step: Any, where: str) -> None:
    if isinstance(step, str) or _is_fc_step(step) or step == []:
        return
    raise _bad(where, f"a step must be the model's text or a list of {{name: arguments}} calls, got "
                      f"{type(step).__name__} {json.dumps(step)[:60]}")


def _check_bfcl_result(r: Any, where: str, multi_turn: bool) -> None:
    if not isinstance(r, dict):
        raise _bad(where, f"expected a JSON object with \"id\" and \"result\", got {type(r).__name__}")
    if not isinstance(r.get("id"), (str, int)) or isinstance(r.get("id"), bool):
        raise _bad(where, "expected an \"id\" (string) naming a BFCL entry")
    if "result" not in r:
        raise _bad(where, f"entry {r['id']!r} has no \"result\"")
    res = r["result"]
    if isinstance(res, str):  # BFCL writes an inference error as a string: the official checker fails it
        return
    if not isinstance(res, list):
        raise _bad(where, f"entry {r['id']!r}: \"result\" must be "
                          + ("a list of turns (each a list of steps)" if multi_turn else "the model's text or a list "
                             "of {name: arguments} calls") + f", got {type(res).__name__}")
    if multi_turn:
        for t, turn in enumerate(res):
            if not isinstance(turn, list):
                raise _bad(where, f"entry {r['id']!r}: turn {t} must be a list of steps, got {type(turn).__name__}")
            for s, step in enumerate(turn):
                _check_step(step, f"{where}: entry {r['id']!r} turn {t} step {s}")
    else:
        _check_step(res, f"{where}: entry {r['id']!r}")


def _check_trajectory(r: Any, where: str) -> str:
    if not isinstance(r, dict):
        raise _bad(where, f"expected a JSON object with \"task_id\", got {type(r).__name__}")
    tid = r.get("task_id", r.get("id"))
    if not isinstance(tid, (str, int)) or isinstance(tid, bool):
        raise _bad(where, "expected a \"task_id\" (or \"id\") naming a task")
    if not isinstance(r.get("trial", 0), int):
        raise _bad(where, f"task {tid!r}: \"trial\" must be an integer")

    def calls_ok(calls: Any, at: str) -> None:
        if calls is None:
            return
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
            raise _bad(where, f"task {tid!r}{at}: \"tool_calls\" must be a list of call objects, got "
                              f"{json.dumps(calls)[:60]}")
        for c in calls:
            fn = c.get("function", c)
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise _bad(where, f"task {tid!r}{at}: a tool call needs a string \"name\"")

    if "turns" in r:
        turns = r["turns"]
        if not isinstance(turns, list) or not all(isinstance(t, list) for t in turns):
            raise _bad(where, f"task {tid!r}: \"turns\" must be a list of turns (each a list of step objects), "
                              f"got {json.dumps(turns)[:60]}")
        for t, turn in enumerate(turns):
            for s, st in enumerate(turn):
                if not isinstance(st, dict):
                    raise _bad(where, f"task {tid!r} turn {t} step {s}: expected a step object with content / "
                                      "tool_calls / raw")
                calls_ok(st.get("tool_calls"), f" turn {t} step {s}")
    elif "messages" in r:
        if not isinstance(r["messages"], list) or not all(isinstance(m, dict) for m in r["messages"]):
            raise _bad(where, f"task {tid!r}: \"messages\" must be a list of message objects")
        for m in r["messages"]:
            calls_ok(m.get("tool_calls"), "")
    else:
        if not any(k in r for k in ("content", "tool_calls", "raw")):
            raise _bad(where, f"task {tid!r}: expected \"turns\", \"messages\" or content/tool_calls/raw")
        calls_ok(r.get("tool_calls"), "")
    return str(tid)


def _read(path: Path) -> list[tuple[str, Any]]:
    """(file:line, row) for every non-blank line; a line that is not JSON is an error naming it."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append((f"{path}:{n}", json.loads(line)))
                    except json.JSONDecodeError as e:
                        raise _bad(f"{path}:{n}", f"not valid JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise _bad(str(path), "not UTF-8 text") from None
    if not rows:
        raise _bad(str(path), "empty (expected one JSON line per entry)")
    return rows


def _file_category(path: Path) -> str:
    m = _BFCL_FILE.match(path.name)
    return m.group(1) if m else ""


@register_policy("replay")
class ReplayPolicy:
    """Recorded outputs as a policy. BFCL steps are played one at a time, each decoded on its own (as BFCL's
    evaluation decodes every recorded step): a step that does not decode is a failed step, and the turn goes on
    to the next recorded step; the turn ends after its last recorded step (`PolicyOutput.turn_end`)."""

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
        self.answers: dict[str, Any] = {}  # single answers (ACE normal/special, BFCL single-turn)
        self.fc: dict[str, bool] = {}  # bfcl_result: id -> written by an FC model (calls as {name: args})
        self.categories: dict[str, str] = {}  # bfcl_result: id -> the category its file name says
        self.where: dict[str, str] = {}
        self.raw: dict[str, Any] = {}  # bfcl_result: id -> its recorded result, untouched
        style = (cfg.extra or {}).get("handler", "auto")
        if style not in ("auto", "fc", "prompting"):
            raise RecipeError("policy.extra.handler must be auto | fc | prompting (how the result files' steps "
                              "are decoded: BFCL's FC or prompting decoder; auto: FC when a file holds call lists)")
        if cfg.format == "bfcl_result":
            files = result_files(path, cfg.format)
            self.skipped_files = [f for f in files if _file_category(f) not in _BFCL_SCORED]
            for f in [f for f in files if _file_category(f) in _BFCL_SCORED]:
                cat = _file_category(f)
                multi = cat.startswith("multi_turn")
                rows = _read(f)
                file_fc = style == "fc" or (style == "auto" and any(
                    _is_fc_step(s) for _, r in rows if isinstance(r, dict) and isinstance(r.get("result"), list)
                    for s in ([st for t in r["result"] if isinstance(t, list) for st in t] if multi else [r["result"]])))
                for where, r in rows:
                    _check_bfcl_result(r, where, multi)
                    tid = str(r["id"])
                    if tid in self.where:
                        raise _bad(where, f"entry {tid!r} is recorded twice (first at {self.where[tid]})")
                    self.where[tid], self.fc[tid], self.categories[tid] = where, file_fc, cat
                    res = r["result"]
                    self.raw[tid] = res
                    if not multi:
                        self.answers[tid] = {"bfcl_single": res}
                    elif isinstance(res, list):
                        self.steps[tid] = res
                    else:  # an inference error recorded instead of turns: the official checker fails it
                        self.steps[tid] = []
        elif cfg.format == "ace_result":
            for f in result_files(path, cfg.format):
                for where, r in _read(f):
                    if not isinstance(r, dict) or not isinstance(r.get("id"), (str, int)) or "result" not in r:
                        raise _bad(where, "expected a JSON object with \"id\" and \"result\"")
                    tid = str(r["id"])
                    if tid in self.where:
                        raise _bad(where, f"entry {tid!r} is recorded twice (first at {self.where[tid]})")
                    self.where[tid] = where
                    self.answers[tid] = r.get("result")
        else:
            p = path / "trajectories.jsonl" if path.is_dir() else path
            if not p.is_file():
                raise RecipeError(f"policy.path: {p} is not a trajectories file")
            for where, r in _read(p):
                tid = _check_trajectory(r, where)
                if r.get("trial", 0) != 0:
                    continue
                if tid in self.where:
                    raise _bad(where, f"task {tid!r} (trial 0) is recorded twice (first at {self.where[tid]})")
                self.where[tid] = where
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
            if not self.where:
                raise _bad(str(p), "no trial-0 entries (expected one JSON line per task)")

    def check_tasks(self, tasks: list[dict[str, Any]]) -> None:
        """Refuse (before a run directory exists) a source none of whose entries is a selected task, and a
        BFCL entry whose shape is not its category's (multi-turn: turns of steps; single-turn: one answer)."""
        ids = {str(t["id"]): t for t in tasks}
        hit = [i for i in self.where if i in ids]
        if not hit:
            sample = ", ".join(sorted(ids)[:3])
            got = ", ".join(sorted(self.where)[:3])
            raise RecipeError(f"policy.path: none of the {len(self.where)} recorded entries ({got}"
                              f"{', ...' if len(self.where) > 3 else ''}) is a selected task; expected ids like "
                              f"{sample} (check categories, data_version and the result files' category)")
        if self.format != "bfcl_result":
            return
        for i in hit:
            multi = str(ids[i].get("category", "")) in _MULTI_TURN
            if multi != (i in self.steps):
                raise _bad(self.where[i], f"entry {i!r} is a {'multi' if multi else 'single'}-turn task, but its "
                                          f"file ({self.categories[i] or '?'}) records it as "
                                          f"{'single' if multi else 'multi'}-turn")

    def recorded(self, tid: str) -> tuple[Any, bool]:
        """(the entry's raw ``result`` as its file holds it, written by an FC model) -- for crosscheck."""
        if tid in self.answers and "bfcl_single" in (self.answers[tid] or {}):
            return self.answers[tid]["bfcl_single"], self.fc.get(tid, False)
        return self.raw.get(tid), self.fc.get(tid, False)

    def act(self, batch: list[PolicyInput]) -> list[PolicyOutput]:
        return [self._one(inp) for inp in batch]

    def _one(self, inp: PolicyInput) -> PolicyOutput:
        tid = inp.task_id
        if tid in self.answers and tid not in self.steps:
            ans = self.answers[tid]
            if isinstance(ans, dict) and "bfcl_single" in ans:
                return self._bfcl_single(ans["bfcl_single"], self.fc.get(tid, False))
            return self._answer(ans)
        if tid not in self.steps:
            return PolicyOutput(content="", parse_errors=[f"replay: no recorded output for {tid}"], stop=True)
        turn, step = (inp.turn, inp.step) if inp.turn is not None else _position(inp.messages)
        turns = self.steps[tid]
        if turn >= len(turns):  # fewer turns recorded than asked: the official runner's force termination
            return PolicyOutput(content="", parse_errors=[f"replay: no recorded turn {turn}"], stop=True)
        if step >= len(turns[turn]):  # a turn recorded without steps: it ends with no call
            return PolicyOutput(content="", parse_errors=[f"replay: turn {turn} has no recorded step {step}"],
                                turn_end=True)
        item = turns[turn][step]
        if self.format == "bfcl_result" and self.fc.get(tid):
            out = self._fc(item)
        else:
            out = self._answer(item)
        out.turn_end = step == len(turns[turn]) - 1
        return out

    @staticmethod
    def _fc(item: Any) -> PolicyOutput:
        """An FC model's recorded step, decoded as BFCL's FC handler decodes it (a text step makes no call)."""
        calls = fc_step_calls(item)
        raw = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        return PolicyOutput(content=item if isinstance(item, str) else None, tool_calls=calls, raw=raw,
                            call_format="fc")

    def _bfcl_single(self, item: Any, fc: bool) -> PolicyOutput:
        """A single-turn answer: scored as recorded (`PolicyOutput.recorded`), by BFCL's FC or prompting
        decoder as the file's style says."""
        out = self._fc(item) if fc else _text_output(item if isinstance(item, str) else json.dumps(item))
        out.recorded = item
        out.call_format = "fc" if fc else "text"
        return out

    @staticmethod
    def _answer(item: Any) -> PolicyOutput:
        if isinstance(item, str):
            return _text_output(item)
        if isinstance(item, list):  # an FC step read as text (policy.extra.handler: prompting)
            return _text_output(json.dumps(item))
        if isinstance(item, dict):
            calls = [{"name": c.get("function", c).get("name"), "arguments": c.get("function", c).get("arguments")}
                     for c in item.get("tool_calls") or []]
            calls = [{"name": c["name"], "arguments": decoded_arguments(c)} for c in calls]
            calls = [{"name": c["name"], "arguments": c["arguments"] if isinstance(c["arguments"], dict) else {}}
                     for c in calls]
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
