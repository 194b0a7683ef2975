"""Rules engine: skeletons, every injection type, refinement budgets, single-turn data, verification defects."""
from __future__ import annotations

import copy
import json

import pytest

from toolace_mt.generation.config import parse_recipe
from toolace_mt.generation.injections import injection_types
from toolace_mt.generation.pipeline import run_batch
from toolace_mt.generation.plan import TaskPlan
from toolace_mt.generation.pool import plan_for
from toolace_mt.generation.verify import verify_dialogue
from toolace_mt.schema import Dialogue, validate_dialogue


def cfg_of(**kw):
    base = {"name": "t", "domains": ["banking"], "n_dialogues": 8, "seed": 3, "progress": False}
    base.update(kw)
    return parse_recipe(base)


@pytest.fixture(scope="module")
def default_batch():
    return run_batch(cfg_of(), list(range(8)))


def test_default_batch_is_valid_grounded_and_passes(default_batch):
    for d in default_batch:
        assert validate_dialogue(d) == []
        v = d["meta"]["verification"]
        assert v["passed"], v["reasons"]
        plan = TaskPlan.from_dict(d["meta"]["plan"])
        assert 1 <= len(plan.subtasks) <= 5 and all(1 <= s.n_steps <= 6 for s in plan.subtasks)
        # the user states every value a call uses that no earlier output produced (constraint 2)
        assert sum(m["role"] == "user" for m in d["messages"]) >= len(plan.subtasks)
        assert d["messages"][-1]["role"] == "assistant" and not d["messages"][-1].get("tool_calls")
        assert len(d["meta"]["turns"]) == len(d["messages"])
        # paper §2.2(a): 1-3 injections; a type with no place in the dialogue falls back to another type
        assert 1 <= len(d["meta"]["injections"]) <= 3
        assert len(set(d["meta"]["injection_types"])) == len(d["meta"]["injection_types"])


def test_plans_chain_along_dependencies():
    cfg = cfg_of(n_dialogues=30, injections=[0, 0])
    plans = [plan_for(cfg, i) for i in range(30)]
    chained = 0
    for p in plans:
        assert p.domain == "banking" and p.subtasks
        calls = p.calls()
        from toolace_mt.envs import get_env

        specs = get_env("banking").tool_specs()
        for k, c in enumerate(calls):
            consumed = {specs[c.tool].consumes.get(a) for a in c.arguments} - {None}
            if any(specs[e.tool].produces.keys() & consumed for e in calls[:k]):
                chained += 1
                break
    assert chained >= 15  # most dialogues chain a later call on an earlier output
    # plans are a function of (seed, index) only
    again = [plan_for(cfg, i) for i in (7, 3)]
    assert again[0].to_dict() == plans[7].to_dict() and again[1].to_dict() == plans[3].to_dict()


@pytest.mark.parametrize("itype", injection_types())
def test_each_injection_type_present_and_well_formed(itype):
    cfg = cfg_of(n_dialogues=10, injections=[1, 1], injection_types=[itype], subtasks=[2, 3], steps=[1, 3],
                 refinement_steps=1)
    ds = run_batch(cfg, list(range(10)))
    got = [d for d in ds if d["meta"]["injection_types"] == [itype]]
    assert len(got) >= 5, [d["meta"].get("injections_skipped") for d in ds]
    for d in got:
        assert d["meta"]["verification"]["passed"], d["meta"]["verification"]["reasons"]
        rec = d["meta"]["injections"][0]
        pos = rec["positions"]
        msgs = d["messages"]
        if itype == "clarification":
            ask, q, ans = (msgs[p] for p in pos)
            v = str(rec["value"]).lower()
            assert ask["role"] == "user" and v not in ask["content"].lower()
            assert q["role"] == "assistant" and not q.get("tool_calls")
            assert ans["role"] == "user" and v in ans["content"].lower()
        elif itype == "tool_awareness":
            names = {t["function"]["name"] for t in d["tools"]}
            assert rec["tool"] not in names
            assert d["meta"]["tool_updates"][0]["at"] == pos[2]
            assert msgs[pos[1]]["role"] == "assistant" and not msgs[pos[1]].get("tool_calls")
            dd = Dialogue.model_validate(d)
            assert rec["tool"] not in dd.tools_at(pos[1]) and rec["tool"] in dd.tools_at(pos[2])
        elif itype == "error_simulation":
            out = {m.get("tool_call_id"): m for m in msgs if m["role"] == "tool"}
            assert json.loads(out[rec["failed_call_id"]]["content"])["error"]
            assert "error" not in json.loads(out[rec["corrected_call_id"]]["content"])
            reflect = msgs[pos[1]]
            assert reflect["role"] == "assistant" and reflect["content"] and reflect["tool_calls"]
        elif itype == "non_function_call":
            assert [msgs[p]["role"] for p in pos] == ["user", "assistant", "user"]
            assert not msgs[pos[1]].get("tool_calls")
        elif itype == "long_context":
            assert rec["beyond_paper"] is True
            size = sum(len(m["content"]) for m in msgs if m.get("tool_call_id") in rec["call_ids"])
            assert size >= 600


