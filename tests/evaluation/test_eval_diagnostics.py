"""Graded diagnostics (NOT official scores) beside the all-or-nothing verdicts, in the bfcl, tau and ace
suites: oracle -> every diagnostic 1.0, null -> call/name recall 0.0, right names with wrong arguments ->
name recall 1.0 but exact recall 0.0 while the official verdict stays wrong; the report shows them."""
from __future__ import annotations

import copy
import importlib.util

import pytest

from toolace_mt.evaluation.config import parse_recipe
from toolace_mt.evaluation.run import render_report, run_evaluation
from toolace_mt.runs import read_jsonl

BFCL_KEYS = {"call_rate", "name_recall", "exact_call_recall", "turn_accuracy"}


# ---- bfcl ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def own_bfcl(tmp_path_factory):
    from toolace_mt.evaluation.bfcl.build import build_task_set

    out = tmp_path_factory.mktemp("own_bfcl")
    build_task_set(out, per_category=2, seed=5)
    return out


def _bfcl(path, kind):
    return parse_recipe({"suite": "bfcl", "source": "own", "tasks": str(path), "policy": {"kind": kind},
                         "progress": False})


@pytest.fixture(scope="module")
def bfcl_oracle(own_bfcl, tmp_path_factory):
    out = tmp_path_factory.mktemp("bo")
    return run_evaluation(_bfcl(own_bfcl, "oracle"), out), out


def test_bfcl_oracle_diagnostics_all_one(bfcl_oracle):
    s, out = bfcl_oracle
    d = s["diagnostics"]
    assert d["overall"] == {k: 1.0 for k in BFCL_KEYS | {"abstain_rate"}}
    for c in s["categories"]:
        assert set(d[c]) >= BFCL_KEYS and all(v == 1.0 for v in d[c].values())
    assert "abstain_rate" in d["miss_param"] and "abstain_rate" not in d.get("base", {})
    assert s["overall"] == 1.0  # the official number is untouched
    assert "Diagnostics (not official)" in (out / "report.md").read_text()


def test_bfcl_null_diagnostics_zero(own_bfcl, tmp_path):
    s = run_evaluation(_bfcl(own_bfcl, "null"), tmp_path / "n")
    o = s["diagnostics"]["overall"]
    assert o["call_rate"] == o["name_recall"] == o["exact_call_recall"] == o["turn_accuracy"] == 0.0
    assert o["abstain_rate"] == 1.0 and s["overall"] == 0.0


def test_bfcl_right_names_wrong_arguments(own_bfcl, bfcl_oracle):
    from toolace_mt.evaluation.suites import get_suite

    _, out = bfcl_oracle
    suite = get_suite("bfcl")
    tasks = {t["id"]: t for t in read_jsonl(own_bfcl / "tasks.jsonl")}
    n = 0
    for tr in read_jsonl(out / "trajectories.jsonl"):
        bad = copy.deepcopy(tr)
        changed = False
        for turn in bad["turns"]:
            for step in turn:
                for c in step.get("tool_calls") or []:
                    if c.get("arguments"):
                        c["arguments"] = {k: f"wrong-{v}" for k, v in c["arguments"].items()}
                        changed = True
        if not changed:
            continue
        task = tasks[tr["task_id"]]
        if any(s.endswith("()") for turn in task["ground_truth"] for s in turn):
            continue  # a call without arguments cannot be made wrong this way
        s = suite.score(task, bad)
        assert s["correct"] is False and s["score"] == 0.0  # the official verdict stays wrong
        d = s["diagnostics"]
        assert d["name_recall"] == 1.0 and d["call_rate"] == 1.0 and d["exact_call_recall"] == 0.0, d
        n += 1
    assert n >= 3


@pytest.mark.skipif(importlib.util.find_spec("bfcl_eval") is None, reason="bfcl-eval not installed")
def test_bfcl_official_oracle_diagnostics(tmp_path):
    cfg = parse_recipe({"suite": "bfcl", "source": "official", "policy": {"kind": "oracle"}, "progress": False,
                        "limit": 5})
    s = run_evaluation(cfg, tmp_path / "o")
    assert s["overall"] == 1.0
    assert all(v == 1.0 for v in s["diagnostics"]["overall"].values()), s["diagnostics"]


