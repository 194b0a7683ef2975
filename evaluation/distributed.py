"""`evaluate --executor ray`: contiguous chunks of the selected tasks as Ray tasks (each in its own directory
under ``<out>/shards/``, resuming its saved trajectories), then the joined trajectories scored in ``<out>`` by
the same `finalize` a one-process run uses (scores are computed from saved trajectories, sorted by task and
trial, so `results.jsonl` is the same)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional

from ..config import RecipeError, to_plain
from ..executor import MAX_RETRIES, cluster_gpus, connect, policy_resources, run_tasks
from ..runs import atomic_write_jsonl, prepare_run_dir
from .run import finalize, replay_policy_checked, select_tasks
from .suites import TRAJECTORIES, get_suite, load_trajectories


def _evaluate_chunk(cfg_plain: dict, chunk_dir: str, task_ids: list[str], cwd: str) -> int:
    """Play one chunk of tasks (all trials) into `chunk_dir`/trajectories.jsonl, resuming what is saved there."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    from ..runs import atomic_write_json
    from .config import parse_recipe

    cfg = parse_recipe({k: v for k, v in cfg_plain.items() if k != "task"})
    suite = get_suite(cfg.suite)
    want = set(task_ids)
    tasks = [t for t in select_tasks(suite.load_tasks(cfg), cfg) if t["id"] in want]
    out = Path(chunk_dir)
    done = {(t.get("task_id"), t.get("trial", 0)) for t in load_trajectories(out)}
    policy = None
    for trial in range(cfg.n_trials):
        pending = [t for t in tasks if (t["id"], trial) not in done]
        if pending:
            if policy is None:
                from .policies import make_policy

                policy = make_policy(cfg.policy)
            suite.run(policy, pending, cfg, out, trial=trial)
    atomic_write_json(out / "done.json", {"tasks": len(tasks), "trials": cfg.n_trials})
    return len(tasks)


def evaluate_on_ray(cfg, out: Path, shards: int = 2, address: Optional[str] = None, restart: bool = False,
                    max_retries: int = MAX_RETRIES) -> dict[str, Any]:
    """Split the selected tasks into `shards` contiguous chunks, play each as a Ray task (own directory under
    ``<out>/shards/``), then join the trajectories into ``<out>`` and score them exactly as a one-process run
    does (scores are computed from saved trajectories, sorted by task and trial)."""
    if shards < 1:
        raise RecipeError(f"--shards {shards}: need at least 1")
    ray = connect(address)
    out = Path(out).resolve()
    plain = {"task": "evaluate", **to_plain(cfg)}
    suite = get_suite(cfg.suite)
    tasks = select_tasks(suite.load_tasks(cfg), cfg)  # builds an own task set once, before the workers read it
    replay_policy_checked(cfg, tasks)  # a bad replay source is refused before the run directory exists
    prepare_run_dir(out, plain, restart=restart, ignore_keys=("progress",))
    ids = [t["id"] for t in tasks]
    size = max(1, -(-len(ids) // shards))
    chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
    dirs = [out / "shards" / f"{i}-of-{len(chunks)}" for i in range(len(chunks))]
    todo = [(dict(plain, progress=False), str(d), c, os.getcwd()) for d, c in zip(dirs, chunks)
            if not (d / "done.json").exists()]
    t0 = time.perf_counter()
    res = policy_resources(cfg.policy, cluster_gpus(ray))
    if todo:
        run_tasks(ray, _evaluate_chunk, todo, res, desc=f"evaluate {cfg.suite} on ray", max_retries=max_retries)
    trajs = [t for d in dirs for t in load_trajectories(d)]
    atomic_write_jsonl(out / TRAJECTORIES, trajs)
    return finalize(suite, cfg, tasks, out, extra={
        "run_seconds_this_session": round(time.perf_counter() - t0, 3), "n_run_this_session": sum(len(a[2]) for a in todo) * cfg.n_trials,
        "executor": {"name": "ray", "shards": len(chunks), "resumed_finished": len(chunks) - len(todo),
                     "resources": res, "address": address or "local"}})
