"""Training rows and teacher-forced gold rows put a call's arguments in its tool's schema order, whatever order the
generator wrote them in: JSON key order carries no meaning, and the two methods' generators write it differently
(the rules MAS assistant in the order the user mentioned the values)."""
from __future__ import annotations

from toolace_mt.schema import Dialogue
from toolace_mt.training.data import dialogue_to_rows

TOOL = {"type": "function", "function": {"name": "transfer", "description": "Move money.", "parameters": {
    "type": "object", "properties": {"from_account": {"type": "string"}, "to_account": {"type": "string"},
                                     "amount": {"type": "number"}}, "required": ["from_account", "to_account"]}}}
LATE = {"type": "function", "function": {"name": "freeze", "description": "Freeze an account.", "parameters": {
    "type": "object", "properties": {"account_id": {"type": "string"}, "reason": {"type": "string"}}}}}


def _call(i, name, args):
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": args}}]}


def _dialogue():
    return Dialogue.model_validate({"id": "d", "tools": [TOOL], "meta": {"tool_updates": [{"at": 4, "tools": [LATE]}]},
                                    "messages": [
        {"role": "user", "content": "Move 5 from A1 to A2."},
        _call(1, "transfer", {"amount": 5, "to_account": "A2", "from_account": "A1", "note": "x"}),
        {"role": "tool", "tool_call_id": "c1", "name": "transfer", "content": "{}"},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": "Freeze A1, it was stolen."},
        _call(2, "freeze", {"reason": "stolen", "account_id": "A1"}),
        {"role": "tool", "tool_call_id": "c2", "name": "freeze", "content": "{}"},
        {"role": "assistant", "content": "Frozen."}]})


def test_arguments_follow_schema_order_in_every_row_including_tools_that_arrive_later():
    d = _dialogue()
    rows = dialogue_to_rows(d)
    assert len(rows) == 2  # one row per tool list
    calls = [tc["function"] for m in rows[-1]["messages"] for tc in m.get("tool_calls") or []]
    # keys the schema names first, in its order; an unknown key keeps its place after them
    assert list(calls[0]["arguments"]) == ["from_account", "to_account", "amount", "note"]
    assert list(calls[1]["arguments"]) == ["account_id", "reason"]
    assert calls[0]["arguments"] == {"amount": 5, "to_account": "A2", "from_account": "A1", "note": "x"}
    # the dialogue itself is not changed
    assert list(d.messages[1].tool_calls[0].arguments) == ["amount", "to_account", "from_account", "note"]
