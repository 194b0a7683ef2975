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
    assert verdicts(run) == want and sum(want.values()) >= 3
    # every dependent turn the model served in two steps: a call, then (after its result) the dependent call
    tasks = {t["id"]: t for t in map(json.loads, (tmp_path / "tasks" / "tasks.jsonl").read_text().splitlines())}
    lines = (REC / "trajectories.jsonl").read_text().splitlines()
    trajs = {t["task_id"]: t for t in map(json.loads, lines)}
    dependent = [(tid, int(k)) for tid, t in tasks.items() if tid in trajs for k in t.get("gt_steps", {})]
    steps = {d: [s for s in trajs[d[0]]["turns"][d[1]] if s.get("tool_calls")] for d in dependent}
    assert len(dependent) >= 6 and all(len(v) == 2 for v in steps.values()), steps
    # and the checker is not lenient about it: the same run without one dependent call fails that task
    tid, k = next(d for d in dependent if want[d[0]])
    cut = {**trajs[tid], "turns": list(trajs[tid]["turns"])}
    cut["turns"][k] = [trajs[tid]["turns"][k][0], trajs[tid]["turns"][k][-1]]  # first call, then the final text
    (tmp_path / "cut.jsonl").write_text("\n".join(json.dumps(cut if json.loads(x)["task_id"] == tid else json.loads(x))
                                                  for x in lines) + "\n")
    rec2 = write_recipe(tmp_path, "cut", {**yaml.safe_load(Path(rec).read_text()),
                                           "policy": {"kind": "replay", "path": str(tmp_path / "cut.jsonl"),
                                                      "format": "trajectories"}})
    assert main(["evaluate", rec2, "--out", str(tmp_path / "run_cut")]) == 0
    assert verdicts(tmp_path / "run_cut") == {**want, tid: False}
