"""ACEBench's official agent items on ACEBench's own scenario classes and evaluation, imported from the download
(`toolace-mt data acebench` fetches the source beside the data). Skipped with the reason when the copy at
$TOOLACE_ACEBENCH_DIR has no source (the data-only copy) or it does not import here."""
from __future__ import annotations

import contextlib
import io
import json
import random

import pytest

from acebench_data import DATA, HAVE, SKIP_REASON
from toolace_mt.evaluation.ace import official_agent as oa
from toolace_mt.evaluation.config import parse_recipe
from toolace_mt.evaluation.policies import make_policy
from toolace_mt.evaluation.suites import get_suite

_WHY = SKIP_REASON if not HAVE else oa.importable(DATA)
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"official ACEBench agent items not runnable: {_WHY}"[:300])


def _play(kind: str, **kw):
    cfg = parse_recipe({"suite": "ace", "source": "official", "tasks": str(DATA), "policy": {"kind": kind},
                        "progress": False, "categories": ["agent_multi_turn", "agent_multi_step"], **kw})
    suite = get_suite("ace")
    tasks = [t for t in suite.load_tasks(cfg) if t["category"].startswith("agent")]
    trajs = suite.run(make_policy(cfg.policy), tasks, cfg, None)
    by = {t["id"]: t for t in tasks}
    scores = [suite.score(by[tr["task_id"]], tr) for tr in trajs]
    return tasks, trajs, scores, suite.summarize(scores)


@pytest.fixture(scope="module")
def oracle():
    return _play("oracle")


def _complete(task) -> bool:
    """Whether replaying the item's milestones reaches its ground truth (ACEBench's own checker on the state)."""
    src = oa.AceSource.load(DATA)
    gold = oa.gold_actions(task)
    return oa.official_verdict(src, task, oa.replay(src, task, gold), [oa.message_string([g]) for g in gold])["correct"]


def test_all_fifty_items_run_and_the_oracle_scores_what_its_milestones_reach(oracle):
    """The oracle replays the milestones; ACEBench's evaluation passes exactly the items whose milestones reach
    the ground truth (some items' milestones omit a required login or name a product the menu lacks)."""
    tasks, trajs, scores, summ = oracle
    assert {t["category"] for t in tasks} == {"agent_multi_turn", "agent_multi_step"} and len(tasks) == 50
    assert "not_run" not in summ or not set(summ["not_run"]) & {"agent_multi_turn", "agent_multi_step"}
    by = {t["id"]: t for t in tasks}
    for s in scores:
        assert s["correct"] == _complete(by[s["task_id"]]), s["task_id"]
        assert s["correct"] == s["compat_correct"] and (not s["correct"] or s["process"] == 1.0)
    assert summ["categories"]["agent_multi_turn"] == pytest.approx(29 / 30)
    assert summ["categories"]["agent_multi_step"] == pytest.approx(12 / 20)


def test_null_policy_scores_zero_end_to_end_and_in_process():
    _, _, scores, summ = _play("null")
    assert not any(s["correct"] for s in scores)
    assert summ["process_accuracy"] == {"agent_multi_step": 0.0, "agent_multi_turn": 0.0}


def test_per_item_verdicts_equal_acebench_on_its_whole_result_file_for_a_perturbed_set(oracle):
    """The oracle's episodes with one call dropped / one argument changed / an extra call, each scored per item
    by the suite, equal ACEBench's agent_eval over the whole result file at once (its CLI's way)."""
    tasks, trajs, _, _ = oracle
    by = {t["id"]: t for t in tasks}
    rng = random.Random(0)
    suite = get_suite("ace")
    variants = []
    for tr in trajs:
        acts = [a for a in tr["actions"]]
        if not acts:
            continue
        kind = rng.choice(["drop", "wrong", "extra"])
        new = [dict(a) for a in acts]
        i = rng.randrange(len(new))
        if kind == "drop":
            new.pop(i)
        elif kind == "wrong" and new[i]["kwargs"]:
            k = sorted(new[i]["kwargs"])[0]
            new[i] = {**new[i], "kwargs": {**new[i]["kwargs"], k: f"{new[i]['kwargs'][k]}_x"}}
        else:
            new.append(dict(acts[-1]))
        msgs = [{"role": "assistant", "tool_calls": [{"function": {"name": a["name"], "arguments": a["kwargs"]}}]}
                for a in new]
        variants.append({**tr, "actions": new, "messages": msgs})
    src = oa.AceSource.load(DATA)
    for cat in ("agent_multi_turn", "agent_multi_step"):
        vs = [v for v in variants if by[v["task_id"]]["category"] == cat]
        mine = [suite.score(by[v["task_id"]], v) for v in vs]
        rows = [{"id": v["task_id"], "result": oa.replay(src, by[v["task_id"]], v["actions"]),
                 "process": [oa.message_string([{"name": c["function"]["name"], "kwargs": c["function"]["arguments"]}
                                                for c in m["tool_calls"]]) for m in v["messages"]]} for v in vs]
        rows = json.loads(json.dumps(rows, default=str))
        answers = [{"id": v["task_id"], "ground_truth": by[v["task_id"]]["ground_truth"],
                    "mile_stone": by[v["task_id"]]["mile_stone"]} for v in vs]
        em = src.eval_main
        with oa._scratch_cwd() as d, contextlib.redirect_stdout(io.StringIO()):
            em.language, em.OUTPUT_PATH = "en", str(d / "score")
            (d / "score_all" / "score_en" / "whole").mkdir(parents=True)
            acc, proc = em.agent_eval(rows, [{"id": r["id"]} for r in rows], answers, cat, "whole")
            lines = (d / "score" / "whole" / f"data_{cat}_score.json").read_text().splitlines()
            # ACEBench's score file: a header, then one line per failed item (its index in the file)
            failed = {json.loads(line)["id"] for line in lines[1:]}
        assert [not s["correct"] for s in mine] == [i in failed for i in range(len(vs))]  # per item, 100%
        assert acc == pytest.approx(round(sum(s["correct"] for s in mine) / len(mine), 3))
        assert proc == pytest.approx(round(sum(s["process"] for s in mine) / len(mine), 3), abs=1e-3)
        assert any(not s["correct"] for s in mine)  # the set is not all passes
