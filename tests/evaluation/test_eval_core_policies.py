"""Evaluation core: policy configs, the oracle/null anchors, and text -> PolicyOutput never crashing."""
from __future__ import annotations

import random

import pytest

from toolace_mt.config import RecipeError
from toolace_mt.evaluation.policies import NULL_ANSWER, PolicyConfig, make_policy
from toolace_mt.evaluation.policies.prompting import chat_messages, text_to_output, tool_prompt
from toolace_mt.evaluation.policy import PolicyInput


def test_oracle_replays_every_gold_shape():
    p = make_policy({"kind": "oracle"})
    calls = [{"name": "f", "arguments": {"a": [1, 2]}}]
    outs = p.act([PolicyInput([], [], gold=calls), PolicyInput([], [], gold=None), PolicyInput([], [], gold="hi"),
                  PolicyInput([], [], gold={"content": "ok", "tool_calls": calls})])
    assert outs[0].tool_calls == calls and outs[0].tool_calls[0]["arguments"] is not calls[0]["arguments"]
    assert outs[1].tool_calls == [] and outs[1].content == ""
    assert outs[2].content == "hi" and not outs[2].tool_calls
    assert outs[3].content == "ok" and outs[3].tool_calls == calls


def test_null_never_calls():
    p = make_policy(PolicyConfig(kind="null"))
    outs = p.act([PolicyInput([{"role": "user", "content": "do it"}], [], gold=[{"name": "f", "arguments": {}}])] * 3)
    assert all(o.tool_calls == [] and o.content == NULL_ANSWER for o in outs)


def test_policy_config_is_strict():
    with pytest.raises(RecipeError):
        make_policy({"kind": "oracle", "modle": "x"})
    with pytest.raises(RecipeError):
        make_policy({"kind": "transformers"})  # needs a model
    with pytest.raises(RecipeError):
        make_policy({"kind": "null", "tool_call_format": "native"})


def test_text_to_output_formats():
    o = text_to_output('<tool_call>{"name": "ls", "arguments": {"a": true}}</tool_call>', "auto")
    assert o.tool_calls == [{"name": "ls", "arguments": {"a": True}}]
    o = text_to_output("[cd(folder='x'), ls()]", "pythonic")
    assert [c["name"] for c in o.tool_calls] == ["cd", "ls"] and o.tool_calls[0]["arguments"] == {"folder": "x"}
    o = text_to_output('{"name": "ls", "parameters": {}}', "llama3")
    assert o.tool_calls == [{"name": "ls", "arguments": {}}]
    o = text_to_output("Which folder do you mean?", "auto")
    assert o.tool_calls == [] and o.content == "Which folder do you mean?"


def test_garbage_never_crashes():
    rng = random.Random(0)
    alphabet = list("[](){}<>\"':,=._ abcxyz0123456789\n") + ["<tool_call>", "</tool_call>", "<|python_tag|>",
                                                              "__import__('os')", "name", "arguments"]
    for fmt in ("auto", "hermes", "llama3", "pythonic"):
        for _ in range(300):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
            o = text_to_output(text, fmt)
            assert isinstance(o.tool_calls, list) and o.raw == text
            assert all(isinstance(c["name"], str) and isinstance(c["arguments"], dict) for c in o.tool_calls)


def test_chat_messages_and_prompt():
    msgs = [{"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": '{"a": 1}'}}]}]
    out = chat_messages(msgs, "SYS")
    assert out[0] == {"role": "system", "content": "SYS"}
    assert out[2]["tool_calls"][0]["function"]["arguments"] == {"a": 1} and out[2]["content"] == ""
    tools = [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {}}}]
    assert '"name": "f"' in tool_prompt(tools, "pythonic") and "[func_name1" in tool_prompt(tools, "pythonic")


def test_client_policy_native_and_prompted_with_scripted_backend():
    tools = [{"type": "function", "function": {"name": "ls", "description": "list", "parameters": {"type": "object"}}}]
    native = make_policy({"kind": "openai", "model": "m", "tool_call_format": "native", "extra": {
        "backend": "scripted", "replies": [{"text": "", "tool_calls": [{"name": "ls", "arguments": {"a": True}}]},
                                           "plain answer"]}})
    outs = native.act([PolicyInput([{"role": "user", "content": f"x{i}"}], tools) for i in range(2)])
    assert outs[0].tool_calls == [{"name": "ls", "arguments": {"a": True}}]
    assert outs[1].tool_calls == [] and outs[1].content == "plain answer"
    prompted = make_policy({"kind": "openai", "model": "m", "tool_call_format": "hermes", "extra": {
        "backend": "scripted", "replies": ['<tool_call>{"name": "ls", "arguments": {}}</tool_call>', "<tool_call>{bad"]}})
    outs = prompted.act([PolicyInput([{"role": "user", "content": f"x{i}"}], tools) for i in range(2)])
    assert outs[0].tool_calls == [{"name": "ls", "arguments": {}}]
    assert outs[1].tool_calls == [] and outs[1].parse_errors  # unparseable: a text answer with the reason
