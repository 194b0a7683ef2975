"""`toolace-mt doctor`: the smoke run's every step passes on CPU with the tiny stand-in Llama-3 model, and
`--gpu` without a GPU is a one-line error."""
from __future__ import annotations

import json

import pytest

from toolace_mt.app.cli import main


@pytest.mark.slow
def test_doctor_cpu_runs_every_step(tmp_path, capsys):
    out = tmp_path / "doctor"
    assert main(["doctor", "--cpu", "--out", str(out)]) == 0
    res = json.loads((out / "doctor.json").read_text())
    steps = [s["step"] for s in res["steps"]]
    assert steps == ["build model + tokenizer", "generate ToolACE-MT (llm engine)", "generate MAS (llm engine)",
                     "LoRA SFT (accelerate launch)", "evaluate BFCL-style", "evaluate tau-style"]
    assert all(s["ok"] for s in res["steps"]), res["steps"]
    if res["backend"] == "transformers":
        assert "vLLM not importable" in res["note"]  # the table says it is not vLLM
    gen = res["steps"][1]
    assert gen["tokens_per_s"] and gen["tokens_per_s"] > 0
    assert res["steps"][3]["tokens_per_s"] > 0  # the trainer's own figure
    # the stand-in: Llama architecture, Llama-3.1 special tokens and template, a LoRA adapter trained on it
    cfg = json.loads((out / "model" / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["num_key_value_heads"] < cfg["num_attention_heads"]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out / "model")
    for t in ("<|begin_of_text|>", "<|start_header_id|>", "<|eot_id|>", "<|python_tag|>"):
        assert len(tok.encode(t, add_special_tokens=False)) == 1, t
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|begin_of_text|>") and "<|start_header_id|>assistant<|end_header_id|>" in text
    assert (out / "train" / "adapter" / "adapter_config.json").is_file()
    table = capsys.readouterr().out
    assert "PASS" in table and "FAIL" not in table


def test_doctor_gpu_without_gpu_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["doctor", "--gpu", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: doctor --gpu needs a CUDA GPU") and "\n" not in err


def test_a_step_that_made_nothing_is_a_warning_not_a_pass(capsys):
    """Generation that kept 0 dialogues ran, but a PASS would hide that nothing usable came out (issue 25)."""
    from dataclasses import asdict

    from toolace_mt.app.smoke import _timed, print_table

    rows = []
    assert _timed(rows, "generate ToolACE-MT (llm engine)", lambda: ("{'generated': 1, 'kept': 0}", 10, None,
                                                                       "kept 0 of 1 dialogues"))
    assert _timed(rows, "evaluate", lambda: ("ok", None))
    assert [r.result for r in rows] == ["WARN", "PASS"]
    assert "generate ToolACE-MT (llm engine): WARN" in capsys.readouterr().err
    print_table({"mode": "cpu", "backend": "transformers", "note": "", "total_s": 1.0,
                 "steps": [asdict(r) for r in rows]})
    table = capsys.readouterr().out
    assert "WARN" in table and "kept 0 of 1 dialogues" in table
