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
    for t in build_agent_tasks():
        assert len([x for x in t["actions"]]) >= 1 and sum(x["category"] == t["category"] for x in build_agent_tasks()) >= 10


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
    assert _in_order(["a", "b", "c", "d"], ["a", "x", "c", "b", "d"], same) == 0.5  # a, b, d in order -> 3/4? no
