"""Deliberately wrong (and some harmless) edits of BFCL trajectories, for the cross-check.

Each perturbation is a small, seeded edit of a trajectory's turns that exercises one part of the verdict:
state (changed/dropped/duplicated calls), the response multiset (reordered, split or early calls), empty
turns, force-termination, unknown functions, bad keyword arguments. Some edits leave the verdict at
"correct" (reordering, splitting steps, extra text steps), which the cross-check needs as much as the wrong
ones.
"""
from __future__ import annotations

import copy
import random
from typing import Any, Callable

Turns = list[list[dict[str, Any]]]


def _step(calls: list[dict[str, Any]]) -> dict[str, Any]:
    return {"content": None, "tool_calls": calls, "raw": "", "parse_errors": [], "results": []}


def _text(content: str = "Done.") -> dict[str, Any]:
    return {"content": content, "tool_calls": [], "raw": content, "parse_errors": [], "results": []}


def _call_sites(turns: Turns) -> list[tuple[int, int, int]]:
    return [(t, s, c) for t, turn in enumerate(turns) for s, st in enumerate(turn)
            for c in range(len(st.get("tool_calls") or []))]


def drop_call(turns: Turns, rng: random.Random) -> bool:
    sites = _call_sites(turns)
    if not sites:
        return False
    t, s, c = rng.choice(sites)
    turns[t][s]["tool_calls"].pop(c)
    return True


def change_arg(turns: Turns, rng: random.Random) -> bool:
    sites = [x for x in _call_sites(turns) if turns[x[0]][x[1]]["tool_calls"][x[2]]["arguments"]]
    if not sites:
        return False
    t, s, c = rng.choice(sites)
    args = turns[t][s]["tool_calls"][c]["arguments"]
    k = rng.choice(sorted(args))
    v = args[k]
    if isinstance(v, bool):
        args[k] = not v
    elif isinstance(v, (int, float)):
        args[k] = v + 1
    elif isinstance(v, str):
        args[k] = v + "_x"
    elif isinstance(v, list):
        args[k] = v[:-1] if v else ["x"]
    else:
        args[k] = "x"
    return True


def swap_calls(turns: Turns, rng: random.Random) -> bool:
    steps = [st for turn in turns for st in turn if len(st.get("tool_calls") or []) >= 2]
    if not steps:
        return False
    rng.choice(steps)["tool_calls"].reverse()
    return True


def duplicate_call(turns: Turns, rng: random.Random) -> bool:
    sites = _call_sites(turns)
    if not sites:
        return False
    t, s, c = rng.choice(sites)
    calls = turns[t][s]["tool_calls"]
    calls.insert(c, copy.deepcopy(calls[c]))
    return True


def unknown_function(turns: Turns, rng: random.Random) -> bool:
    sites = _call_sites(turns)
    if not sites:
        return False
    t, s, c = rng.choice(sites)
    turns[t][s]["tool_calls"][c]["name"] = "no_such_function"
    return True


def extra_kwarg(turns: Turns, rng: random.Random) -> bool:
    sites = _call_sites(turns)
    if not sites:
        return False
    t, s, c = rng.choice(sites)
    turns[t][s]["tool_calls"][c]["arguments"]["bogus_flag"] = True
    return True


def early_calls(turns: Turns, rng: random.Random) -> bool:
    """Move the calls of turn t+1 into turn t (made before the user asked)."""
    cand = [t for t in range(len(turns) - 1) if any(st.get("tool_calls") for st in turns[t + 1])]
    if not cand:
        return False
    t = rng.choice(cand)
    moved = [st for st in turns[t + 1] if st.get("tool_calls")]
    turns[t + 1] = [st for st in turns[t + 1] if not st.get("tool_calls")] or [_text()]
    turns[t] = moved + turns[t]
    return True


def split_steps(turns: Turns, rng: random.Random) -> bool:
    """One call per step (same calls, same order): harmless."""
    changed = False
    for t, turn in enumerate(turns):
        new = []
        for st in turn:
            calls = st.get("tool_calls") or []
            if len(calls) > 1:
                new.extend(_step([c]) for c in calls)
                changed = True
            else:
                new.append(st)
        turns[t] = new
    return changed


def text_steps(turns: Turns, rng: random.Random) -> bool:
    """Insert text-only steps (dropped by the decoder): harmless."""
    for turn in turns:
        turn.insert(0, _text("Let me check."))
    return True


