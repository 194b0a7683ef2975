"""Seeded perturbations of saved official-tau trajectories (tau2 messages as JSON), for the check that the suite's
per-task verdicts equal tau2's own re-scoring: drop one of the agent's calls (a write when there is one; with its
tool answer), change one
argument of a write call, add an extra write call (a gold write of another task of the domain). The perturbed
messages stay a well-formed tau2 conversation whose tool messages carry the answers the edited calls really get
(tau2's evaluator checks that).
"""
from __future__ import annotations

import copy
import random
from typing import Any, Callable, Optional

KINDS = ("drop_action", "wrong_argument", "extra_write")


def _calls(msgs: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(message index, call index) of every agent tool call."""
    return [(i, j) for i, m in enumerate(msgs) if m.get("role") == "assistant"
            for j, _ in enumerate(m.get("tool_calls") or [])]


def _wrong(v: Any) -> Any:
    if isinstance(v, bool):
        return not v
    if isinstance(v, (int, float)):
        return v + 1
    if isinstance(v, list):
        return v[:-1] if v else ["x"]
    if isinstance(v, dict):
        return {}
    return f"{v}_x"


def perturb(traj: dict[str, Any], kind: str, writes: set[str], rng: random.Random,
            donor: Optional[dict[str, Any]] = None) -> Optional[dict[str, Any]]:
    """One perturbed copy of `traj` (None when the kind does not apply). `writes`: the domain's write tools;
    `donor`: a write call ``{"name", "arguments"}`` (from another task) for ``extra_write``."""
    t = copy.deepcopy(traj)
    msgs = t["messages"]
    calls = _calls(msgs)
    if kind == "drop_action":
        if not calls:
            return None
        w = [(i, j) for i, j in calls if msgs[i]["tool_calls"][j]["name"] in writes]
        i, j = rng.choice(w or calls)  # a write when there is one: dropping it is the mistake that matters
        call = msgs[i]["tool_calls"].pop(j)
        t["messages"] = [m for k, m in enumerate(msgs) if not (m.get("role") == "tool" and m.get("id") == call["id"])
                         and not (k == i and not m.get("tool_calls") and not m.get("content"))]
        for m in t["messages"]:
            if m.get("role") == "assistant" and m.get("tool_calls") == []:
                m["tool_calls"] = None
    elif kind == "wrong_argument":
        cands = [(i, j) for i, j in calls if msgs[i]["tool_calls"][j]["name"] in writes
                 and msgs[i]["tool_calls"][j]["arguments"]]
        if not cands:
            return None
        i, j = rng.choice(cands)
        args = msgs[i]["tool_calls"][j]["arguments"]
        key = rng.choice(sorted(args))
        args[key] = _wrong(args[key])
    elif kind == "extra_write":
        if donor is None:
            return None
        at = max([i for i, m in enumerate(msgs) if m.get("role") in ("assistant", "tool")] or [0])
        cid = f"call_extra_{rng.randrange(10 ** 6)}"
        msgs[at + 1:at + 1] = [
            {"role": "assistant", "content": None, "tool_calls": [{"id": cid, "name": donor["name"], "arguments":
                                                                  copy.deepcopy(donor["arguments"]),
                                                                  "requestor": "assistant"}]},
            {"role": "tool", "id": cid, "content": "", "requestor": "assistant", "error": False}]
    else:
        raise ValueError(f"unknown perturbation {kind!r}; known: {KINDS}")
    t["perturbation"] = kind
    return t


def perturbed_set(trajs: list[dict[str, Any]], tasks: list[dict[str, Any]], writes: dict[str, set[str]],
                  replay: Callable[[str, list], list], seed: int = 0) -> list[dict[str, Any]]:
    """Every applicable perturbation of every trajectory, seeded; each keeps its task id and gets a distinct
    trial number (so tau2's result file holds them side by side). `replay(domain, messages)` puts the answers
    the edited calls really get into their tool messages (`official.replay_tool_answers`)."""
    rng = random.Random(seed)
    by_id = {t["id"]: t for t in tasks}
    donors: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        crit = t["tau2_task"].get("evaluation_criteria") or {}
        for a in crit.get("actions") or []:
            if a["name"] in writes[t["category"]]:
                donors.setdefault(t["category"], []).append({"task": t["id"], "name": a["name"],
                                                             "arguments": a["arguments"]})
    out = []
    for tr in trajs:
        dom = by_id[tr["task_id"]]["category"]
        pool = [d for d in donors.get(dom, []) if d["task"] != tr["task_id"]]
        for n, kind in enumerate(KINDS):
            p = perturb(tr, kind, writes[dom], rng, donor=rng.choice(pool) if pool else None)
            if p is not None:
                p["messages"] = replay(dom, p["messages"])
                p["trial"] = 100 * (tr.get("trial", 0) + 1) + n
                out.append(p)
    return out
