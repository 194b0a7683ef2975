"""The ACE suite on our own items: oracle 100%, null by the rules, agent e2e/process, end-to-end run."""
from __future__ import annotations

import json

import pytest

from toolace_mt.evaluation.ace.agent_envs import AGENT_ENVS
from toolace_mt.evaluation.ace.agent_tasks import build_agent_tasks
from toolace_mt.evaluation.ace.official import AGENT, NORMAL, SPECIAL
from toolace_mt.evaluation.ace.own_tasks import build_normal_special
from toolace_mt.evaluation.ace.suite import AceSuite, _in_order
from toolace_mt.evaluation.config import parse_recipe
from toolace_mt.evaluation.policies import make_policy
from toolace_mt.evaluation.policy import PolicyOutput
from toolace_mt.evaluation.suites import get_suite


def _cfg(**kw):
    raw = {"suite": "ace", "source": "own", "policy": {"kind": "oracle"}, "progress": False}
    raw.update(kw)
    return parse_recipe(raw)


def _play(policy, tasks=None, **kw):
    cfg = _cfg(**kw)
    suite = get_suite("ace")
    tasks = tasks if tasks is not None else suite.load_tasks(cfg)
    by = {t["id"]: t for t in tasks}
    trajs = suite.run(policy, tasks, cfg, None)
    return tasks, [suite.score(by[tr["task_id"]], tr) for tr in trajs]


@pytest.fixture(scope="module")
def oracle():
    return _play(make_policy({"kind": "oracle"}))


def test_own_items_cover_every_category_deterministically():
    a, b = build_normal_special(), build_normal_special()
    assert a == b and build_agent_tasks() == build_agent_tasks()
    cats = {t["category"] for t in a + build_agent_tasks()}
    assert cats == set(NORMAL + SPECIAL + AGENT)
    agent = build_agent_tasks()
    for t in agent:
        assert t["actions"] and sum(x["category"] == t["category"] for x in agent) >= 10


def test_oracle_scores_100_under_both_scorers(oracle):
    tasks, scores = oracle
    assert len(scores) == len(tasks)
    assert [(s["task_id"], s["reasons"]) for s in scores if not s["correct"]] == []
    assert [s["task_id"] for s in scores if not s["compat_correct"]] == []
    summ = AceSuite().summarize(scores)
    assert summ["overall"] == 1.0 and summ["compat_acebench"]["overall"] == 1.0
    assert summ["process_accuracy"]["agent_multi_turn"] == 1.0 and summ["groups_missing"] == []


def _writes(task):
    specs = AGENT_ENVS[task["env"]].tool_specs()
    return [a for a in task["actions"] if specs[a["name"]].writes]


def test_null_policy_scores_what_the_rules_imply():
    tasks, scores = _play(make_policy({"kind": "null"}))
    by = {t["id"]: t for t in tasks}
    for s in scores:
        t = by[s["task_id"]]
        if t["category"].startswith("agent"):
            expected = not _writes(t)  # nothing changes: only a read-only task would pass
            assert s["correct"] == expected and s["process"] == (1.0 if expected else 0.0)
        else:
            assert not s["correct"] and not s["compat_correct"]  # no call, no detection phrase
    assert AceSuite().summarize(scores)["overall"] == 0.0


class SkipOneWrite:
    name = "skip"

    def __init__(self, tasks):
        self.oracle = make_policy({"kind": "oracle"})
        self.skip = {t["id"]: _writes(t)[-1] for t in tasks}

    def act(self, batch):
        out = []
        for inp, o in zip(batch, self.oracle.act(batch)):
            tgt = self.skip.get(inp.task_id)
            if o.tool_calls and tgt and o.tool_calls[0] == {"name": tgt["name"], "arguments": tgt["kwargs"]}:
                o = PolicyOutput(content="Done.")
            out.append(o)
        return out


def test_agent_skipping_one_write_fails_end_to_end_and_loses_process():
    tasks = build_agent_tasks()
    _, scores = _play(SkipOneWrite(tasks), tasks=tasks)
    for s in scores:
        assert not s["correct"] and not s["compat_correct"], s["task_id"]
        assert 0.0 <= s["process"] < 1.0


