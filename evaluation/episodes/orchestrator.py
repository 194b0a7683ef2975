"""Agent <-> user <-> tools episodes, run in lockstep over many tasks so the policy gets whole batches.

One episode: the user speaks first; the agent answers with tool calls (each executed on the episode's own
database, result appended as a tool message) or with text (shown to the user, who answers or stops). It ends
when the user says the stop token (``user_stop``), the agent calls a terminate tool (``transfer``), or the agent
has taken `max_steps` actions (``max_steps``; each tool call and each text reply is one action, as in
tau-bench). The trajectory keeps the messages, the executed calls (``actions``, replayed by the scorer) and the
agent's replies (checked for the required outputs).

The oracle's `gold` for a step is the next gold action of the current scripted turn that the agent has not
done yet, or that turn's closing reply once all are done.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..policy import PolicyInput
from .domain import TERMINATE_TOOLS, Task, TauEnv
from .users import STOP, UserSim

DEFAULT_MAX_STEPS = 30  # tau-bench's max_num_steps


@dataclass
class Episode:
    task: Task
    trial: int
    env: TauEnv
    tools: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    transcript: list[tuple[str, str]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    steps: int = 0
    gold_done: int = 0  # gold actions of the current turn already matched
    termination: Optional[str] = None
    parse_errors: list[str] = field(default_factory=list)
    waiting_user: bool = True
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def turn(self) -> int:
        return sum(1 for w, _ in self.transcript if w == "user") - 1

    def gold(self) -> dict[str, Any]:
        if 0 <= self.turn < len(self.task.script):
            t = self.task.script[self.turn]
            if self.gold_done < len(t.actions):
                a = t.actions[self.gold_done]
                return {"tool_calls": [{"name": a["name"], "arguments": a["kwargs"]}]}
            return {"content": t.reply}
        return {"content": "Is there anything else I can help you with?"}

    def trajectory(self) -> dict[str, Any]:
        return {"task_id": self.task.task_id, "category": self.task.domain, "trial": self.trial,
                "termination": self.termination, "steps": self.steps, "actions": self.actions,
                "replies": self.replies, "messages": self.messages, "parse_errors": self.parse_errors,
                "final_hash": self.env.state_hash(), "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens}


def new_episode(task: Task, trial: int, make_env: Callable[[Task], tuple[Any, list, str]]) -> Episode:
    env, tools, system = make_env(task)
    return Episode(task=task, trial=trial, env=env, tools=tools, messages=[{"role": "system", "content": system}])


def _agent_step(ep: Episode, out, max_steps: int) -> None:
    ep.parse_errors.extend(out.parse_errors or [])
    ep.prompt_tokens += out.prompt_tokens or 0
    ep.completion_tokens += out.completion_tokens or 0
    if out.tool_calls:
        calls = []
        for i, c in enumerate(out.tool_calls):
            calls.append({"id": f"call_{ep.steps + i}", "type": "function",
                          "function": {"name": c["name"], "arguments": c.get("arguments") or {}}})
        ep.messages.append({"role": "assistant", "content": out.content or None, "tool_calls": calls})
        for c in calls:
            name, args = c["function"]["name"], c["function"]["arguments"]
            res = ep.env.execute(name, args)
            ep.actions.append({"name": name, "kwargs": args, "ok": res.ok})
            ep.messages.append({"role": "tool", "tool_call_id": c["id"], "name": name, "content": res.content()})
            ep.steps += 1
            t = ep.task.script[ep.turn] if 0 <= ep.turn < len(ep.task.script) else None
            if t and ep.gold_done < len(t.actions) and t.actions[ep.gold_done] == {"name": name, "kwargs": args}:
                ep.gold_done += 1
            if name in TERMINATE_TOOLS:
                ep.termination = "transfer"
                return
    else:
        text = out.content or ""
        ep.messages.append({"role": "assistant", "content": text})
        ep.replies.append(text)
        ep.transcript.append(("agent", text))
        ep.steps += 1
        ep.waiting_user = True
    if ep.steps >= max_steps and ep.termination is None:
        ep.termination = "max_steps"


def run_episodes(policy, tasks: list[Task], user: UserSim, make_env: Callable[[Task], tuple[Any, list, str]],
                 trial: int = 0, max_steps: int = DEFAULT_MAX_STEPS,
                 on_done: Optional[Callable[[dict[str, Any]], None]] = None, progress: bool = False,
                 stop_tokens: tuple[str, ...] = (STOP,)) -> list[dict]:
    """Play every task once; returns the trajectories in task order (each also passed to `on_done`).

    `make_env` gives (env, tools, system prompt) per task (each suite brings its own: tau domains, ACE agent
    scenarios); a user message holding
    any of `stop_tokens` ends the episode.
    """
    eps = [new_episode(t, trial, make_env) for t in tasks]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(eps), desc=f"tau trial {trial}", unit="task")

    def finish(ep: Episode) -> None:
        if on_done:
            on_done(ep.trajectory())
        if bar:
            bar.update(1)

    while True:
        live = [e for e in eps if e.termination is None]
        if not live:
            break
        need_user = [e for e in live if e.waiting_user]
        if need_user:
            for ep, text in zip(need_user, user.respond([(e.task, e.transcript) for e in need_user])):
                ep.waiting_user = False
                if any(tok in text for tok in stop_tokens):
                    ep.termination = "user_stop"
                    ep.transcript.append(("user", text))
                    finish(ep)
                    continue
                ep.messages.append({"role": "user", "content": text})
                ep.transcript.append(("user", text))
                ep.gold_done = 0
        need_agent = [e for e in live if e.termination is None and not e.waiting_user]
        if not need_agent:
            continue
        outs = policy.act([PolicyInput(messages=[dict(m) for m in e.messages], tools=e.tools, gold=e.gold(),
                                       task_id=e.task.task_id) for e in need_agent])
        for ep, out in zip(need_agent, outs):
            _agent_step(ep, out, max_steps)
            if ep.termination is not None:
                finish(ep)
    if bar:
        bar.close()
    return [e.trajectory() for e in eps]