# ---- tau -----------------------------------------------------------------------------------------------------
TAU_KEYS = {"action_name_recall", "action_recall", "output_recall"}


def _tau(kind):
    return parse_recipe({"suite": "tau", "source": "own", "policy": {"kind": kind}, "progress": False, "limit": 4})


@pytest.fixture(scope="module")
def tau_oracle(tmp_path_factory):
    out = tmp_path_factory.mktemp("to")
    return run_evaluation(_tau("oracle"), out), out


def test_tau_oracle_diagnostics_all_one(tau_oracle):
    s, out = tau_oracle
    assert s["overall"] == 1.0
    assert set(s["diagnostics"]["overall"]) == TAU_KEYS
    for part in s["diagnostics"].values():
        assert all(v == 1.0 for v in part.values()), s["diagnostics"]
    assert "Diagnostics (not official)" in (out / "report.md").read_text()


def test_tau_null_diagnostics_zero(tmp_path):
    s = run_evaluation(_tau("null"), tmp_path / "n")
    o = s["diagnostics"]["overall"]
    assert o["action_name_recall"] == o["action_recall"] == 0.0


def test_tau_right_names_wrong_arguments(tau_oracle):
    from toolace_mt.evaluation.suites import get_suite
    from toolace_mt.evaluation.tau.domains import get_domain

    _, out = tau_oracle
    suite = get_suite("tau")
    tasks = {t["id"]: t for t in suite.load_tasks(_tau("oracle"))}
    n = 0
    for tr in read_jsonl(out / "trajectories.jsonl"):
        task = tasks[tr["task_id"]]
        specs = get_domain(task["domain"]).tool_specs()
        if not any(specs[a["name"]].writes for a in task["actions"]) or \
                any(not a.get("kwargs") for a in task["actions"]):
            continue
        bad = copy.deepcopy(tr)
        for a in bad["actions"]:
            a["kwargs"] = {k: f"wrong-{v}" for k, v in (a.get("kwargs") or {}).items()}
        s = suite.score(task, bad)
        assert s["correct"] is False and not s["db_match"]
        assert s["diagnostics"]["action_name_recall"] == 1.0 and s["diagnostics"]["action_recall"] == 0.0
        n += 1
    assert n >= 2


# ---- ace -----------------------------------------------------------------------------------------------------
def _ace(kind):
    return parse_recipe({"suite": "ace", "source": "own", "policy": {"kind": kind}, "progress": False, "limit": 3})


@pytest.fixture(scope="module")
def ace_oracle(tmp_path_factory):
    out = tmp_path_factory.mktemp("ao")
    return run_evaluation(_ace("oracle"), out), out


def test_ace_oracle_diagnostics_all_one(ace_oracle):
    s, out = ace_oracle
    d = s["diagnostics"]
    assert s["overall"] == 1.0 and set(d["overall"]) == {"name_match", "special_phrase", "process"}
    for part in d.values():
        assert all(v == 1.0 for v in part.values()), d
    for c in s["categories"]:
        assert ("process" in d[c]) == c.startswith("agent") and ("special_phrase" in d[c]) == c.startswith("special")
    assert d["agent_multi_step"]["process"] == s["process_accuracy"]["agent_multi_step"]
    assert "Diagnostics (not official)" in (out / "report.md").read_text()


def test_ace_null_diagnostics(tmp_path):
    s = run_evaluation(_ace("null"), tmp_path / "n")
    d = s["diagnostics"]
    for c in s["categories"]:
        if c.startswith("normal"):
            assert d[c]["name_match"] == 0.0
        elif c.startswith("special"):
            assert d[c] == {"name_match": 1.0, "special_phrase": 0.0}  # no call made, no phrase said
        else:
            assert d[c]["process"] == s["process_accuracy"][c]


def test_ace_right_names_wrong_arguments(ace_oracle):
    from toolace_mt.evaluation.suites import get_suite

    _, out = ace_oracle
    suite = get_suite("ace")
    tasks = {t["id"]: t for t in suite.load_tasks(_ace("oracle"))}
    n = 0
    for tr in read_jsonl(out / "trajectories.jsonl"):
        if not tr["category"].startswith("normal") or not all(c.get("arguments") for c in tr["tool_calls"] or [{}]):
            continue
        bad = copy.deepcopy(tr)
        for c in bad["tool_calls"]:
            c["arguments"] = {k: f"wrong-{v}" for k, v in c["arguments"].items()}
        s = suite.score(tasks[tr["task_id"]], bad)
        assert s["correct"] is False and s["diagnostics"]["name_match"] == 1.0
        n += 1
    assert n >= 3


