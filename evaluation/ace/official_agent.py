"""ACEBench's official agent items (agent_multi_turn 30, agent_multi_step 20) on ACEBench's own scenario classes,
imported at run time from the source `toolace-mt data acebench` downloads beside the data (same pinned commit,
`data.SOURCE_FILES`); nothing of it is copied into the project.

* Execution: every call the policy makes goes through ACEBench's own `execute_agent_func_call` (multi-turn and
  multi-step each use their own copy of the scenario classes, as ACEBench does), in its call-string form
  ``name(key=repr(value), ...)``; each episode gets its own instances (a fresh instance key per episode).
* Playing: the project's episode loop and policies; the system prompt is ACEBench's agent prompt for the item's
  scenario (``BASE_PROMPT_EN`` for the phone platform, ``TRAVEL_PROMPT_EN`` for travel); multi-turn items have
  a user (the project's LLM user with the item's question as its instruction, through any project backend;
  ACEBench's stop phrase ``finish conversation`` ends the episode; offline the scripted user says the question
  and stops after the reply); multi-step items get the question once.
* Scoring: ACEBench's own `eval_main.agent_eval` (end-to-end: the saved attributes of each involved class, as its
  inference saves them with ``SAVED_CLASS``, against the ground truth with `agent_checker`) and its
  `agent_eval_process` (process accuracy: the milestones found in order in the agent's call messages; 1 for an
  end-to-end-correct item), called per item. The agent's call messages are written as ACEBench's agents write
  them, ``[name(key=value, ...)]`` with Python reprs.
* The oracle replays the first alternative of the milestones, call by call, then says the stop phrase.
"""
from __future__ import annotations

import ast
import contextlib
import importlib
import io
import os
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, Optional

from .data import source_missing

LANGUAGE = "en"
_lock = threading.Lock()  # ACEBench's evaluation writes score files relative to the working directory


def call_string(name: str, kwargs: dict[str, Any]) -> str:
    """One call in ACEBench's execution form (`EXECUTION.decoded_output_to_execution_list`: key=repr(value))."""
    return f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in (kwargs or {}).items()) + ")"


def message_string(calls: list[dict[str, Any]]) -> str:
    """An agent message of calls as ACEBench's agents write it (what its milestones are compared with)."""
    return "[" + ", ".join(call_string(c["name"], c.get("kwargs", c.get("arguments")) or {}) for c in calls) + "]"


def parse_calls(text: str) -> list[dict[str, Any]]:
    """``[f(a=1), g(b='x')]`` -> [{"name", "kwargs"}] (literal arguments, as ACEBench's milestones hold). A few
    milestones hold an unescaped apostrophe inside a quoted word (``'Domino's'``): escaped before parsing."""
    import re

    try:
        body = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        body = ast.parse(re.sub(r"(?<=\w)'(?=\w)", "\\'", text.strip()), mode="eval").body
    elts = body.elts if isinstance(body, (ast.List, ast.Tuple)) else [body]
    return [{"name": ast.unparse(e.func), "kwargs": {k.arg: ast.literal_eval(k.value) for k in e.keywords}}
            for e in elts if isinstance(e, ast.Call)]


class AceSource:
    """The ACEBench modules imported from a download directory."""

    _cache: dict[str, "AceSource"] = {}

    def __init__(self, path: Path):
        self.path = Path(path).resolve()
        if str(self.path) not in sys.path:
            sys.path.insert(0, str(self.path))  # ACEBench's modules import each other by top-level name
        self.utils = {"agent_multi_turn": importlib.import_module("model_inference.multi_turn.multi_turn_utils"),
                      "agent_multi_step": importlib.import_module("model_inference.multi_step.multi_step_utils")}
        self.prompts = importlib.import_module("model_inference.prompt_en")
        self.eval_main = importlib.import_module("eval_main")
        tree = ast.parse((self.path / "model_inference" / "apimodel_inference.py").read_text(encoding="utf-8"))
        self.saved_class = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                                and getattr(n.targets[0], "id", None) == "SAVED_CLASS")

    @classmethod
    def load(cls, path: Path) -> "AceSource":
        why = source_missing(path)
        if why:
            from .data import DataUnavailable

            raise DataUnavailable(why)
        key = str(Path(path).resolve())
        if key not in cls._cache:
            cls._cache[key] = cls(Path(path))
        return cls._cache[key]

    def system_prompt(self, task: dict[str, Any]) -> str:
        return self.prompts.TRAVEL_PROMPT_EN if "Travel" in task["involved_classes"] else self.prompts.BASE_PROMPT_EN


