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
    assert "| Base | 2/6 | – | 0 | 0 | 3 | 0 | 0 | 1 | 0 | 0 |" in md
    assert "| MAS | 2/6 | – | 4 | 0 | 0 | 0 | 0 | 0 | 0 | 0 |" in md
    assert t["exact_any_order"] is None  # a row scored before the any-order count: unknown, not 0
    # rows with the any-order count: summed, and shown beside the strict count
    new = [dict(r, exact_any_order=r["exact"] + 1) for r in rows]
    t2 = tf_totals(new)
    assert t2["exact_any_order"] == 5 and t2["exact_any_order_rate"] == 5 / 6
    assert "| Base | 2/6 | 5 | 0 | 0 | 3 |" in "\n".join(_first_miss_markdown({"bfcl_own": {"base": t2}}))
    assert _first_miss_markdown({"bfcl_own": {"base": {"exact": 1, "calls": 2}}}) == []  # nothing to show


class _CharTok:
    """A chat 'tokenizer' whose ids are the characters of a plain rendering (enough for `_render`)."""

    def apply_chat_template(self, messages, tools=None, tokenize=True, return_dict=True, add_generation_prompt=False):
        import json

        text = "".join(f"<{m['role']}>" + (m.get("content") or json.dumps(m.get("tool_calls") or []))
                       for m in messages) + ("<assistant>" if add_generation_prompt else "")
        return {"input_ids": [ord(c) for c in text]}


class _ReplayModel:
    """Greedy predictions that spell out `target` whatever the input: position j predicts target[j + 1]."""

    def __init__(self, target):
        self.target = target

    def __call__(self, input_ids):
        import torch

        n = input_ids.shape[1]
        logits = torch.zeros(1, n, 512)  # the renderings are ASCII
        for j in range(n):
            logits[0, j, self.target[j + 1] if j + 1 < len(self.target) else 0] = 1.0
        return type("Out", (), {"logits": logits})()


def _call(name):
    return {"type": "function", "function": {"name": name, "arguments": {}}}


@pytest.mark.parametrize("n_calls,order,expected", [
    (2, (1, 0), True),       # the model writes the two calls the other way round: exact in another order
    (3, (2, 0, 1), True),
    (2, (0, 1), False),      # the gold order itself is scored as `exact`, not here
    (1, (0,), False),        # one call has no other order
])
def test_exact_in_other_order(n_calls, order, expected):
    from toolace_mt.evaluation.bfcl.teacher_forced import _exact_in_other_order, _render

    tok = _CharTok()
    calls = [_call(n) for n in ("list_cards", "get_balance", "list_payees")[:n_calls]]
    msgs = [{"role": "user", "content": "cards. Then: balance."}, {"role": "assistant", "tool_calls": calls}]
    target = _render(tok, msgs[:1] + [dict(msgs[1], tool_calls=[calls[k] for k in order])], [])
    a = len(_render(tok, msgs[:1], [], generation_prompt=True))
    assert _exact_in_other_order(_ReplayModel(target), tok, msgs, 1, [], a, 10 ** 6) is expected
    # a model that writes another message altogether is not exact in any order
    wrong = _render(tok, msgs[:1] + [dict(msgs[1], tool_calls=[_call("add_payee")] * n_calls)], [])
    assert _exact_in_other_order(_ReplayModel(wrong), tok, msgs, 1, [], a, 10 ** 6) is False
