"""Training renders what evaluation shows: for every BFCL-style category, each prompt the harness builds for
the gold answer is a prefix of the training rendering (a row of `dialogue_to_rows`) of the gold dialogue."""
from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    from toolace_mt.evaluation.bfcl.build import build_task_set
    from toolace_mt.runs import read_jsonl

    out = tmp_path_factory.mktemp("own")
    build_task_set(out, per_category=3, seed=5)
    return read_jsonl(out / "tasks.jsonl")


def _render(template, messages, tools, generation_prompt):
    from toolace_mt.training.template import builtin_template
    from toolace_mt.training.tiny import _fast_tokenizer
    from tokenizers import Tokenizer, models

    tok = _fast_tokenizer(Tokenizer(models.BPE()), builtin_template(template), 1 << 20)
    return tok.apply_chat_template(messages, tools=tools or None, tokenize=False,
                                   add_generation_prompt=generation_prompt)


# both wire-format templates a tiny model can be built with (the compact one lists tools as signature lines)
@pytest.mark.parametrize("template", ["project", "compact"])
def test_every_eval_prompt_is_a_prefix_of_a_training_row(tasks, template):
    from toolace_mt.evaluation.bfcl import CATEGORIES
    from toolace_mt.evaluation.bfcl.gold import play_gold
    from toolace_mt.evaluation.policies.prompting import chat_messages
    from toolace_mt.training.data import dialogue_to_rows

    checked = {}
    for task in tasks:
        gold, prompts = play_gold(task)
        rows = [_render(template, r["messages"], json.loads(r["tools"]), False) for r in dialogue_to_rows(gold)]
        for k, pr in enumerate(prompts):
            text = _render(template, chat_messages(pr["messages"], None), pr["tools"], True)
            assert any(r.startswith(text) for r in rows), (task["id"], k)
        checked[task["category"]] = checked.get(task["category"], 0) + len(prompts)
        if task["category"] == "miss_func":
            assert len(rows) == 2 and gold.meta["tool_updates"]
    # every category the builder makes is covered (long_context too, when a domain supports distractors)
    assert {c for c in CATEGORIES if c != "long_context"} <= set(checked), checked