# ---- reports -------------------------------------------------------------------------------------------------
def test_reproduce_comparison_rows_have_diag_rows_after_official_ones():
    from toolace_mt.app.report import comparison_rows

    def summ(v):
        return {"suite": "ace", "source": "own", "overall": 0.0, "categories": {"agent_multi_step": 0.0},
                "groups": {"agent": 0.0}, "process_accuracy": {"agent_multi_step": v},
                "compat_acebench": {"overall": 0.1, "categories": {"agent_multi_step": 0.0}, "groups": {"agent": 0.0},
                                    "process_accuracy": {"agent_multi_step": v / 4}},
                "diagnostics": {"overall": {"name_match": v, "process": v / 2}}}

    rows = comparison_rows({"evaluation": {"ace_own": {"base": summ(0.2), "mas": summ(0.4)}}})
    metrics = [m for _, m, _ in rows]
    # ACE rows: the official-compatible overall, groups and the paper's headline metrics (agent PA = mean agent
    # process accuracy under the official scorer), the corrected checker's as labelled extras, then diagnostics
    extra = "(corrected checker, extra; not the official scorer)"
    assert metrics == ["overall (official-compatible; a group not run counts 0)", "agent", "agent PA (paper)",
                       f"overall {extra}", f"agent PA {extra}", "diag: name_match", "diag: process"]
    assert rows[0][2] == {"base": 0.1, "mas": 0.1} and rows[3][2] == {"base": 0.0, "mas": 0.0}
    assert rows[2][2] == {"base": 0.05, "mas": 0.1} and rows[4][2] == {"base": 0.2, "mas": 0.4}
    assert rows[5][2] == {"base": 0.2, "mas": 0.4} and rows[6][2] == {"base": 0.1, "mas": 0.2}


def test_render_report_diagnostics_table():
    md = render_report({"suite": "bfcl", "categories": {"base": 0.0}, "overall": 0.0, "n_tasks": 2,
                        "diagnostics": {"overall": {"call_rate": 0.5, "abstain_rate": 1.0},
                                        "base": {"call_rate": 0.5}}})
    tail = md.split("## Diagnostics (not official)", 1)[1]
    assert "| **overall** | 50.00% | 100.00% |" in tail and "| base | 50.00% |  |" in tail
    assert "Diagnostics" not in render_report({"categories": {}, "overall": 0.0})  # old summaries still render


def test_paper_table_section_tau_with_n_interval_version_and_efficiency():
    from toolace_mt.app.report import _paper_table_markdown, paper_table

    def summ(k_retail, turns):
        return {"suite": "tau", "source": "official", "task_set_version": "tau2-26.3-abc",
                "overall": (k_retail / 4 + 0.5) / 2, "categories": {"airline": 0.5, "retail": k_retail / 4},
                "intervals": {"airline": {"n": 2, "correct": 1}, "retail": {"n": 4, "correct": k_retail}},
                "efficiency": {"assistant_turns_per_task": turns, "n": 6, "ci95": [turns - 1, turns + 1]}}

    data = {"arms": ["mas", "toolace_mt"],
            "evaluation": {"tau_official": {"mas": summ(1, 15.4), "toolace_mt": summ(3, 13.7)}}}
    data["paper_table"] = paper_table(data)
    by = {r["metric"]: r for r in data["paper_table"]}
    assert list(by) == ["average", "airline", "retail", "efficiency (assistant turns / task)"]
    assert by["average"]["arms"]["toolace_mt"]["n"] == 6 and by["average"]["arms"]["toolace_mt"]["k"] == 4
    md = "\n".join(_paper_table_markdown(data, data["arms"]))
    assert "| tau_official (tau, official) | retail | tau2-26.3-abc | 25.0 [" in md and "(n=4) | 75.0 [" in md
    assert "| efficiency (assistant turns / task) | tau2-26.3-abc | 15.4 [14.4, 16.4] (n=6) | 13.7 [12.7, 14.7] (n=6) |" in md
