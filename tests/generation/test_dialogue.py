"""The typed working dialogue: JSON only at the stage boundary, and the round trip is exact."""
from __future__ import annotations

import json

import pytest

from toolace_mt.generation.config import parse_recipe
from toolace_mt.generation.dialogue import Failure, ToolUpdate, TurnTag, WorkDialogue
from toolace_mt.generation.plan import TaskPlan
from toolace_mt.generation.run import run_generation


@pytest.mark.parametrize("method,engine", [("toolace_mt", "rules"), ("toolace_mt", "llm"), ("mas", "rules"),
                                           ("mas", "llm")])
def test_every_stage_record_round_trips_byte_for_byte(tmp_path, method, engine):
    """Each stage file (what resume reads back) is the JSON of a `WorkDialogue` and nothing is lost or reordered."""
    raw = {"method": method, "engine": engine, "domains": "all", "n_dialogues": 6, "seed": 3, "batch_size": 3,
           "injections": [1, 3], "refinement_steps": 2, "progress": False}
    if engine == "llm":
        raw["llm"] = {"backend": "simulated", "model": "rules"}
    if method == "mas":
        raw.pop("refinement_steps")
    run_generation(parse_recipe(raw), tmp_path / "run")
    lines = [ln for f in sorted((tmp_path / "run" / "stages").rglob("*.jsonl")) for ln in f.read_text().splitlines()]
    assert len(lines) >= 12
    for ln in lines:
        assert json.dumps(WorkDialogue.from_dict(json.loads(ln)).to_dict(), ensure_ascii=False) == ln


def _dialogue() -> WorkDialogue:
    class Cfg:
        engine = "rules"

    plan = TaskPlan(domain="banking", state_seed=1, tools=[], subtasks=[], injections=[], seed=7)
    return WorkDialogue.new("d1", [], plan, 0, Cfg, "test")


def test_edits_keep_messages_tags_and_tool_updates_aligned():
    d = _dialogue()
    q = d.append({"role": "user", "content": "q"}, "query", 0)
    d.append({"role": "assistant", "content": "r"}, "reply", 0)
    d.tool_updates.append(ToolUpdate(at=1, tools=[{"function": {"name": "x"}}]))
    uid_reply = d.turns[1].uid
    d.replace(q, [({"role": "user", "content": "a"}, "clarify_ask", 0), ({"role": "assistant", "content": "b"},
                  "clarify_question", 0), ({"role": "user", "content": "c"}, "clarify_answer", 0)])
    assert [t.kind for t in d.turns] == ["clarify_ask", "clarify_question", "clarify_answer", "reply"]
    assert len(d.messages) == len(d.turns) == 4 and d.tool_updates[0].at == 3  # shifted with its message
    assert d.index_of_uid(uid_reply) == 3 and d.index_of_uid(999) is None
    assert len({t.uid for t in d.turns}) == 4 and d.next_call_ids(2) == ["call_1", "call_2"]
    d.fail("inject", "x", "first")
    d.fail("verify", "y", "second")
    assert d.failure == Failure("inject", "x", "first")
    row = d.to_dict()
    assert row["meta"]["turns"][0] == {"k": "clarify_ask", "t": 0, "u": d.turns[0].uid}
    assert row["meta"]["failure"] == {"stage": "inject", "kind": "x", "message": "first"}
    assert WorkDialogue.from_dict(row).to_dict() == row
    d.fill_empty()  # it has messages: nothing changes
    assert len(d.messages) == 4


def test_meta_keys_are_written_once_set_in_that_order_and_unknown_keys_survive():
    d = _dialogue()
    assert "next_call" not in d.to_dict()["meta"] and "simulated" not in d.to_dict()["meta"]
    d.simulated = True
    d.next_call_ids()
    assert list(d.to_dict()["meta"])[-2:] == ["simulated", "next_call"]
    row = d.to_dict()
    row["meta"]["from_elsewhere"] = {"a": 1}
    back = WorkDialogue.from_dict(row)
    assert back.extra == {"from_elsewhere": {"a": 1}} and back.to_dict() == row
    d.fill_empty()
    assert d.turns == [TurnTag("query", 0, 0), TurnTag("reply", 0, -1)] and len(d.messages) == 2


