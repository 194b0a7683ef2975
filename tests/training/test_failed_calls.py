"""An assistant message whose call the environment refused is shown in training rows but not trained on
(`train_on_failed_calls: false`, the default): weight 0, rendered as the same text outside the assistant mask by
every project template, so the model learns the reflection and the corrected call, not the wrong value."""
from __future__ import annotations

import json

import pytest

from toolace_mt.schema import Dialogue
from toolace_mt.training.data import dialogue_to_rows, failed_call_messages

TOOL = {"type": "function", "function": {"name": "get_balance", "description": "Balance of an account.",
                                         "parameters": {"type": "object", "properties": {
                                             "account_id": {"type": "string"}}, "required": ["account_id"]}}}
ERROR = json.dumps({"error": "not_found", "message": "no account ACC2"})


def _call(i, value, content=None):
    return {"role": "assistant", "content": content, "tool_calls": [
        {"id": f"c{i}", "type": "function", "function": {"name": "get_balance", "arguments": {"account_id": value}}}]}


def _dialogue() -> Dialogue:
    return Dialogue.model_validate({"id": "d", "tools": [TOOL], "messages": [
        {"role": "user", "content": "What is the balance of ACC27?"},
        _call(1, "ACC2"),
        {"role": "tool", "tool_call_id": "c1", "name": "get_balance", "content": ERROR},
        _call(2, "ACC27", "That id was wrong; retrying with ACC27."),
        {"role": "tool", "tool_call_id": "c2", "name": "get_balance", "content": '{"balance": 12.5}'},
        {"role": "assistant", "content": "ACC27 holds 12.50."}]})


def test_only_the_failed_call_gets_weight_zero():
    d = _dialogue()
    assert failed_call_messages(d) == {1}
    msgs = dialogue_to_rows(d, train_on_failed_calls=False)[0]["messages"]
    assert [m.get("weight") for m in msgs] == [None, 0, None, None, None, None]
    # training on failed calls (and every gold rendering, e.g. teacher-forced scoring) leaves the rows as they were
    assert all("weight" not in m for m in dialogue_to_rows(d)[0]["messages"])


@pytest.mark.parametrize("name", ["project", "compact", "llama3_1"])
def test_templates_render_a_weight_zero_message_outside_the_mask(tiny_model_dir, name):
    from transformers import AutoTokenizer

    from toolace_mt.training.template import assistant_spans, builtin_template, mask_problems

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    template = builtin_template(name)
    d = _dialogue()
    kept = dialogue_to_rows(d, train_on_failed_calls=False)[0]
    plain = dialogue_to_rows(d)[0]
    tools = json.loads(kept["tools"])

    def render(row):
        return tok.apply_chat_template(row["messages"], tools=tools, chat_template=template, tokenize=True,
                                       return_dict=True, return_assistant_tokens_mask=True)

    a, b = render(kept), render(plain)
    assert list(a["input_ids"]) == list(b["input_ids"])  # the same text: the failed call stays in the context
    masked = [tok.decode(a["input_ids"][s:e]) for s, e in assistant_spans(a["input_ids"], a["assistant_masks"])]
    assert len(masked) == 2 and not any('"ACC2"' in s for s in masked)
    assert '"ACC27"' in masked[0] and "retrying" in masked[0]
    assert len(assistant_spans(b["input_ids"], b["assistant_masks"])) == 3
    assert mask_problems(tok, kept["messages"], tools, template) == []


def test_a_row_whose_only_assistant_message_failed_has_nothing_to_train():
    d = _dialogue()
    cut = d.model_copy(update={"messages": d.messages[:3]})
    assert dialogue_to_rows(cut, train_on_failed_calls=False) == []
    assert len(dialogue_to_rows(cut)) == 1


def test_load_rows_masks_failed_calls_only_where_the_loss_can_leave_them_out(tmp_path):
    """With assistant-only loss the failed call is weight 0 and counted; with the loss on every token nothing can be
    left out, so the rows are as before and the report says the failed calls are trained."""
    from toolace_mt.training.config import DataArguments
    from toolace_mt.training.data import load_rows

    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(_dialogue().model_dump(mode="json")) + "\n")
    data = DataArguments(datasets=[{"path": str(path)}])
    rows, rep = load_rows(data, 0)
    assert [m.get("weight") for m in rows[0]["messages"]].count(0) == 1
    assert rep["failed_call_messages_not_trained"] == 1 and rep["failed_calls_trained"] is False
    rows, rep = load_rows(data, 0, assistant_only=False)
    assert all("weight" not in m for m in rows[0]["messages"])
    assert rep["failed_call_messages_not_trained"] == 0 and rep["failed_calls_trained"] is True
