"""Content gate (issue 24 item 6): control characters (other than tab, newline, carriage return), bidi
embedding/override/isolate controls and U+FFFD in user/assistant text or call arguments are refused, with a
reason naming the character and the message; a clean dialogue (RTL marks and line breaks included) passes."""
from __future__ import annotations

import copy
import json

import pytest

from toolace_mt.envs import get_env
from toolace_mt.generation.verify import verify_dialogue
from toolace_mt.generation.verify.rules import content_problems

CONTROL = ["\x00", "\x07", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9f"]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
REPLACEMENT = ["\ufffd"]
BAD = [(c, "control character") for c in CONTROL] + [(c, "bidi control character") for c in BIDI] + \
      [(c, "replacement character") for c in REPLACEMENT]


def _dialogue():
    """A small hand-built dialogue in the project's row format that passes every check."""
    tools = get_env("file_system").tool_schemas(["write_file", "read_file"])
    return {"id": "hand-1", "tools": tools, "meta": {}, "messages": [
        {"role": "user", "content": "Please create /tmp/notes.txt with the text: Buy milk and eggs."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "write_file", "arguments": {"path": "/tmp/notes.txt",
                                                              "content": "Buy milk and eggs."}}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "write_file",
         "content": json.dumps({"path": "/tmp/notes.txt", "bytes": 18, "created": True})},
        {"role": "assistant", "content": "Done: /tmp/notes.txt now holds your note."}]}


def _content_reasons(d):
    v = verify_dialogue(copy.deepcopy(d))
    return v, [r for r in v.reasons if r.startswith("content:")]


def test_clean_dialogue_passes():
    v, reasons = _content_reasons(_dialogue())
    assert v.passed and v.checks["content"] is True, v.reasons


def test_clean_dialogue_with_line_breaks_tabs_and_rtl_marks_passes():
    d = _dialogue()
    # tab, newline, CRLF, and the implicit direction marks LRM/RLM/ALM (chosen: allowed, see rules.BAD_TEXT_CHARS)
    d["messages"][3]["content"] = ("Done: /tmp/notes.txt now holds your note.\n\tLine two.\r\n"
                                   "\u05e9\u05dc\u05d5\u05dd\u200f \u200e\u0645\u0631\u062d\u0628\u0627\u061c")
    d["messages"][1]["tool_calls"][0]["function"]["arguments"]["content"] = "Buy milk and eggs."
    assert content_problems(d) == []
    v, reasons = _content_reasons(d)
    assert reasons == [] and v.checks["content"] is True, v.reasons


def _check_refused(d, i, ch, what):
    v, reasons = _content_reasons(d)
    assert not v.passed and v.checks["content"] is False, v.reasons
    code = f"U+{ord(ch):04X}"
    hit = [r for r in reasons if r.startswith(f"content: message {i}:") and code in r and what in r]
    assert hit, reasons
    assert all(ch not in r for r in v.reasons)  # the reason names the character, never carries it


@pytest.mark.parametrize("ch,what", BAD, ids=lambda x: f"U+{ord(x):04X}" if len(x) == 1 else None)
def test_user_text_refused(ch, what):
    d = _dialogue()
    d["messages"][0]["content"] = d["messages"][0]["content"].replace("with", f"wi{ch}th")
    _check_refused(d, 0, ch, what)


@pytest.mark.parametrize("ch,what", BAD, ids=lambda x: f"U+{ord(x):04X}" if len(x) == 1 else None)
def test_assistant_text_refused(ch, what):
    d = _dialogue()
    d["messages"][3]["content"] = f"Done{ch}: /tmp/notes.txt now holds your note."
    _check_refused(d, 3, ch, what)


@pytest.mark.parametrize("ch,what", BAD, ids=lambda x: f"U+{ord(x):04X}" if len(x) == 1 else None)
def test_call_argument_refused(ch, what):
    d = _dialogue()
    d["messages"][1]["tool_calls"][0]["function"]["arguments"]["content"] = f"Buy milk{ch} and eggs."
    _check_refused(d, 1, ch, what)
    assert any("argument content:" in r for _, r in content_problems(d))


@pytest.mark.parametrize("ch", ["\x1b", "\u202e", "\ufffd"], ids=["control", "bidi", "replacement"])
def test_call_argument_as_json_text_nested_and_keys_refused(ch):
    d = _dialogue()
    fn = d["messages"][1]["tool_calls"][0]["function"]
    # wire form: arguments as a JSON string (the character escaped in it)
    fn["arguments"] = json.dumps({"path": "/tmp/notes.txt", "content": f"Buy milk{ch} and eggs."})
    assert [r for _, r in content_problems(d) if r.startswith("message 1:") and "argument content:" in r]
    # nested values and keys
    fn["arguments"] = {"path": "/tmp/notes.txt", "content": "Buy milk and eggs.",
                       "extra": [{"note": f"x{ch}"}, {f"k{ch}": "v"}]}
    reasons = [r for _, r in content_problems(d)]
    assert any("argument extra[0].note:" in r for r in reasons), reasons
    assert any("argument extra[1]." in r and "(its name)" in r for r in reasons), reasons
    assert all(ch not in r for r in reasons)
    # arguments that are not JSON at all are checked as text
    fn["arguments"] = f"not json {ch}"
    assert any("argument (arguments):" in r for _, r in content_problems(d))


def test_tool_output_is_not_judged_by_this_gate():
    """chosen: the gate covers what a model wrote (user/assistant text, call arguments), not env outputs."""
    d = _dialogue()
    d["messages"][2]["content"] = json.dumps({"path": "/tmp/notes.txt", "bytes": 18, "created": True,
                                              "note": "\u202e"}, ensure_ascii=False)
    assert content_problems(d) == []


def test_reason_counts_several_characters_and_reports_first_position():
    d = _dialogue()
    d["messages"][3]["content"] = "Done: \u202e/tmp/notes.txt\u202c now holds your note.\ufffd"
    (reason,) = [r for _, r in content_problems(d)]
    assert reason.startswith("message 3: assistant text holds a bidi control character U+202E") and \
        "RIGHT-TO-LEFT OVERRIDE" in reason and "at position 6" in reason and "(3 such characters)" in reason
