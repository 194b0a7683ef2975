"""JSON answers: the malformed-answer corpus (tests/data/malformed_json.jsonl), each repaired or a typed failure."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from toolace_mt.llm.jsonparse import JSON_FAILURES, clean_text, parse_json_answer, retry_message

DATA = Path(__file__).parents[1] / "data" / "malformed_json.jsonl"
_LINES = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
SCHEMAS = _LINES[0]["_schemas"]
CASES = _LINES[1:]


def test_corpus_is_big_and_covers_every_outcome():
    assert len(CASES) >= 50
    kinds = {c["expect"] for c in CASES}
    assert {"ok", "invalid_json", "schema_mismatch", "truncated", "ambiguous_json"} <= kinds


@pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}-{c['note'][:30]}" for c in CASES])
def test_each_malformed_answer_is_repaired_or_a_typed_failure(case):
    schema = SCHEMAS[case["schema"]] or None
    ans = parse_json_answer(case["text"], schema)  # must never raise
    if ans.ok:
        assert ans.failure is None
        if schema:
            jsonschema.validate(ans.value, schema)  # what comes back always fits the schema
    else:
        assert ans.failure.kind in JSON_FAILURES
        assert ans.failure.raw == clean_text(case["text"]) and ans.failure.message
    if case["expect"] == "any":
        return
    got = "ok" if ans.ok else ans.failure.kind
    assert got == case["expect"], (case["note"], ans)
    if got == "ok":
        assert ans.value == case["value"]
        try:
            strict = not isinstance(json.loads(case["text"].lstrip("\ufeff")), str)  # str: double-encoded
        except json.JSONDecodeError:
            strict = False
        assert bool(ans.repairs) == (not strict), "a repaired answer must say what was repaired, a clean one not"


def test_repairs_are_reported():
    a = parse_json_answer('```json\n{"a": 1,}\n```', {"type": "object"})
    assert a.ok and a.value == {"a": 1} and "code_fence" in a.repairs and "json_repair" in a.repairs
    assert parse_json_answer('{"a": 1}').repairs == []


def test_broken_schema_is_a_caller_error():
    with pytest.raises(jsonschema.SchemaError):
        parse_json_answer("{}", {"type": "no-such-type"})


def test_retry_message_names_the_problem_and_the_schema():
    schema = {"type": "object", "required": ["x"]}
    a = parse_json_answer("{}", schema)
    msg = retry_message(a.failure, schema)
    assert "'x' is a required property" in msg and '"required": ["x"]' in msg


# issue 24 item 6: json-repair may change what an answer says; such a repair is refused (the client re-asks)
@pytest.mark.parametrize("text", [
    '{"x": 1 2}',                      # a number dropped
    '{"a": 1, "status": }',            # a value invented ("")
    '{"status"= "closed"}',            # an object turned into a list of one string
    '{"x": "a" + "b"}',                # two strings merged into one with the quotes inside
    '{"status": `closed`}',            # a backtick kept inside the value
    '{"a": "x", // note\n "b": 2}',    # a comment's words dropped silently
])
def test_meaning_changing_repair_is_refused(text):
    r = parse_json_answer(text)
    assert not r.ok and r.failure.kind == "invalid_json", (text, r.value)


@pytest.mark.parametrize("text,value", [
    ("{'a': 'it\\'s', 'b': True, c: None,}", {"a": "it's", "b": True, "c": None}),
    ('{"a": [1, 2,], "b": {"c": "d",},}', {"a": [1, 2], "b": {"c": "d"}}),
    ('{"status": closed}', {"status": "closed"}),
    ('{"s": \u201cclosed\u201d}', {"s": "closed"}),
])
def test_token_preserving_repairs_still_accepted(text, value):
    r = parse_json_answer(text)
    assert r.ok and r.value == value and "json_repair" in r.repairs
