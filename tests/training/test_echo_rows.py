"""Echo rows for the CPU tier's base pretraining: built only from the loaded rows' call arguments, deterministic,
counted in the data report, and trainable (they pass the template's assistant-mask check)."""
from __future__ import annotations

import json

import pytest

from banking_data import write_banking_dataset


def test_echo_rows_repeat_values_taken_from_the_rows_calls(tmp_path):
    from toolace_mt.training.config import DataArguments
    from toolace_mt.training.data import load_rows
    from toolace_mt.training.echo import argument_values, echo_rows

    path = write_banking_dataset(tmp_path / "d", n=12, turns=2, updates=False)
    rows, rep = load_rows(DataArguments(datasets=[{"path": str(path)}]))
    assert "echo_rows" not in rep  # off by default
    values = set(argument_values(rows))
    calls = [c for r in rows for m in r["messages"] for c in m.get("tool_calls") or []]
    args = [v for c in calls for v in c["function"]["arguments"].values()]
    assert values == {v if isinstance(v, str) else json.dumps(v) for v in args}
    echo = echo_rows(rows, 20, seed=3)
    assert echo == echo_rows(rows, 20, seed=3) and echo != echo_rows(rows, 20, seed=4)
    for r in echo:
        user, assistant = r["messages"]
        shown = user["content"].removeprefix("Repeat: ")
        assert assistant["content"] == shown and set(shown.split(" ")) <= {w for v in values for w in v.split(" ")}
        assert json.loads(r["tools"]) == []
    with_echo, rep = load_rows(DataArguments(datasets=[{"path": str(path)}], echo_rows=20))
    assert rep["echo_rows"] == 20 and len(with_echo) == len(rows) + 20
    assert echo_rows(rows[:0], 5) == []  # no calls, no values: nothing to echo
    with pytest.raises(ValueError, match="echo_rows"):
        DataArguments(echo_rows=-1)


def test_echo_rows_pass_the_mask_check(tmp_path):
    from transformers import AutoTokenizer

    from toolace_mt.training.data import check_rows
    from toolace_mt.training.config import DataArguments
    from toolace_mt.training.echo import echo_rows
    from toolace_mt.training.data import load_rows
    from toolace_mt.training.template import builtin_template
    from toolace_mt.training.tiny import TinySpec, build_tiny_model, render_corpus

    path = write_banking_dataset(tmp_path / "d", n=12, turns=2, updates=False)
    data = DataArguments(datasets=[{"path": str(path)}], echo_rows=8)
    rows, rep = load_rows(data)
    tmpl = builtin_template("compact")
    spec = TinySpec(hidden_size=32, intermediate_size=64, vocab_size=400, arch="llama", bare_words=True)
    tok = AutoTokenizer.from_pretrained(build_tiny_model(render_corpus(rows, tmpl), tmp_path / "m", spec,
                                                         chat_template=tmpl))
    out = check_rows(rows, rep, data, tok, tmpl, 2048)
    assert len(out["train"]) == len(rows) and out["report"]["echo_rows"] == 8
    assert len(echo_rows(rows, 3)) == 3
