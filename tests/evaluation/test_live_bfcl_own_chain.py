"""A recorded live run (results/live_evaluation/runs/bfcl_own_chain: a hand-answered capable model through the
`openai` policy on recipes/evaluate/bfcl_own_chain_openai.yaml) replayed offline: the committed recipe's build
options must still build the task set the model played (same sha), and its trajectories must score as they did.
A change to the task builder's dependent turns or to the multi-turn checker shows here as a named difference."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from replay_helpers import verdicts, write_recipe

from toolace_mt.app.cli import main
from toolace_mt.evaluation.run import SUMMARY

ROOT = Path(__file__).resolve().parents[2]
REC = ROOT / "tests" / "data" / "live_evaluation" / "bfcl_own_chain"


def test_live_chain_run_replays_with_its_verdicts(tmp_path):
    live = yaml.safe_load((ROOT / "recipes" / "evaluate" / "bfcl_own_chain_openai.yaml").read_text())
    rec = write_recipe(tmp_path, "replay", {
        "suite": "bfcl", "source": "own", "tasks": str(tmp_path / "tasks"), "categories": live["categories"],
        "limit": live["limit"], "options": live["options"],
        "policy": {"kind": "replay", "path": str(REC / "trajectories.jsonl"), "format": "trajectories"}})
    run = tmp_path / "run"
    assert main(["evaluate", rec, "--out", str(run)]) == 0
    recorded = json.loads((REC / "summary.json").read_text())
    summary = json.loads((run / SUMMARY).read_text())
    assert summary["task_set_version"] == recorded["task_set_version"]  # the same tasks, word for word
    want = {r["task_id"]: r["correct"] for r in map(json.loads, (REC / "results.jsonl").read_text().splitlines())}
    assert verdicts(run) == want and 0 < sum(want.values()) < len(want)
    # every dependent turn the model acted on it served in two steps: a call, then (after its result) the
    # dependent call; the one it did not act on is the turn it questioned (own_base_3 turn 2: the same IBAN saved
    # under a second payee name, results/live_evaluation/README.md)
    tasks = {t["id"]: t for t in map(json.loads, (tmp_path / "tasks" / "tasks.jsonl").read_text().splitlines())}
    trajs = {t["task_id"]: t for t in map(json.loads, (REC / "trajectories.jsonl").read_text().splitlines())}
    dependent = [(tid, int(k)) for tid, t in tasks.items() if tid in trajs for k in t.get("gt_steps", {})]
    steps = {d: [s for s in trajs[d[0]]["turns"][d[1]] if s.get("tool_calls")] for d in dependent}
    assert len(dependent) >= 6 and [d for d in dependent if not steps[d]] == [("own_base_3", 2)]
    assert all(len(v) == 2 for d, v in steps.items() if v), steps