def importable(path: Path) -> Optional[str]:
    """None when the official agent items can run from `path`, else the one-line reason."""
    why = source_missing(path)
    if why:
        return why
    try:
        AceSource.load(path)
    except Exception as e:  # a module of the download that does not import here (a missing dependency)
        return f"the ACEBench source at {path} does not import ({type(e).__name__}: {e}); pip install '.[acebench]'"
    return None


class _Result:
    def __init__(self, ok: bool, text: str):
        self.ok, self.text = ok, text

    def content(self) -> str:
        return self.text


class SourceEnv:
    """An episode's environment: ACEBench's scenario instances for one item, reached only through ACEBench's
    `execute_agent_func_call` (under a key no other episode uses)."""

    def __init__(self, src: AceSource, task: dict[str, Any]):
        self.src, self.task = src, task
        self.utils = src.utils[task["category"]]
        self.key = f"toolace_{uuid.uuid4().hex}"
        self.instances: dict[str, Any] = {}

    def execute(self, name: str, kwargs: dict[str, Any]) -> _Result:
        res, inst = self.utils.execute_agent_func_call(
            func_call_list=[call_string(name, kwargs)], initial_config=self.task["initial_config"],
            involved_classes=self.task["involved_classes"], model_name=self.key, test_entry_id=self.task["id"],
            language=LANGUAGE)
        if isinstance(inst, dict):
            self.instances.update(inst)
        if isinstance(res, str):  # ACEBench's execution error (its message, verbatim)
            return _Result(False, res)
        return _Result(True, "\n".join(str(r) for r in res))

    def saved_state(self) -> list[dict[str, Any]]:
        """The result ACEBench's inference saves: per involved instance, its SAVED_CLASS attributes."""
        return [{name: {k: v for k, v in vars(inst).items() if k in self.src.saved_class.get(name, [])}}
                for name, inst in self.instances.items()]

    def state_hash(self) -> str:
        import hashlib
        import json

        return hashlib.sha256(json.dumps(self.saved_state(), sort_keys=True, default=str).encode()).hexdigest()

    def close(self) -> None:
        """Drop this episode's instances from ACEBench's module globals."""
        g = vars(self.utils)
        for k in [k for k in g if k.startswith(self.key)]:
            del g[k]


def replay(src: AceSource, task: dict[str, Any], actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The saved result after re-running `actions` on fresh instances ([] when nothing ran, as ACEBench)."""
    env = SourceEnv(src, task)
    try:
        for a in actions:
            env.execute(a["name"], a.get("kwargs") or {})
        return env.saved_state()
    finally:
        env.close()


@contextlib.contextmanager
def _scratch_cwd():
    with _lock, tempfile.TemporaryDirectory() as d:
        old = os.getcwd()
        os.chdir(d)
        try:
            yield Path(d)
        finally:
            os.chdir(old)


def official_verdict(src: AceSource, task: dict[str, Any], result: list, process: list[str]) -> dict[str, Any]:
    """ACEBench's `agent_eval` + `agent_eval_process` on one item: end-to-end verdict and process accuracy."""
    import json

    em = src.eval_main
    # ACEBench's inference writes the result to a JSON file that its evaluation reads back (integer keys of the
    # saved attributes become strings on the way): the same round trip here
    result = json.loads(json.dumps(result, ensure_ascii=False, default=str))
    answer = {"id": task["id"], "ground_truth": task["ground_truth"], "mile_stone": task["mile_stone"]}
    with _scratch_cwd() as d, contextlib.redirect_stdout(io.StringIO()):  # its progress prints
        em.language = LANGUAGE  # agent_eval reads these module globals (eval_main sets them from its CLI)
        em.OUTPUT_PATH = str(d / "score")
        (d / "score_all" / f"score_{LANGUAGE}" / "toolace").mkdir(parents=True)
        acc, proc = em.agent_eval([{"id": task["id"], "result": result, "process": process}],
                                  [{"id": task["id"]}], [answer], task["category"], "toolace")
    return {"correct": acc == 1.0, "process": float(proc)}


def gold_actions(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The first alternative of the item's milestones, as calls in order."""
    ms = task.get("mile_stone") or []
    if ms and isinstance(ms[0], list):
        ms = ms[0]
    return [c for m in ms for c in parse_calls(m)]
