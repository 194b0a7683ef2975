"""Tool calls written as text: Hermes, Llama-3.1 JSON, pythonic, auto; unparseable text stays text."""
from __future__ import annotations

import pytest

from toolace_mt.llm.toolparse import parse_tool_calls


def _nargs(calls):
    return [(c["function"]["name"], c["function"]["arguments"]) for c in calls]


def test_hermes_single_parallel_and_content():
    text = ('Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
            '<tool_call>{"name": "send", "arguments": "{\\"to\\": \\"Ann\\"}"}</tool_call>')
    content, calls, errors = parse_tool_calls(text, "hermes")
    assert content == "Let me check." and errors == []
    assert _nargs(calls) == [("get_weather", {"city": "Oslo"}), ("send", {"to": "Ann"})]
    assert [c["id"] for c in calls] == ["call_0", "call_1"] and all(c["type"] == "function" for c in calls)


def test_hermes_unterminated_and_broken_blocks():
    _, calls, errors = parse_tool_calls('<tool_call>{"name": "f", "arguments": {}}', "hermes")
    assert _nargs(calls) == [("f", {})] and errors == []
    content, calls, errors = parse_tool_calls('ok <tool_call>{"name": "f", "arguments": {"a": 1</tool_call>', "hermes")
    assert calls == [] and len(errors) == 1 and "<tool_call>" in content  # kept as text, with a reason
    _, calls, errors = parse_tool_calls('<tool_call>{"arguments": {}}</tool_call>', "hermes")
    assert calls == [] and "no name" in errors[0]
    _, calls, errors = parse_tool_calls('<tool_call>{"name": "f", "arguments": [1]}</tool_call>', "hermes")
    assert calls == [] and "must be an object" in errors[0]


def test_llama3_json_forms():
    assert _nargs(parse_tool_calls('{"name": "f", "parameters": {"x": 1}}', "llama3")[1]) == [("f", {"x": 1})]
    assert _nargs(parse_tool_calls('<|python_tag|>{"name": "f", "parameters": {}}; {"name": "g", "parameters": {"y": "z"}}',
                                   "llama3")[1]) == [("f", {}), ("g", {"y": "z"})]
    assert _nargs(parse_tool_calls('[{"name": "f", "arguments": {"x": 1}}]', "llama3")[1]) == [("f", {"x": 1})]
    content, calls, errors = parse_tool_calls("The weather is fine.", "llama3")
    assert (content, calls, errors) == ("The weather is fine.", [], [])
    content, calls, errors = parse_tool_calls('{"name": "f", "parameters": {', "llama3")
    assert calls == [] and errors and content == '{"name": "f", "parameters": {'


def test_pythonic():
    content, calls, errors = parse_tool_calls("[get_weather(city='Oslo'), send(to='Ann', amount=5.5)]", "pythonic")
    assert content == "" and errors == []
    assert _nargs(calls) == [("get_weather", {"city": "Oslo"}), ("send", {"to": "Ann", "amount": 5.5})]
    content, calls, errors = parse_tool_calls("[f(x=__import__('os'))]", "pythonic")  # never evaluated
    assert calls == [] and errors and content.startswith("[f(")
    assert parse_tool_calls("I cannot do that.", "pythonic") == ("I cannot do that.", [], [])


@pytest.mark.parametrize("text,expected", [
    ('<tool_call>{"name": "a", "arguments": {}}</tool_call>', [("a", {})]),
    ('{"name": "a", "parameters": {"k": 2}}', [("a", {"k": 2})]),
    ("[a(k=2)]", [("a", {"k": 2})]),
    ('[{"name": "a", "arguments": {"k": 2}}]', [("a", {"k": 2})]),
    ("```python\n[a(k=2)]\n```", [("a", {"k": 2})]),
    ("Just words.", []),
    ("[1, 2, 3]", []),
    ("", []),
])
def test_auto_detects_format(text, expected):
    content, calls, errors = parse_tool_calls(text, "auto")
    assert _nargs(calls) == expected
    if not expected:
        assert content == text.strip()


@pytest.mark.parametrize("junk", ["<tool_call>", "<tool_call></tool_call>", "[", "{", "[f(", "[f(**x)]", "<|python_tag|>",
                                  "[" * 200 + "]" * 200, "[f(a=" + "[" * 500 + "]" * 500 + ")]", "\x00", "}{",
                                  '{"name": 1}', '[{"name": "f"}, 3]'])
def test_never_raises_on_junk(junk):
    for fmt in ("auto", "hermes", "llama3", "pythonic"):
        content, calls, errors = parse_tool_calls(junk, fmt)
        assert isinstance(content, str) and isinstance(calls, list) and isinstance(errors, list)


def test_unknown_format_is_a_caller_error():
    with pytest.raises(ValueError, match="unknown tool-call format"):
        parse_tool_calls("x", "xml")
