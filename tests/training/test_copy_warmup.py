"""Copy warm-up: seeded synthetic copy lines in the data's value shapes and the model's tokenizer, the recipe keys
that switch it on, and a seconds-long warm-up inside `toolace-mt train` on CPU."""
from __future__ import annotations

import json
import os
import random
import re

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from toolace_mt.config import RecipeError  # noqa: E402
from toolace_mt.training.copy_warmup import (SEP, ValueShapes, copy_exact, draw_values, fresh_value,  # noqa: E402
                                             make_rows, probe_lines, value_shapes)


def _call_row(user: str, name: str, args: dict) -> dict:
    return {"messages": [{"role": "user", "content": user},
                         {"role": "assistant", "content": None, "tool_calls": [
                             {"id": "c1", "type": "function", "function": {"name": name, "arguments": args}}]}],
            "tools": "[]"}


ROWS = [_call_row(f"send {n} from ACC{n} to C{n + 1}", "transfer",
                  {"from_account": f"ACC{n}", "to_account": f"C{n + 1}", "amount": float(n * 10),
                   "memo": "rent Omar", "flags": {"fast": True}})
        for n in range(20, 40)] + [_call_row("buy MSFT", "buy", json.dumps({"ticker": "MSFT", "qty": 5}))]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    """The tier's tokenizer kind (Llama tiny model, digit runs of 3, bare words), trained on text like the data's."""
    from transformers import AutoTokenizer

    from toolace_mt.training.template import builtin_template
    from toolace_mt.training.tiny import TinySpec, build_tiny_model

    texts = [f"send {n} from ACC{n} to C{n + 1} memo rent Omar | buy MSFT {n % 9}" for n in range(10, 100)] * 3
    spec = TinySpec(hidden_size=32, intermediate_size=64, num_heads=2, num_kv_heads=2, vocab_size=400,
                    arch="llama", digit_group=3, bare_words=True)
    d = build_tiny_model(texts, tmp_path_factory.mktemp("copy") / "m", spec,
                         chat_template=builtin_template("compact"))
    t = AutoTokenizer.from_pretrained(d)
    t.pad_token = t.pad_token or t.eos_token
    return t


def test_value_shapes_come_from_the_calls_arguments():
    s = value_shapes(ROWS)
    assert "ACC20" in s.with_digits and "C21" in s.with_digits and "200.0" in s.with_digits
    assert {"rent", "Omar", "MSFT"} <= set(s.plain)  # multi-word values split into words; JSON-string arguments read
    assert "True" not in s.plain and "fast" not in s.plain  # booleans and keys are no values to copy
    assert not value_shapes([{"messages": [{"role": "user", "content": "hi ACC12"}]}])  # only call arguments count


def test_fresh_values_keep_the_shape_with_new_digits():
    rng = random.Random(0)
    got = {fresh_value("ACC27", rng) for _ in range(200)}
    assert all(re.fullmatch(r"ACC[1-9]\d", v) for v in got) and len(got) > 40  # same shape, digits redrawn
    assert re.fullmatch(r"[1-9]\d\d\.\d", fresh_value("200.0", rng))
    assert fresh_value("Omar", rng) == "Omar"


def test_rows_are_seeded_and_later_spans_repeat_earlier_ones(tok):
    shapes = value_shapes(ROWS)
    a = make_rows(tok, shapes, 6, (2, 5), 64, seed=3)
    assert a == make_rows(tok, shapes, 6, (2, 5), 64, seed=3)
    assert a != make_rows(tok, shapes, 6, (2, 5), 64, seed=4)
    allowed = set(shapes.plain) | {re.sub(r"\d", "#", v) for v in shapes.with_digits}
    n_lines = 0
    for r in a:
        assert 0 < len(r["input_ids"]) <= 64 and len(r["labels"]) == len(r["input_ids"])
        text = tok.decode(r["input_ids"])
        for line in text.split("\n")[:-1]:  # a row ends after a whole line
            src, tgt = line.split(f" {SEP} ")
            assert src == tgt and 2 <= len(src.split()) <= 5
            assert all(w in allowed or re.sub(r"\d", "#", w) in allowed for w in src.split())
            n_lines += 1
        # the loss is on the repeats and line ends only: the labelled tokens decode to exactly those
        labelled = tok.decode([t for t in r["labels"] if t != -100])
        assert labelled == "".join(line.split(f" {SEP} ")[1] + "\n" for line in text.split("\n")[:-1])
    assert n_lines > 6


