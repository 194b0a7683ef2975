"""Fuzz the LLM boundary: malformed model answers through both methods' `llm` engines (scripted backend) and
through the JSON and tool-call parsers. Seeded and bounded (well under a minute).

Every broken answer must end as a typed failure or a rejected dialogue with its reason: no crash, nothing
kept that should not be, no dialogue lost because another one's answer was bad, and no file with a lone
surrogate or a control character in it.
"""
from __future__ import annotations

import json
import math
import random

import pytest

from fuzz_answers import CLASSES, CLEANED, REFUSED, dirty, mutate, run_class
from toolace_mt.llm.jsonparse import JSON_FAILURES, parse_json_answer
from toolace_mt.llm.toolparse import parse_tool_calls

BASE_ANSWERS = [
    {"user": "Send 20 to Ann please.", "steps": [[{"name": "add_payee", "arguments": {"name": "Ann", "amount": 20}}]],
     "reply": "Done."},
    {"turns": ["I need a transfer.", "Which account?", "Use checking."]},
    {"keep": "new", "reason": "reads better"},
    {"pass": True, "reason": "fine"},
    {"fills": [{"mask": 1, "content": "Sure, here it is."}]},
    {"subtasks": [{"description": "Pay a bill", "tools": ["pay_bill"]}]},
]


@pytest.mark.parametrize("method", ["toolace_mt", "mas"])
@pytest.mark.parametrize("cls", CLASSES)
def test_broken_answers_through_the_llm_engine(method, cls, tmp_path):
    r = run_class(method, cls, tmp_path / "run", n=8, seed=0)
    assert r["error"] is None, r
    assert r["tried"] >= 1 and r["answers_broken"] >= 1, r
    assert r["crashed"] == 0 and r["wrongly_accepted"] == 0, r
    assert r["collateral"] == 0, r  # a good dialogue never pays for a bad one in its batch
    assert r["files_dirty"] == 0, r
    if cls in REFUSED:
        assert r["rejected_with_reason"] == r["tried"], r
    for f in (tmp_path / "run").rglob("*.json*"):
        f.read_text(encoding="utf-8")  # every file is valid UTF-8


@pytest.mark.parametrize("cls", CLASSES)
def test_parser_fuzz(cls):
    """Many broken variants of each base answer straight into `parse_json_answer`."""
    rng = random.Random(f"parser/{cls}")
    n = 0
    for _ in range(40):
        for base in BASE_ANSWERS:
            text, finish = mutate(json.dumps(base), cls, rng)
            ans = parse_json_answer(text, {"type": "object"}, finish_reason=finish)  # never raises
            n += 1
            if cls in REFUSED:
                assert not ans.ok and ans.failure.kind in JSON_FAILURES, (cls, text[:200], ans.value)
                assert ans.failure.message and ans.failure.raw is not None
            else:
                assert ans.ok and not dirty(ans.value), (cls, text[:200], ans)
    assert n == 240


DECOYS = [
    '<tool_call>{"name": "decoy", "name": "add_payee", "arguments": {"amount": 5}}</tool_call>',
    '<tool_call>{"name": "add_payee", "arguments": {"amount": 5, "amount": 500}}</tool_call>',
    '<tool_call>{"name": "add_payee", "arguments": "{\\"amount\\": 5, \\"amount\\": 500}"}</tool_call>',
    '{"name": "decoy", "name": "add_payee", "parameters": {"amount": 5}}',
    '[{"name": "decoy", "name": "add_payee", "arguments": {}}]',
    '<|python_tag|>{"name": "add_payee", "parameters": {"amount": NaN}}',
    '<tool_call>{"name": "add_payee", "arguments": {"amount": Infinity}}</tool_call>',
    '<tool_call>{"name": "add_payee", "arguments": {"amount": 1e999}}</tool_call>',
    "[add_payee(amount=5, amount=500)]",
    "[add_payee(amount=1e999)]",
]