def empty_turn(turns: Turns, rng: random.Random) -> bool:
    cand = [t for t, turn in enumerate(turns) if any(st.get("tool_calls") for st in turn)]
    if not cand:
        return False
    turns[rng.choice(cand)] = [_text("I cannot do that.")]
    return True


def truncate(turns: Turns, rng: random.Random) -> bool:
    if not turns:
        return False
    turns.pop()
    return True


def replay_turn(turns: Turns, rng: random.Random) -> bool:
    """Repeat an earlier turn's calls at the end of a later turn (extra writes / extra results)."""
    cand = [t for t, turn in enumerate(turns) if any(st.get("tool_calls") for st in turn)]
    if len(cand) < 2:
        return False
    a = rng.choice(cand[:-1])
    turns[-1].extend(copy.deepcopy([st for st in turns[a] if st.get("tool_calls")]))
    return True


PERTURBATIONS: dict[str, Callable[[Turns, random.Random], bool]] = {
    f.__name__: f for f in (drop_call, change_arg, swap_calls, duplicate_call, unknown_function, extra_kwarg,
                            early_calls, split_steps, text_steps, empty_turn, truncate, replay_turn)
}


def perturb(traj: dict[str, Any], rng: random.Random, kind: str | None = None) -> tuple[str, dict[str, Any]]:
    """A perturbed copy of `traj` and the name of the edit (falls back to `truncate` when `kind` does not apply)."""
    kinds = [kind] if kind else list(PERTURBATIONS)
    rng.shuffle(kinds)
    for k in kinds + ["truncate"]:
        new = copy.deepcopy(traj)
        if PERTURBATIONS[k](new["turns"], rng):
            new["perturbation"] = k
            return k, new
    new = copy.deepcopy(traj)
    new["perturbation"] = "none"
    return "none", new


# ---- single-turn answers (a list of {"name", "arguments"} calls) ----------------------------------------------
Calls = list[dict[str, Any]]


def _wrong(v: Any) -> Any:
    if isinstance(v, bool):
        return not v
    if isinstance(v, (int, float)):
        return v + 7
    if isinstance(v, str):
        return v + "_x"
    if isinstance(v, list):
        return v[:-1] if v else ["x"]
    return "x"


def st_wrong_value(calls: Calls, rng: random.Random) -> bool:
    sites = [(i, k) for i, c in enumerate(calls) for k in c["arguments"]]
    if not sites:
        return False
    i, k = rng.choice(sites)
    calls[i]["arguments"][k] = _wrong(calls[i]["arguments"][k])
    return True


def st_missing_arg(calls: Calls, rng: random.Random) -> bool:
    sites = [(i, k) for i, c in enumerate(calls) for k in c["arguments"]]
    if not sites:
        return False
    i, k = rng.choice(sites)
    del calls[i]["arguments"][k]
    return True


def st_extra_call(calls: Calls, rng: random.Random) -> bool:
    if not calls:
        return False
    calls.append(copy.deepcopy(rng.choice(calls)))
    return True


def st_wrong_function(calls: Calls, rng: random.Random) -> bool:
    if not calls:
        return False
    rng.choice(calls)["name"] += "_v2"
    return True


def st_reorder(calls: Calls, rng: random.Random) -> bool:
    if len(calls) < 2:
        return False
    calls.reverse()
    return True


def st_extra_arg(calls: Calls, rng: random.Random) -> bool:
    if not calls:
        return False
    rng.choice(calls)["arguments"]["unexpected_param"] = 1
    return True


def st_no_call(calls: Calls, rng: random.Random) -> bool:
    calls.clear()
    return True


SINGLE_PERTURBATIONS: dict[str, Callable[[Calls, random.Random], bool]] = {
    f.__name__[3:]: f for f in (st_wrong_value, st_missing_arg, st_extra_call, st_wrong_function, st_reorder,
                                st_extra_arg, st_no_call)}


def perturb_single(calls: Calls, rng: random.Random, kind: str | None = None) -> tuple[str, Calls]:
    """A seeded edit of a single-turn answer: (kind, edited copy); 'none' when the kind does not apply."""
    out = copy.deepcopy(calls)
    kind = kind or rng.choice(sorted(SINGLE_PERTURBATIONS))
    return (kind if SINGLE_PERTURBATIONS[kind](out, rng) else "none"), out
