"""Evaluation core: suite registry, run_evaluation (files, resume, refusal), rescore, recipe parsing."""
from __future__ import annotations

import json

import pytest

from toolace_mt.config import RecipeError
from toolace_mt.evaluation.config import parse_recipe
from toolace_mt.evaluation.run import rescore, run_evaluation, select_tasks
from toolace_mt.evaluation.suites import Suite, get_suite, load_trajectories, register_suite, save_trajectory
from toolace_mt.runs import RecipeChanged, read_jsonl

CALLS = {"n": 0}


@register_suite("_echo_test")
class EchoSuite(Suite):
    """Task: answer with a tool call named as the task's `want`. The oracle gets it from gold."""

    def load_tasks(self, cfg):
        return [{"id": f"t{i}", "category": "a" if i % 2 else "b", "want": f"f{i}"} for i in range(6)]

    def version(self, cfg):
        return "echo-v1"

    def run(self, policy, tasks, cfg, out_dir, trial=0):
        from toolace_mt.evaluation.policy import PolicyInput

        CALLS["n"] += len(tasks)
        outs = policy.act([PolicyInput([], [], gold=[{"name": t["want"], "arguments": {}}], task_id=t["id"])
                           for t in tasks])
        trajs = []
        for t, o in zip(tasks, outs):
            tr = {"task_id": t["id"], "category": t["category"], "trial": trial, "calls": o.tool_calls}
            save_trajectory(out_dir, tr)
            trajs.append(tr)
        return trajs

    def score(self, task, trajectory):
        ok = [c["name"] for c in trajectory["calls"]] == [task["want"]]
        return {"task_id": task["id"], "category": task["category"], "trial": trajectory["trial"],
                "correct": ok, "score": float(ok), "reasons": [] if ok else ["wrong call"]}


def cfg(**kw):
    return parse_recipe({"suite": "_echo_test", "policy": {"kind": kw.pop("kind", "oracle")}, "progress": False, **kw})


def test_run_writes_everything_and_resumes(tmp_path):
    CALLS["n"] = 0
    s = run_evaluation(cfg(), tmp_path / "r")
    assert s["categories"] == {"a": 1.0, "b": 1.0} and s["overall"] == 1.0 and s["task_set_version"] == "echo-v1"
    for f in ("recipe.yaml", "trajectories.jsonl", "results.jsonl", "summary.json", "report.md"):
        assert (tmp_path / "r" / f).exists()
    assert "100.00%" in (tmp_path / "r" / "report.md").read_text()
    assert len(read_jsonl(tmp_path / "r" / "results.jsonl")) == 6
    assert CALLS["n"] == 6
    s2 = run_evaluation(cfg(), tmp_path / "r")  # resume: nothing left to play
    assert CALLS["n"] == 6 and s2["overall"] == 1.0
    with pytest.raises(RecipeChanged):
        run_evaluation(cfg(kind="null"), tmp_path / "r")


def test_partial_run_resumes_only_missing(tmp_path):
    CALLS["n"] = 0
    out = tmp_path / "r"
    run_evaluation(cfg(), out)
    lines = (out / "trajectories.jsonl").read_text().splitlines()
    (out / "trajectories.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])  # killed mid-write
    assert len(load_trajectories(out)) == 2
    s = run_evaluation(cfg(), out)
    assert CALLS["n"] == 6 + 4 and s["n_scored"] == 6


def test_null_and_trials_and_limit(tmp_path):
    s = run_evaluation(cfg(kind="null", n_trials=2, limit=2), tmp_path / "n")
    assert s["overall"] == 0.0 and s["n_scored"] == 8 and s["counts"] == {"a": 4, "b": 4}


def test_rescore_uses_saved_trajectories(tmp_path):
    out = tmp_path / "r"
    run_evaluation(cfg(), out)
    rows = [json.loads(x) for x in (out / "trajectories.jsonl").read_text().splitlines()]
    rows[0]["calls"] = []
    (out / "trajectories.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = rescore(out)
    assert s["rescored"] and s["n_scored"] == 6 and s["overall"] < 1.0


def test_config_strict_and_registry():
    with pytest.raises(RecipeError):
        parse_recipe({"suite": "bfcl", "categorys": []})
    with pytest.raises(RecipeError):
        parse_recipe({"n_trials": 0})
    with pytest.raises(RecipeError):
        get_suite("nope")
    tasks = EchoSuite().load_tasks(None)
    assert [t["id"] for t in select_tasks(tasks, cfg(categories=["a"], limit=2))] == ["t1", "t3"]


@pytest.mark.parametrize("failed, code", [(3, 1), (2, 0)])
def test_evaluate_exits_nonzero_when_every_model_request_failed(tmp_path, monkeypatch, capsys, failed, code):
    """A model that never answered scores 0 everywhere; that is an outage to report, not a result (the run is kept)."""
    import types

    from toolace_mt.app.cli import main
    from toolace_mt.evaluation import policies
    from toolace_mt.llm.types import LLMFailure

    real = policies.make_policy

    def failing_policy(cfg):
        pol = real({"kind": "null"})
        pol.client = types.SimpleNamespace(n_requests=3, n_failed=failed,
                                           first_failure=LLMFailure("backend", "connection refused"))
        return pol

    monkeypatch.setattr(policies, "make_policy", failing_policy)
    recipe = tmp_path / "ev.yaml"
    recipe.write_text("task: evaluate\nsuite: tau\nsource: own\nlimit: 2\npolicy: {kind: \"null\"}\n")
    rc = main(["evaluate", str(recipe), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == code
    assert (tmp_path / "run" / "summary.json").is_file()  # nothing is lost either way
    if code:
        assert "error: all 3 model requests failed (first: backend: connection refused)" in err
        assert json.loads((tmp_path / "run" / "summary.json").read_text())["llm_all_failed"]
    else:
        assert "error" not in err
