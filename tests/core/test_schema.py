"""Dialogue validation: a valid dialogue passes; each kind of malformed dialogue gives a precise problem."""
from __future__ import annotations

import copy
import json

import pytest

from toolace_mt.envs import get_env
from toolace_mt.schema import Dialogue, DialogueError, check_dialogue, validate_dialogue


def _tools(*names):
    return get_env("banking").tool_schemas(list(names))


def _call(cid, name, args):
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def valid() -> dict:
    return {
        "id": "d1",
        "tools": _tools("get_balance", "list_accounts"),
        "messages": [
            {"role": "system", "content": "You are a bank assistant."},
            {"role": "user", "content": "What's the balance of ACC12345?"},
            {"role": "assistant", "content": None, "tool_calls": [_call("c1", "get_balance", {"account_id": "ACC12345"})]},
            {"role": "tool", "tool_call_id": "c1", "name": "get_balance", "content": '{"balance": 10.0}'},
            {"role": "assistant", "content": "You have $10."},
            {"role": "user", "content": "And my accounts?"},
            {"role": "assistant", "content": None,
             "tool_calls": [_call("c2", "list_accounts", {}), _call("c3", "get_balance", {"account_id": "ACC1"})]},
            {"role": "tool", "tool_call_id": "c3", "content": "{}"},
            {"role": "tool", "tool_call_id": "c2", "content": "{}"},
            {"role": "assistant", "content": "Done."},
        ],
        "meta": {},
    }


def problems(d):
    return validate_dialogue(d)


def only(d, code, index=None):
    ps = problems(d)
    codes = [p.code for p in ps]
    assert code in codes, f"expected {code}, got {[str(p) for p in ps]}"
    p = next(p for p in ps if p.code == code)
    if index is not None:
        assert p.index == index, str(p)
    text = str(p)
    assert repr(p.dialogue_id) in text and (f"message {p.index}" in text if p.index >= 0 else "dialogue" in text)
    return p


def test_valid_dialogue_passes_both_forms():
    d = valid()
    assert problems(d) == []
    dlg = check_dialogue(d)
    # the OpenAI wire form (arguments as JSON strings) validates too and round-trips
    wire = dlg.to_openai()
    assert isinstance(wire["messages"][2]["tool_calls"][0]["function"]["arguments"], str)
    back = Dialogue.from_dict(wire)
    assert problems(back) == [] and back.to_dict() == dlg.to_dict()


def test_valid_without_system_and_with_tool_update():
    d = valid()
    d["messages"] = d["messages"][1:]
    assert problems(d) == []
    # a tool that becomes available later may be called at or after its update index
    d = valid()
    d["tools"] = _tools("get_balance")
    d["meta"]["tool_updates"] = [{"at": 5, "tools": _tools("list_accounts")}]
    assert problems(d) == []


@pytest.mark.parametrize("mutate,code,index", [
    # role order variants
    (lambda d: d["messages"].insert(2, {"role": "user", "content": "hello?"}), "role_order", 2),
    (lambda d: d["messages"].insert(1, {"role": "assistant", "content": "Hi!"}), "role_order", 1),
    (lambda d: d["messages"].insert(5, {"role": "assistant", "content": "Anything else?"}), "role_order", 5),
    (lambda d: d["messages"].insert(3, {"role": "system", "content": "late system"}), "role_order", 3),
    (lambda d: d["messages"].insert(4, {"role": "user", "content": "too early"}), "role_order", 4),
    (lambda d: d["messages"].insert(5, {"role": "tool", "tool_call_id": "c1", "content": "{}"}), "role_order", 5),
    # calls
    (lambda d: d["messages"][2]["tool_calls"][0]["function"].update(name="wire_money"), "unknown_tool", 2),
    (lambda d: d["messages"][2]["tool_calls"][0]["function"].update(arguments={"account_id": 12}), "bad_arguments", 2),
    (lambda d: d["messages"][2]["tool_calls"][0]["function"].update(arguments={}), "bad_arguments", 2),
    (lambda d: d["messages"][2]["tool_calls"][0]["function"].update(arguments={"account_id": "A", "x": 1}),
     "bad_arguments", 2),
    (lambda d: d["messages"].pop(3), "unanswered_call", 3),
    (lambda d: d["messages"][3].update(tool_call_id="zz"), "unmatched_tool_call_id", 3),
    (lambda d: d["messages"][3].pop("tool_call_id"), "missing_tool_call_id", 3),
    (lambda d: d["messages"][3].update(name="list_accounts"), "tool_name_mismatch", 3),
    (lambda d: d["messages"][6]["tool_calls"][1].update(id="c2"), "duplicate_call_id", 6),
    # endings and empties
    (lambda d: d["messages"].pop(), "bad_ending", None),
    (lambda d: d["messages"].append({"role": "user", "content": "bye"}), "bad_ending", 10),
    (lambda d: d["messages"][4].update(content=None), "empty_message", 4),
    (lambda d: d["messages"][3].update(content=None), "empty_message", 3),
    (lambda d: d.update(messages=[]), "empty", -1),
    # tools
    (lambda d: d["tools"][0]["function"].update(parameters={"type": "object", "properties": {"a": {"type": "strng"}}}),
     "bad_tool_schema", -1),
    (lambda d: d["tools"].append(copy.deepcopy(d["tools"][0])), "duplicate_tool", -1),
])
def test_malformed(mutate, code, index):
    d = valid()
    mutate(d)
    p = only(d, code, index)
    assert p.detail


