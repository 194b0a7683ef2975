"""BFCL suite on the OFFICIAL v3 multi-turn entries (needs the pinned bfcl-eval package; skipped otherwise).

Checks: oracle 100% on all four categories with our checker; null fails every entry with the reason the rules
give; our verdicts equal the official multi_turn_checker's on every oracle and perturbed entry; the step cap,
the held-out-function turn and the executor's safety.
"""
from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bfcl_eval") is None,
                                reason="bfcl-eval not installed (pip install --no-deps bfcl-eval==2026.3.23)")

from toolace_mt.evaluation.bfcl import CATEGORIES, HELDOUT_USER_MESSAGE, MAX_STEPS  # noqa: E402
from toolace_mt.evaluation.config import parse_recipe  # noqa: E402
from toolace_mt.evaluation.policy import PolicyInput, PolicyOutput  # noqa: E402
from toolace_mt.evaluation.run import run_evaluation  # noqa: E402


@pytest.fixture(scope="module")
def tasks():
    from toolace_mt.evaluation.bfcl import official

    return official.load_tasks()


def _cfg(kind, **kw):
    return parse_recipe({"suite": "bfcl", "source": "official", "policy": {"kind": kind}, "progress": False, **kw})


def test_official_counts(tasks):
    assert {c: sum(t["category"] == c for t in tasks) for c in CATEGORIES} == {c: 200 for c in CATEGORIES}


@pytest.mark.slow
def test_oracle_is_100_on_all_four(tmp_path):
    s = run_evaluation(_cfg("oracle"), tmp_path / "o")
    assert s["categories"] == {c: 1.0 for c in CATEGORIES}, s["errors"]
    assert s["n_scored"] == 800 and s["overall"] == 1.0


@pytest.mark.slow
def test_null_scores_what_the_rules_imply(tmp_path, tasks):
    s = run_evaluation(_cfg("null"), tmp_path / "n")
    # every entry has a turn with non-empty ground truth, where a model that never calls fails
    must_fail = {c: sum(1 for t in tasks if t["category"] == c and any(t["ground_truth"])) for c in CATEGORIES}
    assert must_fail == {c: 200 for c in CATEGORIES}
    assert s["categories"] == {c: 0.0 for c in CATEGORIES}
    assert s["errors"] == {c: {"empty_turn_model_response": 200} for c in CATEGORIES}


@pytest.mark.slow
def test_verdicts_equal_official_checker_on_oracle_and_perturbed():
    from toolace_mt.evaluation.bfcl.crosscheck import crosscheck
    from toolace_mt.evaluation.bfcl.perturb import PERTURBATIONS

    rep = crosscheck(perturb=1.0, seed=7, progress=False)
    assert rep["by_variant"]["oracle"] == {"n": 800, "agree": 800, "ours_correct": 800, "official_correct": 800}
    pert = rep["by_variant"]["perturbed"]
    assert pert["n"] == 800 and rep["disagreements"] == 0, rep["disagreeing_ids"]
    assert 0 < pert["ours_correct"] < pert["n"]  # the perturbed set holds both verdicts
    kinds = {r["perturbation"] for r in rep["entries"] if r["variant"] == "perturbed"}
    assert kinds == set(PERTURBATIONS)


class AlwaysCall:
    """Scripted test policy: always calls `pwd()` (never ends a turn by itself)."""

    name = "always_pwd"

    def act(self, batch):
        return [PolicyOutput(tool_calls=[{"name": "pwd", "arguments": {}}]) for _ in batch]


def test_step_cap_force_quits_the_entry(tasks):
    from toolace_mt.evaluation.bfcl.harness import play
    from toolace_mt.evaluation.bfcl.suite import BFCLSuite

    task = next(t for t in tasks if t["category"] == "base" and "GorillaFileSystem" in t["involved_classes"]
                and len(t["question"]) > 1)
    (tr,) = play(AlwaysCall(), [task], progress=False)
    assert tr["force_quit"] and len(tr["turns"]) == 1 and len(tr["turns"][0]) == MAX_STEPS + 1
    s = BFCLSuite().score(task, tr)
    assert not s["correct"] and s["error_type"] == "force_terminated"


class Recorder:
    name = "recorder"

    def __init__(self):
        self.seen: list[PolicyInput] = []

    def act(self, batch):
        self.seen.extend(batch)
        return [PolicyOutput(content="ok") for _ in batch]


def test_heldout_functions_arrive_at_their_turn(tasks):
    from toolace_mt.evaluation.bfcl.harness import play

    task = next(t for t in tasks if t["category"] == "miss_func")
    (turn, names), = [(int(k), v) for k, v in task["missed_function"].items()][:1]
    rec = Recorder()
    play(rec, [task], progress=False)
    assert len(rec.seen) == len(task["question"])  # one text step per turn
    for t, inp in enumerate(rec.seen):
        shown = {tl["function"]["name"] for tl in inp.tools}
        assert (set(names) <= shown) == (t >= turn)
    assert rec.seen[turn].messages[-1] == {"role": "user", "content": HELDOUT_USER_MESSAGE}


def test_executor_is_safe(tasks):
    from toolace_mt.evaluation.bfcl.backends import make_world

    w = make_world(next(t for t in tasks if "GorillaFileSystem" in t["involved_classes"]))
    for call in [{"name": "__import__", "arguments": {"name": "os"}}, {"name": "exit", "arguments": {}},
                 {"name": "ls", "arguments": {"no_such_arg": 1}}, {"name": None}, {"name": "cd", "arguments": None},
                 {"name": "os.system", "arguments": {"command": "true"}}]:
        r = w.execute(call)
        assert isinstance(r, str) and r.startswith("Error during execution"), (call, r)
    assert w.execute({"name": "pwd", "arguments": {}}).startswith("{")


def test_official_tools_are_json_schema(tasks):
    import jsonschema

    from toolace_mt.evaluation.bfcl.backends import all_tools

    seen = set()
    for t in tasks:
        for name, tool in all_tools(t).items():
            if name in seen:
                continue
            seen.add(name)
            jsonschema.Draft7Validator.check_schema(tool["function"]["parameters"])
            assert '"dict"' not in str(tool) and "'float'" not in str(tool)
    assert len(seen) > 100


def test_cli_crosscheck_and_bench(capsys):
    from toolace_mt.app.cli import main

    assert main(["crosscheck", "--limit", "5", "--perturb", "1.0"]) == 0
    assert '"disagreements": 0' in capsys.readouterr().out
    assert main(["bench", "evaluation", "--n", "40"]) == 0
    assert '"correct": 40' in capsys.readouterr().out
