"""`reproduce --executor ray`: each phase's steps run as Ray tasks and give what the in-process run gives;
finished steps are reused, not resubmitted; what arms share is built once by the driver. One local Ray instance
for the module (Ray start-up takes seconds on a small machine)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from toolace_mt.app.cli import main

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'toolace-mt[ray]')")

ROOT = Path(__file__).resolve().parents[2]
DEBUG = "recipes/reproduce/debug.yaml"


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _eval_jobs(tmp_path: Path, out: Path):
    from toolace_mt.app.reproduce import StepRef

    recipe = tmp_path / "bfcl.yaml"
    recipe.write_text(yaml.safe_dump({
        "task": "evaluate", "suite": "bfcl", "source": "own", "tasks": str(tmp_path / "bfcl_tasks"),
        "categories": ["base", "miss_param", "miss_func"], "options": {"build": {"per_category": 2, "seed": 0}},
        "policy": {"kind": "oracle"}, "progress": False}))
    ref = StepRef(recipe=str(recipe))
    return [("evaluate", ref, out / arm, {"policy.name": arm}) for arm in ("A", "B", "C")]


def test_ray_steps_equal_local_steps_and_reuse_finished(ray_session, tmp_path, capsys):
    from toolace_mt.app.reproduce import run_steps_local
    from toolace_mt.app.reproduce_ray import RaySteps

    runner = RaySteps()
    # the own task set does not exist yet: the driver builds it once before the three tasks read it
    ray_out = runner(_eval_jobs(tmp_path, tmp_path / "ray"))
    assert (tmp_path / "bfcl_tasks").is_dir()
    assert runner.describe()["steps_submitted"] == 3 and runner.describe()["cluster_gpus"] == 0
    local_out = run_steps_local(_eval_jobs(tmp_path, tmp_path / "local"))
    for arm, r, loc in zip("ABC", ray_out, local_out):
        assert r["overall"] == loc["overall"] and r["n_scored"] == loc["n_scored"] > 0
        assert (tmp_path / "ray" / arm / "results.jsonl").read_bytes() == \
            (tmp_path / "local" / arm / "results.jsonl").read_bytes()
    # finished steps are reused by the driver; only the missing one is submitted
    (tmp_path / "ray" / "B" / "summary.json").unlink()
    capsys.readouterr()
    again = runner(_eval_jobs(tmp_path, tmp_path / "ray"))
    assert runner.describe()["steps_submitted"] == 4 and runner.describe()["steps_reused"] == 2
    assert [a["overall"] for a in again] == [a["overall"] for a in ray_out]


def test_cli_address_needs_the_ray_executor(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "o"
    assert main(["reproduce", DEBUG, "--out", str(out), "--address", "auto"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --address needs --executor ray"
    assert not out.exists()  # refused before anything ran


def test_cli_missing_ray_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    out = tmp_path / "o"
    assert main(["reproduce", DEBUG, "--out", str(out), "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "toolace-mt[ray]" in err and "\n" not in err
    assert not out.exists()


def _table_rows(report: str) -> list[list[str]]:
    sec = report.split("## Comparison", 1)[1].split("\n## ", 1)[0]
    return [r for r in sec.splitlines() if r.startswith("| ")]


@pytest.mark.slow
def test_reproduce_on_ray_equals_local_run(ray_session, debug_reproduce, tmp_path, monkeypatch, capsys):
    """The debug reproduce in-process (shared fixture), then a copy of it again on Ray with one arm's data, its
    fine-tune and every evaluation removed (the rest is reused, as on any rerun): the same data, scores and
    report table."""
    monkeypatch.chdir(ROOT)
    local = debug_reproduce
    run = tmp_path / "ray" / "run"
    shutil.copytree(local / "run", run)
    for d in ("generate/mas", "train/mas", "evaluate"):
        shutil.rmtree(run / d)
    capsys.readouterr()
    assert main(["reproduce", DEBUG, "--out", str(run), "--results", str(tmp_path / "ray" / "results"),
                 "--executor", "ray"]) == 0
    ex = json.loads((run / "steps.json").read_text())["executor"]
    # submitted: generate/mas, train/mas, 3 arms x 2 evaluations; reused: the other arm's data, the base's two
    # datasets, the base and the other arm, and the seed run's 2 fine-tunes and 2 x 2 evaluations (the seeds phase
    # goes through the executor too)
    assert (ex["name"], ex["steps_submitted"], ex["steps_reused"]) == ("ray", 8, 11)
    assert (run / "generate/mas/dataset/train.jsonl").read_bytes() == \
        (local / "run/generate/mas/dataset/train.jsonl").read_bytes()
    for arm in ("base", "mas", "toolace_mt"):
        for name in ("bfcl_own", "tau_own"):
            a = json.loads((local / "run/evaluate" / arm / name / "summary.json").read_text())
            b = json.loads((run / "evaluate" / arm / name / "summary.json").read_text())
            assert (a["overall"], a["n_scored"], a.get("categories")) == \
                (b["overall"], b["n_scored"], b.get("categories")), (arm, name)
    rows = _table_rows((local / "results/report.md").read_text())
    assert rows and rows == _table_rows((tmp_path / "ray" / "results/report.md").read_text())


def test_ablation_runs_as_three_batches(monkeypatch):
    """The ablation hands the runner one batch per phase (data per value, fine-tunes, evaluations), wired as
    before: each fine-tune reads its value's data, each evaluation loads its own fine-tune."""
    import toolace_mt.app.reproduce as rep
    from toolace_mt.config import load_recipe

    monkeypatch.chdir(ROOT)
    _, cfg, _ = load_recipe("recipes/reproduce/ablation_refinement.yaml", ["ablation.verify=[true, false]"],
                            expect="reproduce")
    monkeypatch.setattr(rep, "policy_for_train_run", lambda p: {"policy.model": str(p)})
    monkeypatch.setattr(rep, "unfiltered_dataset", lambda g: g / "dataset_unfiltered")
    batches = []

    def runner(jobs):
        batches.append(jobs)
        return [{"out": str(out)} for _, _, out, _ in jobs]

    root = Path("/run")
    res = rep.run_ablation(cfg, root, "BASE", runner)
    n = len(cfg.ablation.values)
    assert [len(b) for b in batches] == [n, 2 * n, 2 * n * len(cfg.evaluate)]
    assert [{j[0] for j in b} for b in batches] == [{"generate"}, {"train"}, {"evaluate"}]
    _, _, out, extra = batches[1][1]  # value 0, verification off
    assert out == root / "ablation/refinement_steps=0/verify=off/train"
    assert extra == {"datasets": [{"path": str(root / "ablation/refinement_steps=0/generate/dataset_unfiltered")}],
                     "model_name_or_path": "BASE"}
    tag = "refinement_steps=3/verify=on"
    name = next(iter(cfg.evaluate))
    assert res[tag][name] == {"out": str(root / "ablation" / tag / "evaluate" / name)}
    ev = [j for j in batches[2] if j[2] == root / "ablation" / tag / "evaluate" / name][0]
    assert ev[3]["policy.model"] == str(root / "ablation" / tag / "train")