def test_unknown_tool_message_says_why():
    d = valid()
    d["messages"][2]["tool_calls"][0]["function"]["name"] = "wire_money"
    assert "not a tool of this dialogue" in only(d, "unknown_tool").detail
    # a tool listed in a later update: "not available yet"
    d = valid()
    d["tools"] = _tools("get_balance")
    d["meta"]["tool_updates"] = [{"at": 7, "tools": _tools("list_accounts")}]
    p = only(d, "unknown_tool", 6)
    assert "not available yet" in p.detail and "list_accounts" in p.detail


def test_bad_arguments_detail_names_call_tool_and_field():
    d = valid()
    d["messages"][2]["tool_calls"][0]["function"]["arguments"] = {"account_id": 12}
    p = only(d, "bad_arguments", 2)
    assert "c1" in p.detail and "get_balance" in p.detail and "account_id" in p.detail
    d["messages"][2]["tool_calls"][0]["function"]["arguments"] = {}
    assert "required" in only(d, "bad_arguments", 2).detail


def test_arguments_string_not_json_is_reported_not_raised():
    d = valid()
    d["messages"][2]["tool_calls"][0]["function"]["arguments"] = "{account_id: ACC1"
    ps = problems(d)
    assert len(ps) == 1 and ps[0].code == "malformed" and ps[0].index == -1
    assert "not valid JSON" in ps[0].detail and "d1" in str(ps[0])
    # a JSON string that is valid is accepted (OpenAI wire form)
    d["messages"][2]["tool_calls"][0]["function"]["arguments"] = json.dumps({"account_id": "ACC1"})
    assert problems(d) == []
    # a JSON string that is not an object is rejected
    d["messages"][2]["tool_calls"][0]["function"]["arguments"] = "[1, 2]"
    assert problems(d)[0].code == "malformed"


def test_bad_role_is_malformed():
    d = valid()
    d["messages"][1]["role"] = "human"
    ps = problems(d)
    assert ps and ps[0].code == "malformed"


def test_check_dialogue_raises_with_every_problem():
    d = valid()
    d["messages"][2]["tool_calls"][0]["function"]["name"] = "wire_money"
    d["messages"].pop()
    with pytest.raises(DialogueError) as ei:
        check_dialogue(d)
    codes = {p.code for p in ei.value.problems}
    assert {"unknown_tool", "bad_ending"} <= codes
    assert "dialogue 'd1'" in str(ei.value)


def test_tools_schemas_of_envs_validate_in_dialogues():
    """Env-derived schemas (Optional -> nullable, Literal -> enum) accept null and enum values."""
    env = get_env("retail_orders")
    d = {"id": "d2", "tools": env.tool_schemas(["list_retail_orders"]), "messages": [
        {"role": "user", "content": "orders?"},
        {"role": "assistant", "content": None, "tool_calls": [
            _call("a", "list_retail_orders", {"status": None}), _call("b", "list_retail_orders", {"status": "shipped"})]},
        {"role": "tool", "tool_call_id": "a", "content": "{}"},
        {"role": "tool", "tool_call_id": "b", "content": "{}"},
        {"role": "assistant", "content": "ok"}]}
    assert problems(d) == []
    d["messages"][1]["tool_calls"][1]["function"]["arguments"] = {"status": "lost"}
    assert only(d, "bad_arguments", 1)