@pytest.mark.parametrize("text", DECOYS)
@pytest.mark.parametrize("fmt", ["auto", "hermes", "llama3", "pythonic"])
def test_ambiguous_or_non_finite_calls_are_never_credited(text, fmt):
    from toolace_mt.evaluation.policies.prompting import text_to_output

    _, calls, errors = parse_tool_calls(text, fmt)
    assert calls == [], (fmt, text, calls)
    if fmt == "auto":
        assert errors
        out = text_to_output(text, "auto")  # what every evaluation suite scores
        assert out.tool_calls == [] and out.parse_errors


def test_clean_calls_still_parse():
    _, calls, errors = parse_tool_calls('<tool_call>{"name": "add_payee", "arguments": {"amount": 5.5}}</tool_call>')
    assert not errors and calls[0]["function"]["arguments"] == {"amount": 5.5}
    _, calls, _ = parse_tool_calls('<tool_call>{"name": "f", "arguments": {"t": "a\\ud800b\\u0000"}}</tool_call>')
    assert calls[0]["function"]["arguments"] == {"t": "a\ufffdb"}


def test_client_refuses_non_finite_native_arguments_and_cleans_text():
    from toolace_mt.llm.testing import make_scripted_client
    from toolace_mt.llm.types import ChatRequest

    c = make_scripted_client([{"text": "ok\udc00\x07", "tool_calls": [{"name": "f", "arguments": {"x": math.nan}}]},
                              {"text": "hi \ud83d\ude00 \x1b[0m"}])
    a, b = c.chat([ChatRequest(messages=[{"role": "user", "content": "1"}]),
                   ChatRequest(messages=[{"role": "user", "content": "2"}])])
    assert a.error is not None and a.error.kind == "invalid_tool_call" and a.text == "ok\ufffd"
    assert b.ok and b.text == "hi \U0001F600 [0m"


def test_cut_answer_is_reasked_then_used():
    from toolace_mt.llm.testing import make_scripted_client
    from toolace_mt.llm.types import ChatRequest

    schema = {"type": "object", "required": ["user"], "properties": {"user": {"type": "string"}}}
    c = make_scripted_client([{"text": '{"user": "Hell', "finish_reason": "length"}, '{"user": "Hello there"}'])
    r = c.chat_one(ChatRequest(messages=[{"role": "user", "content": "x"}], json_schema=schema))
    assert r.ok and r.parsed == {"user": "Hello there"} and r.attempts == 2
    c = make_scripted_client([{"text": '{"user": "Hello"}', "finish_reason": "length"}] * 3)
    r = c.chat_one(ChatRequest(messages=[{"role": "user", "content": "x"}], json_schema=schema))
    assert r.error is not None and r.error.kind == "truncated" and r.parsed is None


def test_cached_bad_answer_does_not_poison_a_resume(tmp_path):
    """An answer with a lone surrogate, cached, then read back on a rerun: the same clean output, no crash."""
    r1 = run_class("toolace_mt", "lone_surrogate_raw", tmp_path / "run", n=4, seed=3)
    first = (tmp_path / "run" / "dataset" / "train.jsonl").read_text(encoding="utf-8")
    assert any((tmp_path / "run" / "llm_cache").rglob("*.json"))
    from toolace_mt.generation.run import run_generation
    from toolace_mt.llm.client import LLMClient

    from fuzz_answers import cfg_for

    class Dead:  # every answer must come from the cache now
        name, model = "scripted", "fuzz"

        def generate(self, requests):
            raise AssertionError("cache miss on resume")

    import shutil

    shutil.rmtree(tmp_path / "run" / "stages")  # rerun every stage, keep the cache (restart would clear it too)
    client = LLMClient(Dead(), cache_dir=tmp_path / "run" / "llm_cache", json_retries=1)
    run_generation(cfg_for("toolace_mt", 4, 3), tmp_path / "run", client=client)
    assert (tmp_path / "run" / "dataset" / "train.jsonl").read_text(encoding="utf-8") == first
    assert r1["crashed"] == 0