@pytest.mark.parametrize("steps", [0, 5])
def test_refinement_budget(steps):
    cfg = cfg_of(n_dialogues=6, refinement_steps=steps, injections=[1, 2])
    ds = run_batch(cfg, list(range(6)))
    for d in ds:
        ref = d["meta"]["refinement"]
        assert d["meta"]["verification"]["passed"]
        assert len(ref["steps"]) <= steps
        assert len(ref["edit_log"]) == len(set(ref["edit_log"]))  # no turn edited twice
        if steps == 0:
            assert ref["steps"] == []
    if steps == 5:
        all_steps = [s for d in ds for s in d["meta"]["refinement"]["steps"]]
        assert len(all_steps) >= 6 and any(s["accepted"] for s in all_steps)
        # with refinement, the texts differ from the unrefined run of the same seeds
        base = run_batch(cfg_of(n_dialogues=6, refinement_steps=0, injections=[1, 2]), list(range(6)))
        assert any(a["messages"] != b["messages"] for a, b in zip(ds, base))


def test_single_turn_config():
    cfg = cfg_of(n_dialogues=10, subtasks=[1, 1], steps=[1, 1], injections=[0, 0], refinement_steps=0,
                 domains="all")
    ds = run_batch(cfg, list(range(10)))
    for d in ds:
        assert d["meta"]["verification"]["passed"], d["meta"]["verification"]["reasons"]
        roles = [m["role"] for m in d["messages"]]
        assert roles[0] == "user" and roles.count("user") == 1 and roles[-1] == "assistant"
        assert sum(1 for m in d["messages"] if m.get("tool_calls")) == 1
        assert d["meta"]["injections"] == []


# ------------------------------------------------------------------------------------------------ defects
def _first_call(d, pred=lambda tc: True):
    for i, m in enumerate(d["messages"]):
        for tc in m.get("tool_calls") or []:
            if pred(tc):
                return i, tc
    raise AssertionError("no call")


def _fails(d, check):
    v = verify_dialogue(d)
    assert not v.passed
    assert v.checks[check] is False, (check, v.reasons)
    return v


@pytest.fixture(scope="module")
def good():
    cfg = cfg_of(n_dialogues=4, injections=[0, 0], refinement_steps=0, subtasks=[2, 3])
    ds = run_batch(cfg, list(range(4)))
    d = next(d for d in ds if any(tc["function"]["arguments"] for _, tc in
                                  [(0, tc) for m in d["messages"] for tc in m.get("tool_calls") or []]))
    assert verify_dialogue(copy.deepcopy(d)).passed
    return d


def test_defect_format(good):
    d = copy.deepcopy(good)
    d["messages"].insert(0, {"role": "assistant", "content": "Hi"})
    d["meta"]["turns"].insert(0, {"k": "x", "t": -1, "u": 999})
    _fails(d, "format")


def test_defect_unknown_tool(good):
    d = copy.deepcopy(good)
    _, tc = _first_call(d)
    tc["function"]["name"] = "drop_database"
    _fails(d, "tools_available")


def test_defect_missing_required_argument(good):
    d = copy.deepcopy(good)
    _, tc = _first_call(d, lambda tc: tc["function"]["arguments"])
    tc["function"]["arguments"].pop(next(iter(tc["function"]["arguments"])))
    _fails(d, "required_args")


def test_defect_wrong_argument_type(good):
    d = copy.deepcopy(good)
    _, tc = _first_call(d, lambda tc: any(isinstance(v, str) for v in tc["function"]["arguments"].values()))
    k = next(k for k, v in tc["function"]["arguments"].items() if isinstance(v, str))
    tc["function"]["arguments"][k] = 12345
    _fails(d, "arguments")


def test_defect_ungrounded_id(good):
    d = copy.deepcopy(good)
    _, tc = _first_call(d, lambda tc: any(isinstance(v, str) for v in tc["function"]["arguments"].values()))
    k = next(k for k, v in tc["function"]["arguments"].items() if isinstance(v, str))
    tc["function"]["arguments"][k] = "ZZZ-HALLUCINATED-9"
    v = _fails(d, "grounding")
    assert any("ZZZ-HALLUCINATED-9" in r for r in v.reasons)


def test_defect_tool_error_and_replay_mismatch(good):
    d = copy.deepcopy(good)
    j = next(i for i, m in enumerate(d["messages"]) if m["role"] == "tool")
    d["messages"][j]["content"] = json.dumps({"error": "not_found", "message": "nothing"})
    _fails(d, "tool_errors")
    d = copy.deepcopy(good)
    out = json.loads(d["messages"][j]["content"])
    out["__tampered"] = 1
    d["messages"][j]["content"] = json.dumps(out)
    _fails(d, "replay")


def test_defect_final_state_hash(good):
    d = copy.deepcopy(good)
    d["meta"]["final_state_hash"] = "0" * 64
    _fails(d, "replay")


def test_defect_injection_not_really_there():
    cfg = cfg_of(n_dialogues=4, injections=[1, 1], injection_types=["clarification"], refinement_steps=0)
    d = next(d for d in run_batch(cfg, list(range(4))) if d["meta"]["injections"])
    assert verify_dialogue(copy.deepcopy(d)).passed
    rec = d["meta"]["injections"][0]
    d["messages"][rec["positions"][0]]["content"] += f" It is {rec['value']}."
    _fails(d, "injections")


def test_defect_generation_failure_recorded(good):
    d = copy.deepcopy(good)
    d["meta"]["failure"] = {"stage": "skeleton", "kind": "invalid_json", "message": "x"}
    v = _fails(d, "generation")
    assert any("invalid_json" in r for r in v.reasons)


def test_foreign_dialogue_is_checked_without_plan():
    d = {"id": "x", "tools": [], "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
         "meta": {}}
    v = verify_dialogue(d)
    assert v.passed and v.checks["replay"] is None and v.checks["injections"] is None
