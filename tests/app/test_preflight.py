"""`validate --deep`: the paper recipes pass offline (meta-device model from the committed architecture
configs, LoRA targets, chat template with a stand-in tokenizer, memory estimate); a recipe whose LoRA targets
do not exist fails with exit 2 and a message naming them."""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from toolace_mt.app.cli import main

ROOT = Path(__file__).resolve().parents[2]
PAPER = ["recipes/train/llama31_8b_lora.yaml", "recipes/train/qwen25_7b_lora.yaml",
         "recipes/reproduce/paper_llama31_8b.yaml", "recipes/reproduce/paper_qwen25_7b.yaml"]


def test_paper_recipes_pass_deep_validation(capsys, monkeypatch):
    import toolace_mt.deps as deps
    from toolace_mt.evaluation.bfcl import official

    monkeypatch.setattr(deps, "installed", lambda module: True)  # vLLM and bfcl-eval: a GPU install
    monkeypatch.setattr(official, "available", lambda: True)
    monkeypatch.chdir(ROOT)
    # with the generate recipe that writes the train recipes' dataset (validated as one pipeline)
    assert main(["validate", "--deep", "recipes/generate/paper_vllm.yaml", *PAPER]) == 0
    out = capsys.readouterr().out
    # parameter counts of the public models: the committed configs are their architectures
    assert "(llama, 8.03 B params" in out and "(qwen2, 7.616 B params" in out
    assert out.count("LoRA targets found") == 4 and out.count("assistant mask ok") == 4
    assert out.count("memory per GPU") == 4


def test_missing_lora_targets_fail_clearly(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    raw = yaml.safe_load((ROOT / "recipes/train/llama31_8b_lora.yaml").read_text())
    raw["lora_target_modules"] = ["q_proj", "c_attn"]  # c_attn is GPT-2's name, not Llama's
    (tmp_path / "rows.jsonl").write_text("")
    raw["datasets"] = [{"path": str(tmp_path / "rows.jsonl")}]
    recipe = tmp_path / "bad_targets.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["validate", "--deep", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "['c_attn']" in err and "q_proj" in err  # names the leaf modules


def test_model_config_flag_and_missing_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no recipes/model_configs here
    raw = yaml.safe_load((ROOT / "recipes/train/qwen25_7b_lora.yaml").read_text())
    raw["model_name_or_path"] = "someone/Unknown-7B"
    (tmp_path / "rows.jsonl").write_text("")
    raw["datasets"] = [{"path": "rows.jsonl"}]
    raw["accelerate_config"] = str(ROOT / "configs/accelerate/ddp.yaml")  # recipes' paths are repo-relative
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["validate", "--deep", str(recipe)]) == 2
    assert "no config.json for model 'someone/Unknown-7B'" in capsys.readouterr().err
    cfg_dir = tmp_path / "arch"
    shutil.copytree(ROOT / "recipes/model_configs/Qwen2.5-7B-Instruct", cfg_dir)
    assert main(["validate", "--deep", str(recipe), "--model-config", str(cfg_dir)]) == 0
    assert "7.616 B params" in capsys.readouterr().out


def test_memory_estimate_scales_with_batch_and_sharding():
    from types import SimpleNamespace

    from toolace_mt.app.preflight import memory_estimate

    cfg = SimpleNamespace(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, vocab_size=128256)
    a = memory_estimate(8_030_000_000, 42_000_000, cfg, batch=1, seq=4096, checkpointing=True)
    b = memory_estimate(8_030_000_000, 42_000_000, cfg, batch=2, seq=4096, checkpointing=True)
    z = memory_estimate(8_030_000_000, 42_000_000, cfg, batch=1, seq=4096, checkpointing=True, world=8, zero3=True)
    assert 14.9 < a["weights"] < 15.0  # 8.03e9 bf16 values = 14.96 GiB
    assert abs(b["logits"] - 2 * a["logits"]) <= 0.02 and b["weights"] == a["weights"]
    assert z["weights"] < a["weights"] / 7.9 and z["activations"] == a["activations"]
    full = memory_estimate(8_030_000_000, 42_000_000, cfg, batch=1, seq=4096, checkpointing=False)
    assert full["activations"] > 10 * a["activations"]
