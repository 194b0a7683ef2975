"""Replay decodes every recorded BFCL step on its own, as BFCL's evaluation does (issue 22, item 4): a step
that does not decode -- an FC call named ``ls<|channel|>commentary``, an argument key ``""``, a text step in the
middle of a turn -- is a failed step, and the recorded steps after it still run. Per-entry verdicts equal
bfcl-eval's own decoders + checker on the raw result files, and `crosscheck --run` compares against those raw
files. Bad result files are refused before a run directory exists (issue 24, item 1)."""
from __future__ import annotations

import importlib.util
import json
import random

import pytest
from replay_helpers import verdicts, write_recipe

from toolace_mt.app.cli import main

needs_bfcl = pytest.mark.skipif(importlib.util.find_spec("bfcl_eval") is None,
                                reason="bfcl-eval not installed (pip install --no-deps bfcl-eval==2026.3.23)")
PER_CAT = 5  # chosen: 20 entries x 2 styles keep the test in seconds




BROKEN_FC = [[{"ls<|channel|>commentary": "{}"}], [{"cd": json.dumps({"": "x"})}], [{"cd": "{not json"}],
             "Let me check that first."]
BROKEN_TEXT = ["Let me check that first.", "[ls<|channel|>commentary()]", "```python\n[cd(folder='x')]\n```"]


def _write_results(root, tasks, trajs, fc: bool, seed: int):
    """Result files as a model's BFCL run leaves them, with undecodable steps inserted BEFORE the turn's calls
    (a truncating replay then loses the calls and fails the entry; BFCL's evaluation does not)."""
    from toolace_mt.evaluation.bfcl import official_category
    from toolace_mt.pycalls import format_python_calls

    rng = random.Random(seed)
    broken_before_calls = set()
    for t, tr in zip(tasks, trajs):
        result = []
        for turn in tr["turns"]:
            steps = []
            for st in turn:
                if st["tool_calls"]:
                    if rng.random() < 0.5:
                        steps.append(rng.choice(BROKEN_FC if fc else BROKEN_TEXT))
                        broken_before_calls.add(t["id"])
                    steps.append([{c["name"]: json.dumps(c["arguments"])} for c in st["tool_calls"]] if fc
                                 else format_python_calls(st["tool_calls"]))
                else:
                    steps.append(st["content"] or "Done.")
            result.append(steps)
        f = root / ("fc-model" if fc else "prompt-model") / f"BFCL_v3_{official_category(t['category'])}_result.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        with open(f, "a") as fh:
            fh.write(json.dumps({"id": t["id"], "result": result}) + "\n")
    return root / ("fc-model" if fc else "prompt-model"), broken_before_calls


@needs_bfcl
@pytest.mark.parametrize("fc", [True, False], ids=["function-calling", "prompting"])
def test_every_recorded_step_is_decoded_on_its_own(tmp_path, fc):
    from toolace_mt.evaluation.bfcl import CATEGORIES
    from toolace_mt.evaluation.bfcl.crosscheck import crosscheck
    from toolace_mt.evaluation.bfcl.export import official_rescore
    from toolace_mt.evaluation.bfcl.harness import play
    from toolace_mt.evaluation.bfcl.official import load_tasks
    from toolace_mt.evaluation.policies import make_policy

    tasks = [t for c in CATEGORIES for t in load_tasks([c])[:PER_CAT]]
    trajs = play(make_policy({"kind": "oracle"}), tasks, progress=False)
    src, broken = _write_results(tmp_path / "result", tasks, trajs, fc, seed=7)
    rec = write_recipe(tmp_path, "rep", {"suite": "bfcl", "source": "official", "limit": PER_CAT,
                                     "policy": {"kind": "replay", "path": str(src), "format": "bfcl_result"}})
    run = tmp_path / "run"
    assert main(["evaluate", rec, "--out", str(run)]) == 0
    ours = verdicts(run)
    theirs = official_rescore(sorted(src.glob("*.json")), {t["id"]: t for t in tasks})
    assert len(ours) == len(tasks) and ours == theirs  # per entry, bfcl-eval's own decoder + checker
    # the steps after an undecodable one ran: entries with a broken step before their calls still pass
    assert broken and sum(ours[i] for i in broken) >= len(broken) // 2
    # crosscheck on the replay run compares against the raw files, not our played trajectories
    rep = crosscheck(run_dir=str(run), progress=False)
    assert rep["n"] == len(tasks) and rep["disagreements"] == 0 and set(rep["by_variant"]) == {"result_file"}