def test_tokenizer_round_trip_of_copy_lines(tok):
    shapes = value_shapes(ROWS)
    for src, tgt in probe_lines(shapes, 30, k=4):
        ids = tok(src + tgt, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == src + tgt
        assert len(src.split()) == 5 and all(re.search(r"\d", w) for w in src.split()[:4])  # 4 id-shaped values


def test_copy_exact_counts_a_line_only_when_every_token_is_right(tok):
    import torch

    lines = probe_lines(value_shapes(ROWS), 8)

    class Oracle(torch.nn.Module):  # predicts the next token of the line it is given: a perfect copier
        device = torch.device("cpu")

        def forward(self, input_ids, attention_mask):
            v = len(tok)
            nxt = torch.cat([input_ids[:, 1:], input_ids[:, -1:]], dim=1)
            return type("O", (), {"logits": torch.nn.functional.one_hot(nxt, v).float()})()

    assert copy_exact(Oracle(), tok, lines)["exact"] == 8

    class OffByOne(Oracle):  # right everywhere but the last target token of each line
        def forward(self, input_ids, attention_mask):
            logits = super().forward(input_ids, attention_mask).logits
            for i in range(len(input_ids)):
                last = int(attention_mask[i].sum()) - 2
                logits[i, last] = torch.roll(logits[i, last], 1)
            return type("O", (), {"logits": logits})()

    res = copy_exact(OffByOne(), tok, lines)
    assert res["exact"] == 0 and res["token_accuracy"] > 0.8


def test_draw_values_mixes_ids_and_words():
    rng = random.Random(1)
    s = ValueShapes(("ACC27",), ("Omar",))
    vals = draw_values(s, 400, rng)
    assert 120 < sum(v == "Omar" for v in vals) < 280
    assert all(v != "Omar" for v in draw_values(s, 50, rng, ids_only=True))


def _recipe(**kw):
    from toolace_mt.training.config import parse_recipe

    return parse_recipe({"task": "train", "name": "t", "model_name_or_path": "tiny", **kw})


def test_warmup_keys_parse_and_are_checked():
    cfg = _recipe(copy_warmup_steps=50, copy_warmup_lr=2e-3, copy_warmup_span=[4, 8], copy_warmup_length=64)
    assert cfg.warmup.copy_warmup_steps == 50 and cfg.warmup.copy_warmup_span == [4, 8]
    assert cfg.resolved()["copy_warmup_lr"] == 2e-3
    assert "copy_warmup_steps" not in _recipe().resolved()  # off: earlier runs' recipe.yaml stays the same
    assert "copy_warmup_target" not in cfg.resolved()  # unset: a warmed-up run's recipe.yaml is as before the key
    assert _recipe(copy_warmup_steps=50, copy_warmup_target=0.5).resolved()["copy_warmup_target"] == 0.5
    for bad, match in [({"copy_warmup_steps": -1}, ">= 0"), ({"copy_warmup_lr": 0}, "> 0"),
                       ({"copy_warmup_span": [5, 2]}, "lo <= hi"), ({"copy_warmup_span": [3]}, r"\[lo, hi\]"),
                       ({"copy_warmup_batch_size": 0}, ">= 1"), ({"copy_warmup_length": 4}, ">= 8"),
                       ({"copy_warmup_steps": "many"}, "not of type int"), ({"copy_warmup_stpes": 3}, "did you mean"),
                       ({"copy_warmup_steps": 10, "copy_warmup_target": 0}, r"\(0, 1\]"),
                       ({"copy_warmup_steps": 10, "copy_warmup_target": 1.5}, r"\(0, 1\]"),
                       ({"copy_warmup_target": 0.5}, "needs copy_warmup_steps"),
                       ({"copy_warmup_steps": 10, "copy_warmup_target": "half"}, r"not of type Optional\[float\]")]:
        with pytest.raises(RecipeError, match=match):
            _recipe(**bad)
    with pytest.raises(RecipeError, match="from scratch"):
        _recipe(model_name_or_path="some/pretrained", copy_warmup_steps=10)


def test_warmup_runs_before_the_data_in_train(tmp_path):
    """A seconds-long run: warm-up through the transformers Trainer, then the SFT on the tool data from it."""
    import torch

    torch.set_num_threads(1)
    from banking_data import write_banking_dataset

    from toolace_mt.training.train import run_training

    ds = write_banking_dataset(tmp_path / "two", n=6, turns=2, updates=False)  # get_balance(account_id=ACC...)
    cfg = _recipe(datasets=[{"path": str(ds)}], use_peft=False, tiny_arch="llama", tiny_digit_group=3,
                  tiny_bare_words=True, tiny_hidden_size=32, tiny_intermediate_size=64, tiny_vocab_size=400,
                  chat_template="compact", max_steps=2, per_device_train_batch_size=2, save_strategy="no",
                  report_to="none", disable_tqdm=True, copy_warmup_steps=4, copy_warmup_batch_size=2,
                  copy_warmup_rows=8, copy_warmup_length=32, seed=0,
                  copy_warmup_target=1.0)  # out of reach in 4 steps: the phase runs to its cap
    s = run_training(cfg, tmp_path / "run")
    w = json.loads((tmp_path / "run" / "copy_warmup" / "summary.json").read_text())
    assert w["steps"] == 4 and [p["step"] for p in w["copy_probe"]][0] == 0 and w["copy_probe"][-1]["step"] == 4
    assert any("loss" in e for e in w["log"]) and " | " in w["example"]
    assert s["copy_warmup"]["steps"] == 4 and s["steps"] == 2
    assert s["copy_warmup"]["steps_run"] == 4 and s["copy_warmup"]["target_reached"] is False  # in the run summary
    # the SFT started from the warmed-up weights, not from the random init in base_model/
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "base_model").state_dict()
    warm = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "copy_warmup" / "model").state_dict()
    assert any(not torch.equal(base[k], warm[k]) for k in base)
    # no argument value to copy: refused before any run directory is made
    from toolace_mt.training.data import DataError

    empty = write_banking_dataset(tmp_path / "none", n=3, turns=1, updates=False)  # list_accounts() only
    with pytest.raises(DataError, match="no argument value"):
        run_training(_recipe(**{**cfg.resolved(), "datasets": [{"path": str(empty)}], "task": "train"}),
                     tmp_path / "run2")
    assert not (tmp_path / "run2").exists()


