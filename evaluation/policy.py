"""The policy contract: what every evaluated model adapter implements.

A policy answers a BATCH of conversation states at once (so a vLLM policy gets large batches): each
`PolicyInput` holds the messages so far (OpenAI format, dict arguments), the tools available now, and a `gold`
field that only the `oracle` policy may read (the harness fills it with what the task expects next). The answer
is a `PolicyOutput`: text and/or tool calls, plus the raw text and any parse errors (an unparseable answer is a
text answer, never a crash).

Implementations live in `evaluation/policies/` and are built by `make_policy(cfg)` from a recipe's `policy:`
block: transformers | vllm | openai | oracle | null.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, runtime_checkable


@dataclass
class PolicyInput:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    gold: Optional[Any] = None  # only for the oracle policy: the expected next action(s)
    task_id: str = ""
    # where the harness is (BFCL: turn index, step within the turn); None where a harness has no such position
    turn: Optional[int] = None
    step: Optional[int] = None


@dataclass
class PolicyOutput:
    content: Optional[str] = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{"name": str, "arguments": dict}]
    raw: str = ""
    parse_errors: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    stop: bool = False  # the policy has nothing more for this task: the harness ends the entry here (replay)
    # replay only: True = the turn ends after this step (its calls still run); False = the turn goes on even
    # though this step made no call (a recorded step that does not decode); None = the harness's own rule
    turn_end: Optional[bool] = None
    # replay only: "fc" = tool_calls are what BFCL's FC decoder made of a recorded call list (never re-decoded)
    call_format: Optional[str] = None
    # replay only: a single-turn answer exactly as the recorded result file holds it (scored as recorded)
    recorded: Any = None


@runtime_checkable
class Policy(Protocol):
    name: str

    def act(self, batch: list[PolicyInput]) -> list[PolicyOutput]:
        ...