@needs_bfcl
def test_crosscheck_sees_what_a_truncating_replay_would_drop(tmp_path):
    """The raw-file comparison is what catches truncation: a played trajectory cut at the broken step is
    scored wrong by us, right by BFCL on the raw file -> a disagreement (before, both sides saw the cut)."""
    from toolace_mt.evaluation.bfcl.crosscheck import official_result_verdict
    from toolace_mt.evaluation.bfcl.official import load_tasks

    from toolace_mt.evaluation.bfcl.backends import make_world, parse_gt_call
    from toolace_mt.evaluation.bfcl.harness import keyword_call

    task = load_tasks(["base"])[0]
    world = make_world(task)
    result = []
    for gt in task["ground_truth"]:
        calls = [keyword_call(world, parse_gt_call(s)) for s in gt]
        result.append([[{"ls<|channel|>commentary": "{}"}], [{c["name"]: json.dumps(c["arguments"])} for c in calls],
                       "Done."])
    assert official_result_verdict(task, result, fc=True)["valid"] is True
    cut = [turn[:1] for turn in result]  # what the old replay played: the turn ended at the broken step
    assert official_result_verdict(task, cut, fc=True)["valid"] is False


# ---- issue 24, item 1: bad result files -> one `error:` line, exit 2, no run directory ----------------------
BAD = {
    "line without id": '{"result": [["[cd(folder=\\"x\\")]"]]}\n',
    "non-object line": '[1, 2]\n',
    "not json": '{"id": \n',
    "turns not a list": '{"id": "multi_turn_base_0", "result": [5]}\n',
    "result an object": '{"id": "multi_turn_base_0", "result": {"a": 1}}\n',
    "step a number": '{"id": "multi_turn_base_0", "result": [[5]]}\n',
    "empty file": '',
    "blank lines only": '\n\n',
    "ids match no task": '{"id": "nope_1", "result": [["x"]]}\n',
    "duplicate id": '{"id": "multi_turn_base_0", "result": [["x"]]}\n{"id": "multi_turn_base_0", "result": [["x"]]}\n',
    "single-turn shape in a multi-turn file": '{"id": "multi_turn_base_0", "result": [{"cd": "{}"}]}\n',
}
BAD_TRAJ = {
    "turns: 5": '{"task_id": "multi_turn_base_0", "turns": 5}\n',
    "tool_calls: abc": '{"task_id": "multi_turn_base_0", "turns": [[{"content": "", "tool_calls": "abc"}]]}\n',
    "answer tool_calls: abc": '{"task_id": "multi_turn_base_0", "tool_calls": "abc"}\n',
    "no task_id": '{"turns": []}\n',
    "non-object line": '"text"\n',
    "step not an object": '{"task_id": "multi_turn_base_0", "turns": [["x"]]}\n',
}


@needs_bfcl
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_bfcl_result_file_refused_before_a_run_directory(tmp_path, capsys, case):
    src = tmp_path / "rp"
    src.mkdir()
    (src / "BFCL_v3_multi_turn_base_result.json").write_text(BAD[case])
    rec = write_recipe(tmp_path, "r", {"suite": "bfcl", "source": "official", "categories": ["base"], "limit": 1,
                                  "policy": {"kind": "replay", "path": str(src), "format": "bfcl_result"}})
    out = tmp_path / "o1"
    assert main(["evaluate", rec, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and not out.exists(), err
    if case == "ids match no task":
        assert "expected ids like multi_turn_base_0" in err[0]


@needs_bfcl
@pytest.mark.parametrize("case", sorted(BAD_TRAJ))
def test_bad_trajectories_refused_before_a_run_directory(tmp_path, capsys, case):
    src = tmp_path / "t.jsonl"
    src.write_text(BAD_TRAJ[case])
    rec = write_recipe(tmp_path, "r", {"suite": "bfcl", "source": "official", "categories": ["base"], "limit": 1,
                                  "policy": {"kind": "replay", "path": str(src), "format": "trajectories"}})
    out = tmp_path / "o1"
    assert main(["evaluate", rec, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and not out.exists(), err


@needs_bfcl
def test_result_files_of_categories_not_scored_here_are_not_read(tmp_path, capsys):
    src = tmp_path / "rp"
    (src / "agentic").mkdir(parents=True)
    (src / "agentic" / "BFCL_v4_memory_kv_result.json").write_text('{"id": "memory_kv_0", "result": [[[1]]]}\n')
    (src / "BFCL_v4_multi_turn_base_result.json").write_text('{"id": "multi_turn_base_0", "result": [["Done."]]}\n')
    rec = write_recipe(tmp_path, "r", {"suite": "bfcl", "source": "official", "categories": ["base"], "limit": 1,
                                  "policy": {"kind": "replay", "path": str(src), "format": "bfcl_result"}})
    assert main(["evaluate", rec, "--out", str(tmp_path / "o")]) == 0
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["n_tasks"] == 1
