"""BFCL suite on OUR task sets (built from toolace_mt.envs): builder, oracle/null anchors, the transformers
policy end to end with a tiny random model."""
from __future__ import annotations

import json

import pytest

from toolace_mt.evaluation.bfcl import CATEGORIES, HELDOUT_USER_MESSAGE
from toolace_mt.evaluation.bfcl.build import build_task_set
from toolace_mt.evaluation.config import parse_recipe
from toolace_mt.evaluation.run import run_evaluation
from toolace_mt.runs import read_jsonl


@pytest.fixture(scope="module")
def own_set(tmp_path_factory):
    from toolace_mt.envs import all_envs

    out = tmp_path_factory.mktemp("own")
    doms = sorted(all_envs())
    man = build_task_set(out, per_category=4, seed=3, heldout_domains=doms[-1:])
    return out, man


def _cfg(path, kind, policy=None, **kw):
    return parse_recipe({"suite": "bfcl", "source": "own", "tasks": str(path), "policy": {"kind": kind, **(policy or {})},
                         "progress": False, **kw})


def test_builder_layout_and_manifest(own_set):
    out, man = own_set
    tasks = read_jsonl(out / "tasks.jsonl")
    assert man["n_tasks"] == len(tasks) and man["heldout_domains"]
    for c in ("base", "miss_param", "miss_func"):
        assert man["counts"][c] == 4
    for t in tasks:
        assert len(t["question"]) == len(t["ground_truth"]) and any(t["ground_truth"])
        assert t["heldout"] == bool(set(man["heldout_domains"]) & set(t["involved_classes"]))
        if t["category"] in ("miss_param", "miss_func"):
            assert [] in t["ground_truth"]
        if t["category"] == "miss_func":
            (k, names), = t["missed_function"].items()
            assert t["question"][int(k)] == [] and t["ground_truth"][int(k)]
            earlier = [s for turn in t["ground_truth"][:int(k)] for s in turn]
            assert not any(s.startswith(names[0] + "(") for s in earlier)
    if man["counts"].get("long_context", 0) == 0:
        assert any(s["category"] == "long_context" for s in man["skipped"])  # says why


def test_builder_is_deterministic(own_set, tmp_path):
    out, man = own_set
    again = build_task_set(tmp_path / "a", per_category=4, seed=3, heldout_domains=man["heldout_domains"])
    other = build_task_set(tmp_path / "b", per_category=4, seed=4)
    assert again["sha256"] == man["sha256"] and other["sha256"] != man["sha256"]


def test_oracle_100_null_0(own_set, tmp_path):
    out, man = own_set
    s = run_evaluation(_cfg(out, "oracle"), tmp_path / "o")
    cats = [c for c in CATEGORIES if man["counts"].get(c)]
    assert s["categories"] == {c: 1.0 for c in cats}, s["errors"]
    s = run_evaluation(_cfg(out, "null"), tmp_path / "n")
    assert s["categories"] == {c: 0.0 for c in cats}  # every own task has a turn that needs a call
    assert s["task_set_version"].startswith("own:own-bfcl-v1")


def test_own_miss_func_tools_hidden_until_their_turn(own_set):
    from toolace_mt.evaluation.bfcl.harness import play
    from toolace_mt.evaluation.policy import PolicyOutput

    out, _ = own_set
    task = next(t for t in read_jsonl(out / "tasks.jsonl") if t["category"] == "miss_func")
    (k, names), = task["missed_function"].items()
    seen = []

    class Rec:
        name = "rec"

        def act(self, batch):
            seen.extend(batch)
            return [PolicyOutput(content="?") for _ in batch]

    play(Rec(), [task], progress=False)
    for t, inp in enumerate(seen):
        assert (names[0] in {x["function"]["name"] for x in inp.tools}) == (t >= int(k))
    assert seen[int(k)].messages[-1]["content"] == HELDOUT_USER_MESSAGE


def test_recipe_builds_on_first_use_via_cli(tmp_path, capsys):
    from toolace_mt.app.cli import main

    tasks = tmp_path / "ts"
    rc = main(["evaluate", "recipes/evaluate/bfcl_own_oracle.yaml", "--out", str(tmp_path / "run"),
               "--set", f"tasks={tasks}", "--set", "options.build={per_category: 2, seed: 1}", "--set", "progress=false"])
    assert rc == 0 and (tasks / "manifest.json").exists()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["overall"] == 1.0
    assert main(["rescore", str(tmp_path / "run")]) == 0


@pytest.mark.slow
def test_transformers_policy_end_to_end(own_set, tiny_model_dir, tmp_path):
    out, _ = own_set
    cfg = _cfg(out, "transformers", limit=1,
               policy={"model": str(tiny_model_dir), "max_new_tokens": 12, "batch_size": 4})
    s = run_evaluation(cfg, tmp_path / "t")
    assert s["n_scored"] == s["n_expected"] > 0
    assert all(0.0 <= v <= 1.0 for v in s["categories"].values())
    trajs = read_jsonl(tmp_path / "t" / "trajectories.jsonl")
    steps = [st for tr in trajs for turn in tr["turns"] for st in turn]
    assert steps and all(isinstance(st["raw"], str) for st in steps)
    assert sum(tr["completion_tokens"] for tr in trajs) > 0


def test_strict_flag_requires_abstention_on_clarification_turns(own_set):
    from toolace_mt.evaluation.bfcl.checker import check_entry, decode_turns
    from toolace_mt.evaluation.bfcl.harness import play
    from toolace_mt.evaluation.policies import make_policy

    out, _ = own_set
    task = next(t for t in read_jsonl(out / "tasks.jsonl") if t["category"] == "miss_param")
    (tr,) = play(make_policy({"kind": "oracle"}), [task], progress=False)
    k = task["ground_truth"].index([])
    tr["turns"][k].insert(0, {"content": None, "tool_calls": [{"name": "no_such_tool", "arguments": {}}]})
    assert check_entry(task, decode_turns(tr["turns"]))["valid"]  # official: [] turns are not checked
    v = check_entry(task, decode_turns(tr["turns"]), strict=True)
    assert not v["valid"] and v["error_type"] == "irrelevance"


def test_malformed_policy_calls_are_recorded_not_crashes(own_set):
    from toolace_mt.evaluation.bfcl.harness import play
    from toolace_mt.evaluation.bfcl.suite import BFCLSuite
    from toolace_mt.evaluation.policy import PolicyOutput

    out, _ = own_set
    task = read_jsonl(out / "tasks.jsonl")[0]
    bad = [{"name": None, "arguments": {}}, {"name": "x", "arguments": [1]}, {"name": "__import__", "arguments": {}}]

    class Bad:
        name = "bad"
        n = 0

        def act(self, batch):
            self.n += 1
            return [PolicyOutput(tool_calls=bad if self.n == 1 else []) for _ in batch]

    (tr,) = play(Bad(), [task], progress=False)
    results = tr["turns"][0][0]["results"]
    assert len(results) == 3 and all("Error" in r or "error" in r for r in results)
    assert not BFCLSuite().score(task, tr)["correct"]
