"""Turn-by-turn play of BFCL-layout tasks, batched across tasks.

Per task and turn: the turn's user message(s) are appended (at a held-out-function turn: the held-out tools
are added and the official "I have updated some more functions..." message is the user message); then steps
repeat -- ask the policy, and if it made calls, execute them on the task's live world and append the
results as tool messages -- until a step makes no call (text, or unparseable output: the turn ends).
More than ``max_steps`` steps in one turn force-quits the whole entry (the turn is kept, later turns are not
played, so the checker fails it unless it was the last turn -- as the official runner does).

All tasks that are waiting for the model are sent to `policy.act` in one batch (chunks of
``max_parallel``), so a vLLM policy gets large batches. The ``gold`` of each `PolicyInput` (for the oracle
only) is the turn's ground-truth calls at step 0 (keyword arguments) and a text answer afterwards (a turn a
task's ``gt_steps`` splits: one share of its calls per step, then the text answer).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ..policy import PolicyInput, PolicyOutput
from ..suites import save_trajectory
from . import HELDOUT_USER_MESSAGE, MAX_STEPS
from .backends import World, make_world, missed, parse_gt_call, tools_at_turn


def keyword_call(world: World, call: dict[str, Any]) -> dict[str, Any]:
    """A ground-truth call with positional arguments rewritten as keywords (the prompting decoder drops
    positional ones, so the oracle must write keywords)."""
    args = dict(call.get("arguments") or {})
    pos = args.pop("_args", None) or []
    names = world.param_names(call["name"])
    for n, v in zip(names, pos):
        args.setdefault(n, v)
    return {"name": call["name"], "arguments": args}


class _Play:
    """The live state of one task being played."""

    def __init__(self, task: dict[str, Any], trial: int, max_steps: int, decode=None, call_format: str = "structured"):
        self.task = task
        self.decode = decode
        self.call_format = call_format
        self.trial = trial
        self.max_steps = max_steps
        self.world = make_world(task)
        self.messages: list[dict[str, Any]] = []
        self.turns: list[list[dict[str, Any]]] = []
        self.turn = -1
        self.step = 0
        self.force_quit = False
        self.done = False
        self.tokens = [0, 0]
        self.missed = missed(task)
        self._next_turn()

    def _next_turn(self) -> None:
        self.turn += 1
        self.step = 0
        if self.turn >= len(self.task["question"]):
            self.done = True
            return
        msgs = list(self.task["question"][self.turn])
        if self.turn in self.missed and not msgs:
            msgs = [{"role": "user", "content": HELDOUT_USER_MESSAGE}]
        self.messages.extend(dict(m) for m in msgs)
        self.tools = tools_at_turn(self.task, self.turn)
        self.turns.append([])

    def gold(self) -> Any:
        """The turn's ground-truth calls at step 0, or, where the task's ``gt_steps`` splits the turn (our own
        sets' dependent steps: a call that needs an earlier call's result), that step's share of them."""
        gts = self.task.get("ground_truth") or []
        if self.turn >= len(gts) or not gts[self.turn]:
            return None
        sizes = (self.task.get("gt_steps") or {}).get(str(self.turn)) or [len(gts[self.turn])]
        if self.step >= len(sizes):
            return None
        lo = sum(sizes[:self.step])
        return [keyword_call(self.world, parse_gt_call(s)) for s in gts[self.turn][lo:lo + sizes[self.step]]]

    def policy_input(self) -> PolicyInput:
        return PolicyInput(messages=list(self.messages), tools=self.tools, gold=self.gold(), task_id=self.task["id"],
                           turn=self.turn, step=self.step)

    def apply(self, out: PolicyOutput) -> None:
        if out.stop:  # a replayed entry with no more recorded steps: ends as the official runner ended it
            self.force_quit = self.turn < len(self.task["question"])
            if self.turns and not self.turns[-1]:
                self.turns.pop()
            self.done = True
            return
        self.tokens[0] += out.prompt_tokens
        self.tokens[1] += out.completion_tokens
        step = {"content": out.content, "tool_calls": out.tool_calls, "raw": out.raw,
                "parse_errors": out.parse_errors, "results": []}
        if out.call_format:
            step["call_format"] = out.call_format
        self.turns[-1].append(step)
        if self.decode is not None and not out.call_format:  # official decoding: what BFCL's runner runs
            calls = self.decode(step)
            if [(c["name"], c.get("arguments")) for c in calls] != [(c.get("name"), c.get("arguments"))
                                                                     for c in out.tool_calls]:
                step["policy_tool_calls"] = out.tool_calls
            step["tool_calls"] = calls
            out = PolicyOutput(content=out.content, tool_calls=calls, raw=out.raw, turn_end=out.turn_end)
        if not out.tool_calls:
            self.messages.append({"role": "assistant", "content": out.content or ""})
            if out.turn_end is False:  # a recorded step that made no call: the recording's turn goes on
                self.step += 1
            else:
                self._next_turn()
            return
        ids = [f"call_{self.turn}_{self.step}_{i}" for i in range(len(out.tool_calls))]
        self.messages.append({"role": "assistant", "content": out.content or "",
                              "tool_calls": [{"id": i, "type": "function",
                                              "function": {"name": c["name"], "arguments": c.get("arguments") or {}}}
                                             for i, c in zip(ids, out.tool_calls)]})
        for i, c in zip(ids, out.tool_calls):
            res = self.world.execute(c)
            step["results"].append(res)
            self.messages.append({"role": "tool", "tool_call_id": i, "name": c["name"], "content": res})
        self.step += 1
        if out.turn_end:  # the recording's turn ends here (its last step made calls)
            self._next_turn()
        elif out.turn_end is None and self.step > self.max_steps:  # a recording is played as recorded
            self.force_quit = True
            self.done = True

    def trajectory(self, policy_name: str) -> dict[str, Any]:
        return {"task_id": self.task["id"], "category": self.task.get("category", ""), "trial": self.trial,
                "backend": self.task.get("backend", "official"), "policy": policy_name,
                "call_format": self.call_format, "turns": self.turns,
                "force_quit": self.force_quit, "n_steps": sum(len(t) for t in self.turns),
                "prompt_tokens": self.tokens[0], "completion_tokens": self.tokens[1]}