def test_cpu_train_steps_share_the_cluster_cpus():
    """A lone CPU train step (the base pretrain) gets every CPU; two arm fine-tunes one each; GPU train steps and
    evaluation steps keep what they asked for."""
    from toolace_mt.app.reproduce_ray import share_cpus

    one = {"num_cpus": 1, "num_gpus": 0}
    assert share_cpus(["train"], [one], 2.0) == [{"num_cpus": 2, "num_gpus": 0}]
    assert share_cpus(["train", "train"], [one, one], 2.0) == [one, one]
    assert share_cpus(["train"] * 3, [one] * 3, 2.0) == [one] * 3
    gpu = {"num_cpus": 1, "num_gpus": 1}
    assert share_cpus(["train", "train"], [gpu, one], 4.0) == [gpu, {"num_cpus": 4, "num_gpus": 0}]
    assert share_cpus(["evaluate"] * 2, [one] * 2, 8.0) == [one, one]


def test_a_step_gets_the_threads_of_its_cpus(ray_session):
    """The worker's torch uses as many threads as CPUs Ray assigned, though the driver's OMP_NUM_THREADS says 1,
    and a later one-CPU step goes back to one thread (Ray reuses worker processes)."""
    from toolace_mt.app.reproduce_ray import _use_assigned_cpus

    def threads(start: int) -> int:
        import torch

        torch.set_num_threads(start)
        _use_assigned_cpus()
        return torch.get_num_threads()

    assert ray_session.get(ray_session.remote(num_cpus=2)(threads).remote(1)) == 2
    assert ray_session.get(ray_session.remote(num_cpus=1)(threads).remote(2)) == 1