def test_process_accuracy_is_the_in_order_fraction():
    same = lambda a, b: a == b  # noqa: E731
    # the longest prefix of the milestones found in order: a, then b (after c); c never follows b -> 2/4
    assert _in_order(["a", "b", "c", "d"], ["a", "x", "c", "b", "d"], same) == 0.5
    assert _in_order(["a", "b"], ["b", "a"], same) == 0.5
    assert _in_order(["a", "b"], ["a", "z", "b"], same) == 1.0
    assert _in_order([], [], same) == 1.0


class FakeUserClient:
    """Scripted LLM user: says each fact of the agent task, then ACEBench's stop phrase."""

    def __init__(self, tasks):
        self.by = {t["id"]: t for t in tasks}
        self.seen = []

    def chat(self, reqs):
        from toolace_mt.llm.types import ChatResponse

        out = []
        for r in reqs:
            self.seen.append(r)
            t = self.by[r.payload["task_id"]]
            n = r.payload["turn"]
            out.append(ChatResponse(text=t["script"][n]["say"] if n < len(t["script"]) else "finish conversation"))
        return out


def test_agent_multi_turn_with_an_llm_user_stops_on_the_acebench_phrase(monkeypatch):
    from toolace_mt.evaluation.episodes import users

    tasks = [t for t in build_agent_tasks() if t["category"] == "agent_multi_turn"][:3]
    fake = FakeUserClient(tasks)
    import toolace_mt.evaluation.ace.suite as ace_suite

    monkeypatch.setattr(ace_suite, "make_user", lambda options, seed=None: users.LLMUser(fake, seed=seed))
    _, scores = _play(make_policy({"kind": "oracle"}), tasks=tasks, options={"user": "llm"})
    assert all(s["correct"] and s["termination"] == "user_stop" for s in scores)
    assert fake.seen and tasks[0]["instruction"] in fake.seen[0].messages[0]["content"]


def test_run_evaluation_end_to_end_and_rescore(tmp_path):
    from toolace_mt.evaluation.run import rescore, run_evaluation

    cfg = _cfg(categories=["normal_multi_turn_user_switch", "special_incomplete", "agent_multi_step"])
    summ = run_evaluation(cfg, tmp_path / "run")
    assert summ["overall_renormalised"] == 1.0 and summ["n_scored"] == 10 + 10 + 11
    # ACEBench's Summary counts every category not run as 0: 1 of 12 normal, 1 of 3 special, 1 of 2 agent
    official = round(0.578 / 12 + 0.2676 / 3 + 0.1545 / 2, 3)
    assert summ["overall"] == official == summ["compat_acebench"]["overall"] == 0.215
    assert summ["compat_acebench"]["overall_renormalised"] == 1.0
    p = tmp_path / "run" / "trajectories.jsonl"
    rows = [json.loads(x) for x in p.read_text().splitlines()]
    # corrupt one multi-turn item: its whole conversation fails; and drop the agent's last write
    i = next(k for k, r in enumerate(rows) if r["task_id"] == "own_normal_multi_turn_user_switch_0_1")
    rows[i]["tool_calls"] = []
    j = next(k for k, r in enumerate(rows) if r["task_id"] == "own_agent_multi_step_0")
    rows[j]["actions"] = rows[j]["actions"][:-1]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summ2 = rescore(tmp_path / "run")
    assert summ2["categories"]["normal_multi_turn_user_switch"] == pytest.approx(4 / 5)
    assert summ2["process_accuracy"]["normal_multi_turn_user_switch"] == pytest.approx(0.9)
    assert summ2["categories"]["agent_multi_step"] == pytest.approx(10 / 11)
    assert summ2["process_accuracy"]["agent_multi_step"] == pytest.approx((10 + 0.5) / 11)


@pytest.mark.slow
def test_transformers_policy_end_to_end(tiny_model_dir, tmp_path):
    from toolace_mt.evaluation.run import run_evaluation

    cfg = _cfg(limit=1, max_steps=3, categories=["normal_single_turn_single_function", "special_irrelevant",
                                                  "agent_multi_step"],
               policy={"kind": "transformers", "model": str(tiny_model_dir), "max_new_tokens": 12, "batch_size": 4})
    s = run_evaluation(cfg, tmp_path / "t")
    assert s["n_scored"] == s["n_expected"] == 3
    assert all(0.0 <= v <= 1.0 for v in s["categories"].values())
    rows = [json.loads(x) for x in (tmp_path / "t" / "trajectories.jsonl").read_text().splitlines()]
    assert sum(r.get("completion_tokens", 0) for r in rows) > 0