def play(policy, tasks: list[dict[str, Any]], out_dir: Optional[Path] = None, trial: int = 0,
         max_steps: Optional[int] = None, max_parallel: int = 256, progress: bool = True, decode=None,
         call_format: str = "structured") -> list[dict[str, Any]]:
    """Play every task with the policy; save and return one trajectory per task (in task order). `decode`
    (step -> calls) replaces the policy's parse with the official decoding of the step's raw text."""
    from tqdm import tqdm

    max_steps = MAX_STEPS if max_steps is None else max_steps
    name = getattr(policy, "name", type(policy).__name__)
    results: dict[str, dict[str, Any]] = {}
    queue = list(tasks)
    active: list[_Play] = []
    bar = tqdm(total=len(tasks), desc=f"bfcl {name}", disable=not progress, leave=False)
    while queue or active:
        while queue and len(active) < max_parallel:
            active.append(_Play(queue.pop(0), trial, max_steps, decode, call_format))
        live = [p for p in active if not p.done]
        if live:
            outs = policy.act([p.policy_input() for p in live])
            if len(outs) != len(live):
                raise RuntimeError(f"policy {name} answered {len(outs)} of {len(live)} inputs")
            for p, o in zip(live, outs):
                p.apply(o)
        for p in [p for p in active if p.done]:
            traj = p.trajectory(name)
            save_trajectory(out_dir, traj)
            results[p.task["id"]] = traj
            active.remove(p)
            bar.update(1)
    bar.close()
    return [results[t["id"]] for t in tasks]
