"""Simulated users for tau-style episodes.

* `ScriptedUser`: deterministic; says the task's scripted utterances one per user turn (so the facts come out
  turn by turn, as a cooperative human would give them) and says the stop token once all have been said and
  the agent has answered the last one. For tests and the CPU quickstart.
* `LLMUser`: a persona played by a model through `toolace_mt.llm` (tau-bench's `llm` strategy re-written): it
  gets the task instruction as its system prompt, sees the agent's replies as the other speaker, reveals one
  thing at a time and says ``###STOP###`` when its goal is reached. Requests of all episodes go in one batch.

Both implement ``respond(states) -> list[str]``, where a state is (task, transcript) and the transcript is the
list of (speaker, text) pairs of the visible conversation so far ("user" / "agent").
"""
from __future__ import annotations

from typing import Any, Protocol

from .domain import Task

STOP = "###STOP###"
_OPENING = "Hi! How can I help you today?"  # what the agent side "says" before the user's first message

USER_SYSTEM = """You are a user talking to a customer service agent. Your task:

{instruction}

Rules:
- Write one short message at a time, as the user; never write the agent's part.
- Do not give away all the information at once: give only what the current step needs or what the agent asks.
- Do not make up facts that are not in your task: if the agent asks for something you were not given, say you
  do not know.
- When your goal is reached (or cannot be reached), reply with exactly {stop} and nothing else."""


class UserSim(Protocol):
    kind: str

    def respond(self, states: list[tuple[Task, list[tuple[str, str]]]]) -> list[str]:
        ...


class ScriptedUser:
    kind = "scripted"

    def respond(self, states: list[tuple[Task, list[tuple[str, str]]]]) -> list[str]:
        out = []
        for task, transcript in states:
            said = sum(1 for who, _ in transcript if who == "user")
            out.append(task.script[said].say if said < len(task.script) else STOP)
        return out


class LLMUser:
    kind = "llm"

    def __init__(self, client: Any, temperature: float = 0.0, max_tokens: int = 256, seed: int | None = None):
        self.client = client
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed  # differs per trial, so trials are independent samples (and distinct cache keys)

    def _messages(self, task: Task, transcript: list[tuple[str, str]]) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": USER_SYSTEM.format(instruction=task.instruction, stop=STOP)},
                {"role": "user", "content": _OPENING}]
        for who, text in transcript:  # roles flipped: the simulated user is the "assistant" here
            msgs.append({"role": "assistant" if who == "user" else "user", "content": text or ""})
        return msgs

    def respond(self, states: list[tuple[Task, list[tuple[str, str]]]]) -> list[str]:
        from toolace_mt.llm.types import ChatRequest, SamplingParams

        reqs = [ChatRequest(messages=self._messages(t, tr), stage="tau_user", method="llm_user",
                            sampling=SamplingParams(temperature=self.temperature, max_tokens=self.max_tokens,
                                                    seed=self.seed),
                            payload={"task_id": t.task_id, "turn": sum(1 for w, _ in tr if w == "user")})
                for t, tr in states]
        outs = []
        for r in self.client.chat(reqs):
            # a failed user turn ends the episode with a recorded reason instead of crashing the run
            outs.append(r.text.strip() if r.ok else f"{STOP} (user simulator failed: {r.error.kind})")
        return outs


def make_user(options: dict[str, Any], seed: int | None = None) -> UserSim:
    """`options.user`: scripted (default) | llm; `options.user_llm`: an `LLMConfig` dict for the llm user;
    `seed`: the llm user's sampling seed (the suites pass recipe seed + trial)."""
    kind = options.get("user", "scripted")
    if kind == "scripted":
        return ScriptedUser()
    if kind == "llm":
        from toolace_mt.config import dataclass_from_dict
        from toolace_mt.llm.client import LLMConfig, make_client

        llm_cfg = dataclass_from_dict(LLMConfig, dict(options.get("user_llm") or {}), where="options.user_llm.")
        return LLMUser(make_client(llm_cfg), temperature=llm_cfg.temperature, max_tokens=llm_cfg.max_tokens,
                       seed=seed)
    raise ValueError(f"options.user must be 'scripted' or 'llm', got {kind!r}")
