"""Where a teacher-forced call first goes wrong (issue 26: which part of a call the fine-tunes lose)."""
from __future__ import annotations

import pytest

from toolace_mt.evaluation.bfcl.teacher_forced import MISS_PARTS, miss_part

CALL = '<tool_call>\n{"name": "transfer", "arguments": {'


@pytest.mark.parametrize("prefix,part", [
    ("", "call_start"),
    ("I can do that", "call_start"),
    ('<tool_call>\n{"', "call_frame"),  # the constant key of the call, not yet the tool's name
    ('<tool_call>\n{"name": ', "call_frame"),
    ('<tool_call>\n{"name": "list_', "name"),
    ('<tool_call>\n{"name": "list_cards", ', "name"),
    (CALL, "arg_key"),
    (CALL + '"from_acc', "arg_key"),
    (CALL + '"from": ', "arg_value"),
    (CALL + '"from": "ACC', "arg_value"),
    (CALL + '"memo": "say \\"hi', "arg_value"),  # an escaped quote does not close the string
    (CALL + '"from": "ACC27"', "structure"),
    (CALL + '"from": "ACC27", ', "arg_key"),
    (CALL + '"amount": 5', "arg_value"),
    (CALL + '"ids": ["C1", ', "arg_value"),  # a comma inside a list separates values
    (CALL + '"opts": {"a": 1, ', "arg_key"),  # ...inside a nested object, keys
    (CALL + '"from": "ACC27"}}\n</tool_call>\n', "call_count"),
    ('<tool_call>\n{"name": "f", "parameters": {"q": "', "arg_value"),  # llama3.1-style key
])
def test_miss_part(prefix, part):
    assert part in MISS_PARTS and miss_part(prefix) == part


def test_a_name_miss_that_names_another_call_of_the_message_is_an_order_miss():
    pre = '<tool_call>\n{"name": "'
    assert miss_part(pre, "search", ("search_contacts",)) == "call_order"
    assert miss_part(pre + "list_", "cards", ("list_cards",)) == "call_order"
    assert miss_part(pre + "list_", "payees", ("list_cards",)) == "name"  # no call of the message is list_payees
    assert miss_part(pre, "search") == "name"  # a one-call message: a wrong tool, not an order


def test_totals_sum_first_misses_and_tolerate_old_rows():
    from toolace_mt.app.reproduce import tf_totals

    rows = [{"calls": 3, "exact": 1, "skipped": 0, "tokens": 30, "tokens_ok": 25, "first_miss": {"name": 2}},
            {"calls": 2, "exact": 0, "skipped": 0, "tokens": 20, "tokens_ok": 15,
             "first_miss": {"name": 1, "arg_value": 1}},
            {"calls": 1, "exact": 1, "skipped": 0, "tokens": 9, "tokens_ok": 9}]  # written before first_miss
    t = tf_totals(rows)
    assert t["first_miss"] == {"name": 3, "arg_value": 1} and t["exact"] == 2 and t["calls"] == 6
    from toolace_mt.app.report import _first_miss_markdown

    md = "\n".join(_first_miss_markdown({"bfcl_own": {"base": t, "mas": {**t, "first_miss": {"call_start": 4}}}}))
    assert "| Base | 2/6 | 0 | 0 | 3 | 0 | 0 | 1 | 0 | 0 |" in md and "| MAS | 2/6 | 4 | 0 | 0 | 0 | 0 | 0 | 0 | 0 |" in md
    assert _first_miss_markdown({"bfcl_own": {"base": {"exact": 1, "calls": 2}}}) == []  # nothing to show
