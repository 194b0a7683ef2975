"""Ray executor: a sharded Ray run equals the single in-process run byte for byte, a worker killed mid-shard is
retried by Ray with the same result, finished shards are not re-run. One local Ray instance for the module
(Ray start-up takes seconds on a small machine)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolace_mt.app.cli import main
from toolace_mt.generation.config import parse_recipe
from toolace_mt.generation.run import run_generation

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'toolace-mt[ray]')")

RAW = {"name": "raytest", "domains": ["banking"], "n_dialogues": 8, "seed": 3, "batch_size": 2,
       "refinement_steps": 1, "progress": False}
OUTPUTS = ("dataset/train.jsonl", "rejected.jsonl", "card.json")


def cfg(**kw):
    return parse_recipe(dict(RAW, **kw))


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    run_generation(cfg(), out)
    return out


def assert_same(a: Path, b: Path):
    for f in OUTPUTS:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_ray_shards_equal_single_run(ray_session, single, tmp_path):
    from toolace_mt.generation.distributed import generate_on_ray

    out = tmp_path / "ray"
    s = generate_on_ray(cfg(), out, shards=3)
    assert s["executor"]["shards"] == 3 and s["executor"]["resources"] == {"num_cpus": 1, "num_gpus": 0}
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["0-of-3", "1-of-3", "2-of-3"]
    assert s["counts"]["generated"] == 8
    assert_same(single, out)
    # a second run resumes: every shard is finished, nothing is resubmitted, same output
    again = generate_on_ray(cfg(), out, shards=3)
    assert again["executor"]["resumed_finished"] == 3
    assert_same(single, out)


def test_killed_worker_is_retried_and_result_unchanged(ray_session, single, tmp_path):
    from toolace_mt.generation.distributed import generate_on_ray

    marker = tmp_path / "killed-once"

    def kill_first_attempt(stage, chunk):  # pickled by value to the workers
        import os

        if chunk == 1 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker process dies mid-shard, as on OOM or preemption

    out = tmp_path / "ray"
    generate_on_ray(cfg(), out, shards=2, hook=kill_first_attempt)
    assert marker.exists()  # the kill happened
    # shard 1 (chunks 1, 3) died after chunk 1's first stage; the retry resumed from that file
    assert_same(single, out)


def test_cli_ray_executor_and_errors(ray_session, single, tmp_path, capsys, monkeypatch):
    recipe = tmp_path / "r.yaml"
    import yaml

    recipe.write_text(yaml.safe_dump(dict(RAW, task="generate")))
    out = tmp_path / "cli"
    assert main(["generate", str(recipe), "--out", str(out), "--executor", "ray", "--shards", "2"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["executor"]["shards"] == 2
    assert_same(single, out)
    assert main(["generate", str(recipe), "--out", str(out), "--executor", "ray", "--shard", "0/2"]) == 2
    assert main(["generate", str(recipe), "--out", str(out), "--shards", "2"]) == 2
    assert "need --executor ray" in capsys.readouterr().err


def test_missing_ray_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    import sys

    import yaml

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(dict(RAW, task="generate")))
    assert main(["generate", str(recipe), "--out", str(tmp_path / "o"), "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "toolace-mt[ray]" in err and "\n" not in err


def test_shard_resources_from_recipe():
    from toolace_mt.executor import default_shards, shard_resources
    from toolace_mt.llm.client import LLMConfig

    vllm = LLMConfig(backend="vllm", model="m", extra={"tensor_parallel_size": 2, "data_parallel_size": 4})
    assert shard_resources(vllm, "llm") == {"num_cpus": 1, "num_gpus": 2}
    assert default_shards(vllm, "llm") == 4
    assert shard_resources(LLMConfig(backend="openai", model="m"), "llm")["num_gpus"] == 0
    assert shard_resources(LLMConfig(backend="transformers", model="m", device="cpu"), "llm")["num_gpus"] == 0
    assert shard_resources(vllm, "rules")["num_gpus"] == 0


def _eval_cfg(tmp_path, suite):
    from toolace_mt.config import dataclass_from_dict
    from toolace_mt.evaluation.config import EvaluateConfig

    if suite == "tau":
        raw = {"suite": "tau", "source": "own", "categories": ["retail", "airline"], "n_trials": 2, "limit": 3,
               "options": {"user": "scripted"}, "policy": {"kind": "oracle"}, "progress": False}
    else:
        raw = {"suite": "bfcl", "source": "own", "tasks": str(tmp_path / "bfcl_tasks"), "limit": 2,
               "categories": ["base", "miss_param", "miss_func"], "options": {"build": {"per_category": 2, "seed": 0}},
               "policy": {"kind": "null"}, "progress": False}
    return dataclass_from_dict(EvaluateConfig, raw)


@pytest.mark.parametrize("suite", ["tau", "bfcl"])
def test_ray_evaluation_equals_single_run(ray_session, tmp_path, suite):
    from toolace_mt.evaluation.run import run_evaluation
    from toolace_mt.evaluation.distributed import evaluate_on_ray

    single = run_evaluation(_eval_cfg(tmp_path, suite), tmp_path / "single")
    ray_s = evaluate_on_ray(_eval_cfg(tmp_path, suite), tmp_path / "ray", shards=3)
    assert ray_s["executor"]["shards"] == 3 and ray_s["n_scored"] == single["n_scored"] > 0
    assert (tmp_path / "single" / "results.jsonl").read_bytes() == (tmp_path / "ray" / "results.jsonl").read_bytes()
    for k in ("overall", "categories", "counts"):
        assert ray_s.get(k) == single.get(k), k
    again = evaluate_on_ray(_eval_cfg(tmp_path, suite), tmp_path / "ray", shards=3)
    assert again["executor"]["resumed_finished"] == 3 and again["n_run_this_session"] == 0


def test_cli_evaluate_ray_flags_need_the_ray_executor(tmp_path, capsys):
    import yaml

    recipe = tmp_path / "e.yaml"
    recipe.write_text(yaml.safe_dump({"task": "evaluate", "suite": "tau", "source": "own", "categories": ["retail"],
                                      "limit": 1, "policy": {"kind": "null"}, "progress": False}))
    assert main(["evaluate", str(recipe), "--out", str(tmp_path / "o"), "--shards", "2"]) == 2
    assert "need --executor ray" in capsys.readouterr().err
