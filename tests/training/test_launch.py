"""Multi-device training (issue 25): the paper recipes train at the paper's global batch of 64 through
`accelerate launch`, started by `train` / `reproduce`; one-device runs stay in-process. No GPU here: the
command line built and the checks around it are what is tested."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import toolace_mt.app.cli  # noqa: F401  (registers the recipe kinds)
from toolace_mt.config import RecipeError, load_recipe

ROOT = Path(__file__).resolve().parents[2]


def _train_cfg(recipe: str, *overrides: str):
    return load_recipe(ROOT / recipe, list(overrides), expect="train")[1]


def test_paper_recipes_reach_the_paper_global_batch():
    for recipe in ("recipes/train/llama31_8b_lora.yaml", "recipes/train/qwen25_7b_lora.yaml"):
        gb = _train_cfg(recipe).global_batch()
        assert gb == {"per_device": 2, "accumulation": 4, "devices": 8, "global": 64}  # paper §5
    one_gpu = _train_cfg("recipes/train/llama31_8b_lora.yaml", "num_devices=1", "gradient_accumulation_steps=32")
    assert one_gpu.global_batch()["global"] == 64
    assert _train_cfg("recipes/train/tiny_cpu.yaml").global_batch() == {"per_device": 4, "accumulation": 1,
                                                                          "devices": 1, "global": 4}


def test_launch_command_and_when_it_is_used(monkeypatch):
    from toolace_mt.training.launch import launch_command, needs_launch

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    cfg = _train_cfg("recipes/train/llama31_8b_lora.yaml")
    over = ['datasets=[{"path": "runs/reproduce/p/generate/mas/dataset"}]', 'model_name_or_path="m"']
    cmd = launch_command("recipes/train/llama31_8b_lora.yaml", over, Path("runs/reproduce/p/train/mas"), cfg)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--config_file") + 1] == "configs/accelerate/ddp.yaml"
    assert cmd[cmd.index("--num_processes") + 1] == "8"
    i = cmd.index("-m", 3)
    assert cmd[i:i + 4] == ["-m", "toolace_mt.app.cli", "train", "recipes/train/llama31_8b_lora.yaml"]
    assert cmd[cmd.index("--out") + 1] == "runs/reproduce/p/train/mas"
    assert [cmd[j + 1] for j, a in enumerate(cmd) if a == "--set"] == over  # the wiring travels to every process
    assert needs_launch(cfg)
    assert not needs_launch(_train_cfg("recipes/train/tiny_cpu.yaml"))  # one device: in-process
    monkeypatch.setenv("WORLD_SIZE", "8")  # already one of the launched processes: train here
    assert not needs_launch(cfg)


def test_process_count_must_match_the_recipe(monkeypatch):
    from toolace_mt.training.launch import check_devices, check_world

    cfg = _train_cfg("recipes/train/llama31_8b_lora.yaml")
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(RecipeError, match="global batch 64 = 2 x 4 x 8.*this run has 4 processes"):
        check_world(cfg)
    monkeypatch.setenv("WORLD_SIZE", "8")
    check_world(cfg)
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RecipeError, match="this machine has 1.*gradient_accumulation_steps=32/K"):
        check_devices(cfg)


def test_reproduce_launches_multi_device_arms(monkeypatch, tmp_path, capsys):
    """reproduce's train step goes through accelerate launch with the step's wiring when num_devices > 1."""
    from toolace_mt.app import reproduce
    from toolace_mt.app.reproduce import StepRef, run_step
    from toolace_mt.training import launch

    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    seen = {}

    def fake_launch(recipe, overrides, out, cfg, restart=False):
        seen.update(recipe=recipe, overrides=overrides, out=out, devices=cfg.launch.num_devices)
        return {"global_batch": 64}

    monkeypatch.setattr(launch, "launch_training", fake_launch)
    ref = StepRef(recipe="recipes/train/llama31_8b_lora.yaml")
    (tmp_path / "rows.jsonl").write_text("")
    extra = {"datasets": [{"path": str(tmp_path / "rows.jsonl")}], "model_name_or_path": "m"}
    assert run_step("train", ref, tmp_path / "train" / "mas", extra) == {"global_batch": 64}
    assert seen["devices"] == 8 and seen["out"] == tmp_path / "train" / "mas"
    assert json.loads(seen["overrides"][0].split("=", 1)[1]) == extra["datasets"]
    assert "global batch 64 = 2 per device x 4 accumulation x 8 device(s) (accelerate launch)" in capsys.readouterr().out
    assert reproduce  # imported for the monkeypatch target's module to be loaded


def test_reproduce_without_the_gpus_is_refused_before_anything_is_made(tmp_path, monkeypatch, capsys):
    import torch

    import toolace_mt.deps as deps
    from toolace_mt.app.cli import main
    from toolace_mt.evaluation.bfcl import official

    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(deps, "installed", lambda module: True)
    monkeypatch.setattr(official, "available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    out = tmp_path / "run"
    assert main(["reproduce", "recipes/reproduce/paper_llama31_8b.yaml", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "trains on 8 GPUs (global batch 64 = 2 x 4 x 8); this machine has 0" in err, err
    assert not out.exists()