def test_typed_records_round_trip_exactly():
    """Each record type's JSON form and back is the identity (key order included), with and without its
    optional keys: what makes the stage files byte-identical."""
    from toolace_mt.generation.dialogue import (AnswerRepair, InjectionRecord, MasCounters, Refinement,
                                                RefinementStep, SkippedInjection, Verification)

    rows = [
        (InjectionRecord, {"type": "clarification", "uid": 4, "t": 1, "tool": "pay", "param": "amount", "value": 5,
                           "step_call": [0, 0], "uids": [9, 10, 11]}),
        (InjectionRecord, {"type": "error_simulation", "uid": 7, "call_index": 2, "tool": "pay", "param": "to",
                           "failed_call_id": "call_3", "corrected_call_id": "call_4", "uids": [12, 13],
                           "positions": [5, 6]}),
        (RefinementStep, {"step": 1, "masked": [2, 5], "accepted": True, "judge": "rules", "reason": "ok"}),
        (Refinement, {"steps": [{"step": 1, "masked": [2], "accepted": False, "judge": "llm", "reason": "worse"}],
                      "edit_log": [2, 9], "exhausted": True, "edited_positions": [1]}),
        (SkippedInjection, {"type": "long_context", "reason": "no suitable turn"}),
        (AnswerRepair, {"stage": "refine", "repairs": "json_repair", "truncated": True}),
        (MasCounters, {"steps": 7, "stop": None, "user_turns": 2}),
        (MasCounters, {"steps": 9, "stop": "satisfied", "user_turns": 3, "n_messages": 12}),
        (Verification, {"passed": False, "reasons": ["replay: x"], "checks": {"format": True, "replay": False}}),
    ]
    for cls, js in rows:
        back = cls.from_dict(js).to_dict()
        assert json.dumps(back) == json.dumps(js), cls.__name__
    rec = InjectionRecord.from_dict(rows[1][1])
    assert rec.subtask is None and rec.details["failed_call_id"] == "call_3" and rec.positions == [5, 6]


def test_a_finished_row_is_read_tolerantly_and_written_back_unchanged():
    """`WorkDialogue.read` (datasets on disk, other generators): a meta value that is not its type's JSON stays
    raw, the row writes back byte for byte, and verification rejects it with a reason instead of a traceback."""
    from toolace_mt.generation.verify import verify_dialogue

    row = {"id": "x", "tools": [], "messages": [{"role": "user", "content": "hi"},
                                                {"role": "assistant", "content": "hello"}],
           "meta": {"domain": "banking", "turns": [{"k": "query"}], "injections": "oops", "failure": ["bad"],
                    "plan": {"domain": "banking", "state_seed": 3}, "refinement": {"steps": 5}, "state_seed": 3}}
    w = WorkDialogue.read(json.loads(json.dumps(row)))
    assert json.dumps(w.to_dict()) == json.dumps(row)
    assert w.turns == [] and w.injections == [] and w.failure is None and w.plan is None
    assert set(w.unreadable()) == {"turns", "injections", "failure", "plan", "refinement"}
    assert w.plan_json() == {"domain": "banking", "state_seed": 3}  # another generator's plan, for replay
    v = verify_dialogue(row)
    assert not v.passed and v.checks["injections"] is False and v.checks["generation"] is False
    assert "injections: the recorded turns and injections cannot be read" in v.reasons
    assert row["meta"]["verification"] == v.to_dict()  # the verdict goes back into the row, as JSON
    # a typed value set later replaces the raw one
    w.failure = Failure("verify", "k", "m")
    assert w.to_dict()["meta"]["failure"] == {"stage": "verify", "kind": "k", "message": "m"}
    assert "failure" not in w.unreadable()
