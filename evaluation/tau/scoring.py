"""tau-style reward (final database state + required outputs, as tau-bench) and pass^k, pure functions of a task and a saved trajectory.

reward = 1 iff (a) the database after replaying the trajectory's tool calls on a fresh database has the same
canonical hash as after replaying the gold actions, and (b) every required output appears (case-insensitive,
commas removed) in some agent reply. Replaying the recorded calls (instead of trusting a hash stored in the
trajectory) keeps scoring pure and lets saved runs be re-scored after a domain fix. An episode cut by the step
cap scores 0 (tau-bench computes no reward for an unfinished episode).
"""
from __future__ import annotations

import json
from math import comb
from typing import Any

from ..episodes.domain import TERMINATE_TOOLS, Task
from .domains import get_domain

FINISHED = ("user_stop", "transfer")  # termination reasons that allow a reward


def replay_hash(domain: str, actions: list[dict[str, Any]]) -> str:
    """Hash of a fresh database after running `actions` ([{name, kwargs}]) in order (failures change nothing)."""
    env = get_domain(domain).fresh()
    for a in actions:
        if a["name"] in TERMINATE_TOOLS:
            continue
        env.execute(a["name"], a.get("kwargs") or {})
    return env.state_hash()


def _norm(s: str) -> str:
    return s.lower().replace(",", "")


def outputs_missing(outputs: list[str], replies: list[str]) -> list[str]:
    texts = [_norm(r or "") for r in replies]
    return [o for o in outputs if not any(_norm(o) in t for t in texts)]


def _canon_args(kwargs: Any) -> str:
    return json.dumps(kwargs if isinstance(kwargs, dict) else {}, sort_keys=True, default=str)


def diagnostics(task: Task, traj: dict[str, Any]) -> dict[str, Any]:
    """Graded per-task metrics, NOT part of the official reward, to tell weak agents apart.

    As tau2's ACTION component: a gold action (reads and writes; the terminate tool excluded) counts as done
    when some call of the agent has its name (``action_name_recall``) or its name and arguments
    (``action_recall``), in any order and any number of times; ``output_recall`` is the share of required
    outputs said. A metric over an empty gold set is ``None``.
    """
    gold = [a for a in task.actions if a["name"] not in TERMINATE_TOOLS]
    got = traj.get("actions", []) or []
    names = {a.get("name") for a in got}
    exact = {(a.get("name"), _canon_args(a.get("kwargs"))) for a in got}
    ratio = lambda a, b: a / b if b else None  # noqa: E731
    missing = outputs_missing(task.outputs, traj.get("replies", []))
    return {"action_name_recall": ratio(sum(a["name"] in names for a in gold), len(gold)),
            "action_recall": ratio(sum((a["name"], _canon_args(a.get("kwargs"))) in exact for a in gold), len(gold)),
            "output_recall": ratio(len(task.outputs) - len(missing), len(task.outputs))}


def assistant_turns(traj: dict[str, Any]) -> int:
    """The paper's efficiency measure (§7.1): assistant turns in the episode, i.e. assistant messages (one
    message with several tool calls is one turn; each text reply is one)."""
    return sum(1 for m in traj.get("messages") or [] if isinstance(m, dict) and m.get("role") == "assistant")


def score_tau(task: Task, traj: dict[str, Any]) -> dict[str, Any]:
    reasons: list[str] = []
    term = traj.get("termination", "")
    if term not in FINISHED:
        reasons.append(f"episode not finished: {term}")
    h_agent = replay_hash(task.domain, traj.get("actions", []))
    h_gold = replay_hash(task.domain, task.actions)
    db_ok = h_agent == h_gold
    if not db_ok:
        reasons.append("database differs from the gold replay")
    missing = outputs_missing(task.outputs, traj.get("replies", []))
    if missing:
        reasons.append("required outputs not said: " + ", ".join(missing))
    ok = not reasons
    return {"task_id": task.task_id, "category": task.domain, "trial": traj.get("trial", 0), "correct": ok,
            "score": 1.0 if ok else 0.0, "reasons": reasons, "db_match": db_ok, "outputs_ok": not missing,
            "termination": term, "assistant_turns": assistant_turns(traj),
            "diagnostics": diagnostics(task, traj)}  # graded, not official


def pass_hat_k(successes: dict[str, int], n: int, k: int) -> float:
    """pass^k = mean over tasks of C(c_t, k) / C(n, k): the chance that k i.i.d. trials all succeed."""
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}")
    if not successes:
        return 0.0
    return sum(comb(c, k) / comb(n, k) for c in successes.values()) / len(successes)