def test_warmup_target_stops_the_phase_at_the_first_probe_that_reaches_it(tok, tmp_path, monkeypatch):
    """copy_warmup_target: the phase ends at the first probe whose exact rate reaches the target, steps being the
    cap; a target never reached, or none, runs every step. The probe is replaced by one whose rate rises by `slope`
    per step (with a target it runs at step 0 and every 24 // 12 = 2 steps), so the stopping rule is tested, not
    whether a 32-wide model learns to copy in 24 steps."""
    import torch
    from transformers import AutoModelForCausalLM

    from toolace_mt.training import copy_warmup as cw

    torch.set_num_threads(1)
    calls = {"n": 0, "every": 2, "slope": 0.0}

    def rising(model, tok_, lines, batch_size=50):
        rate = min(1.0, calls["n"] * calls["every"] * calls["slope"])  # the n-th probe runs at step n * every
        calls["n"] += 1
        return {"lines": len(lines), "exact": int(rate * len(lines)), "exact_rate": rate, "token_accuracy": rate}

    monkeypatch.setattr(cw, "copy_exact", rising)

    def run(target, slope, out):
        calls.update(n=0, slope=slope, every=2 if target is not None else 24 // 4)
        model = AutoModelForCausalLM.from_pretrained(tok.name_or_path)
        spec = cw.WarmupSpec(steps=24, lr=1e-3, batch_size=2, span=(3, 4), length=32, rows=8, seed=0,
                             target=target)
        return cw.run_copy_warmup(model, tok, ROWS, spec, tmp_path / out, probe_lines_n=4)

    hit = run(0.5, 1 / 20, "hit")  # 0.5 first reached at step 10
    assert hit["steps_run"] == 10 and hit["target_reached"] and [p["step"] for p in hit["copy_probe"]][-2:] == [8, 10]
    assert hit["steps"] == 24 and (tmp_path / "hit" / "model" / "config.json").is_file()
    missed = run(1.0, 1 / 40, "missed")  # 24 / 40 at the cap: every step runs, recorded as not reached
    assert missed["steps_run"] == 24 and not missed["target_reached"] and len(missed["copy_probe"]) == 13
    free = run(None, 1 / 20, "free")  # no target: every step, the usual 4 probes, no target fields
    assert free["copy_probe"][-1]["step"] == 24 and len(free["copy_probe"]) == 5 and "steps_run" not in free


def test_bench_copy_prints_the_probe_and_refuses_bad_paths(tok, tmp_path, capsys):
    from banking_data import write_banking_dataset
    from transformers import AutoModelForCausalLM

    from toolace_mt.app.cli import main

    ds = write_banking_dataset(tmp_path / "two", n=4, turns=2, updates=False)
    model_dir = tmp_path / "m"
    AutoModelForCausalLM.from_pretrained(tok.name_or_path).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    assert main(["bench", "copy", str(model_dir), "--data", str(ds), "--lines", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["lines"] == 5 and 0 <= out["exact"] <= 5 and f" {SEP} " in out["example"]
    assert main(["bench", "copy", str(tmp_path / "none"), "--data", str(ds)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["bench", "copy", str(model_dir), "--data", str(tmp_path / "none")]) == 2
    assert main(["bench", "copy", str(model_dir), "--data", str(write_banking_dataset(
        tmp_path / "one", n=2, turns=1, updates=False))]) == 2
    assert "no argument value" in capsys.readouterr().err
