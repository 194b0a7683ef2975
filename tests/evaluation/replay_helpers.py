"""Helpers shared by the replay tests (test_eval_replay.py, test_eval_replay_steps.py)."""
from __future__ import annotations

import json

import yaml

from toolace_mt.evaluation.run import RESULTS


def write_recipe(tmp_path, name, body):
    """An evaluate recipe file (progress bars off) with `body`'s keys."""
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump({"task": "evaluate", "progress": False, **body}))
    return str(p)


def verdicts(run):
    """task id -> correct, from a finished evaluation run's per-task results."""
    return {r["task_id"]: r["correct"] for r in map(json.loads, (run / RESULTS).read_text().splitlines())}
