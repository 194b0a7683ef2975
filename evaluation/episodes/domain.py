"""The base of a tau-style, policy-bound domain and the Task record (tau-bench's design: policy document, tools, gold actions).

A domain is an `Env` (our `@tool` style) whose state is the database; its `policy.md` is the agent's system
prompt; `transfer_to_human_agents` is the terminate tool shared by every domain. A `Task` holds what the
simulated user wants (`instruction`, plus a `script` of utterances for the scripted user, each with the gold
actions that utterance unlocks and the reply that closes it), the gold `actions` (reads included, in order) and
the `outputs` the agent must say. Tasks are built deterministically from the seeded database.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from toolace_mt.envs.base import Env, tool

TERMINATE_TOOLS = ("transfer_to_human_agents",)


class TauEnv(Env):
    """A policy-bound domain: the state is the database; `DB_SEED` makes the database reproducible."""

    DB_SEED: ClassVar[int] = 0  # chosen: one fixed database per domain, like tau-bench's committed JSON
    POLICY_FILE: ClassVar[Path]

    @classmethod
    def policy(cls) -> str:
        return cls.POLICY_FILE.read_text(encoding="utf-8")

    @classmethod
    def fresh(cls) -> "TauEnv":
        """A new env on the domain's database (built once per class; every env gets its own deep copy)."""
        import random

        db = cls.__dict__.get("_db_cache")
        if db is None:
            db = cls.sample_state(random.Random(cls.DB_SEED))
            cls._db_cache = db
        return cls(state=db)

    @tool(writes=False)
    def transfer_to_human_agents(self, summary: str) -> str:
        """Transfer the user to a human agent, with a summary of the issue. Use only when the request cannot be
        handled within the policy and the tools. This ends the conversation.

        Args:
            summary: A summary of the user's issue.
        """
        return "Transfer successful"


@dataclass
class Turn:
    """One scripted user utterance, the gold actions it makes possible, and the agent's closing reply."""

    say: str
    actions: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "kwargs"}]
    reply: str = "Done. Is there anything else I can help you with?"


@dataclass
class Task:
    task_id: str
    domain: str
    user_id: str
    instruction: str  # the LLM user's persona and goal
    script: list[Turn]
    outputs: list[str] = field(default_factory=list)

    @property
    def actions(self) -> list[dict[str, Any]]:
        return [a for t in self.script for a in t.actions]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["actions"] = self.actions
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Task":
        return cls(task_id=d["task_id"], domain=d["domain"], user_id=d["user_id"], instruction=d["instruction"],
                   script=[Turn(**t) for t in d["script"]], outputs=list(d.get("outputs", [])))
