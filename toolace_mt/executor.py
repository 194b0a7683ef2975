"""Executors: where the shards of a run execute. ``local`` (default) runs in this process; ``ray`` runs each
``--shard i/N`` of a run as one Ray task and joins them with the existing shard merge.

Nothing here schedules: Ray places the tasks on nodes with the resources each asks for (``num_gpus`` for an
in-process model, CPU only for a model behind an HTTP endpoint), re-runs a task whose worker died
(``max_retries``), and we only wait on the futures. A retried shard resumes from its last finished
(chunk, stage) file, so a kill changes nothing in the result. Each shard writes its own run directory under
``<out>/shards/``; on a cluster ``<out>`` must be on storage every node mounts at the same path (NFS, a
shared volume), since workers write there and the driver merges from there.

`evaluate` fans out the same way over contiguous chunks of the selected tasks; the joined trajectories are
scored in ``<out>`` exactly as a one-process run scores its own.

Ray is an optional extra (``pip install 'toolace-mt[ray]'``), imported only when this executor is used. This is
an app-level module (like reproduce): it drives generation and evaluation, nothing below imports it.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .config import RecipeError

MISSING_RAY = "the ray executor needs Ray, which is not installed: pip install 'toolace-mt[ray]'"
EXECUTORS = ("local", "ray")
MAX_RETRIES = 3  # chosen: a shard whose worker dies (OOM, preemption, node loss) is re-run up to 3 times


def import_ray():
    try:
        import ray
    except ImportError:
        raise RecipeError(MISSING_RAY) from None
    return ray


def connect(address: Optional[str] = None):
    """The Ray module, initialised: joins `address` (``auto``, ``ray://host:10001``, ``host:6379``) or the
    running session; with neither, Ray starts a local instance on this machine."""
    ray = import_ray()
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if address:
            kw["address"] = address
        ray.init(**kw)
    return ray


def shard_resources(llm: Any, engine: str) -> dict[str, float]:
    """Ray resources one shard asks for: the GPUs of one in-process model, else one CPU.

    vLLM: ``tensor_parallel_size`` x ``pipeline_parallel_size`` GPUs (one engine per shard); transformers:
    one GPU unless ``device: cpu``; HTTP backends (openai) and offline stand-ins: none. ``llm.extra.ray_num_gpus``
    overrides the figure (e.g. 0.5 to pack two small engines on one GPU)."""
    if engine != "llm" or llm is None:
        return {"num_cpus": 1, "num_gpus": 0}
    ex = llm.extra or {}
    if "ray_num_gpus" in ex:
        gpus = float(ex["ray_num_gpus"])
    elif llm.backend == "vllm":
        gpus = int(ex.get("tensor_parallel_size", 1)) * int(ex.get("pipeline_parallel_size", 1))
    elif llm.backend == "transformers":
        gpus = 0 if str(llm.device).startswith("cpu") else 1
    else:
        gpus = 0
    return {"num_cpus": 1, "num_gpus": gpus}


def default_shards(llm: Any, engine: str) -> int:
    """Shards when ``--shards`` is not given: vLLM's ``data_parallel_size`` (offline data parallelism in vLLM
    is one engine process per rank, which is what a shard is), else 1."""
    if engine == "llm" and llm is not None and llm.backend == "vllm":
        return max(1, int((llm.extra or {}).get("data_parallel_size", 1)))
    return 1


def run_tasks(ray, fn: Callable, args_list: list[tuple], resources: dict[str, float], desc: str,
              max_retries: int = MAX_RETRIES) -> list[Any]:
    """Submit ``fn(*args)`` for each args as a Ray task, wait with a progress bar, return results in order.
    A task that raised re-raises here (first error wins); a dead worker is Ray's to retry."""
    from tqdm import tqdm

    remote = ray.remote(max_retries=max_retries, **resources)(fn)
    refs = [remote.remote(*a) for a in args_list]
    pending = list(refs)
    with tqdm(total=len(refs), desc=desc, unit="shard") as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done)  # surface a failure as soon as it happens
            bar.update(len(done))
    return ray.get(refs)


def _generate_shard(cfg_plain: dict, shard_dir: str, shard: str, cwd: str, hook) -> dict:
    """One shard, on a Ray worker: the recipe's relative paths resolve against the driver's directory."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    from toolace_mt.generation.config import parse_recipe
    from toolace_mt.generation.run import run_generation

    cfg = parse_recipe(dict(cfg_plain))
    return run_generation(cfg, Path(shard_dir), shard=shard, hook=hook)


def shard_dirs(out: Path, n: int) -> list[Path]:
    return [out / "shards" / f"{i}-of-{n}" for i in range(n)]


def generate_on_ray(cfg, out: Path, shards: Optional[int] = None, address: Optional[str] = None,
                    restart: bool = False, hook=None, max_retries: int = MAX_RETRIES) -> dict[str, Any]:
    """Run a generate recipe as `shards` Ray tasks (``shard i/N`` each) and merge them into `out`.

    Shards whose ``summary.json`` exists are finished and not resubmitted; the others resume. `hook` is passed
    to each shard's run (tests use it to kill a worker mid-shard)."""
    from .config import to_plain
    from .generation.run import merge_shards
    from .runs import prepare_run_dir

    if cfg.shard:
        raise RecipeError("--executor ray runs every shard itself; drop the recipe's shard / --shard")
    n = shards if shards is not None else default_shards(cfg.llm, cfg.engine)
    if n < 1:
        raise RecipeError(f"--shards {n}: need at least 1")
    ray = connect(address)
    out = Path(out).resolve()
    if restart and out.exists():
        import shutil

        shutil.rmtree(out)
    plain = to_plain(cfg)
    dirs = shard_dirs(out, n)
    todo = []
    for i, d in enumerate(dirs):
        shard_plain = dict(plain, shard=f"{i}/{n}")
        prepare_run_dir(d, shard_plain, ignore_keys=("progress",))  # a changed recipe is refused here, up front
        if not (d / "summary.json").exists():
            todo.append((dict(plain, progress=False), str(d), f"{i}/{n}", os.getcwd(), hook))
    res = shard_resources(cfg.llm, cfg.engine)
    if todo:
        run_tasks(ray, _generate_shard, todo, res, desc=f"generate {cfg.name} on ray", max_retries=max_retries)
    summary = merge_shards(dirs, out)
    summary["executor"] = {"name": "ray", "shards": n, "resumed_finished": n - len(todo), "resources": res,
                           "address": address or "local"}
    from .runs import atomic_write_json

    atomic_write_json(out / "summary.json", summary)
    return summary


# ------------------------------------------------------------------------------------------------ evaluate
def policy_resources(policy: Any) -> dict[str, float]:
    """Ray resources of one evaluation chunk: the GPUs of an in-process policy model, else one CPU."""
    ex = policy.extra or {}
    if "ray_num_gpus" in ex:
        gpus = float(ex["ray_num_gpus"])
    elif policy.kind == "vllm":
        gpus = int(ex.get("tensor_parallel_size", 1)) * int(ex.get("pipeline_parallel_size", 1))
    elif policy.kind == "transformers":
        gpus = 0 if str(policy.device).startswith("cpu") else 1
    else:  # oracle, null, openai (an endpoint does the GPU work)
        gpus = 0
    return {"num_cpus": 1, "num_gpus": gpus}


def _evaluate_chunk(cfg_plain: dict, chunk_dir: str, task_ids: list[str], cwd: str) -> int:
    """Play one chunk of tasks (all trials) into `chunk_dir`/trajectories.jsonl, resuming what is saved there."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    from toolace_mt.evaluation.config import parse_recipe
    from toolace_mt.evaluation.run import select_tasks
    from toolace_mt.evaluation.suites import get_suite, load_trajectories
    from toolace_mt.runs import atomic_write_json

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
                from toolace_mt.evaluation.policies import make_policy

                policy = make_policy(cfg.policy)
            suite.run(policy, pending, cfg, out, trial=trial)
    atomic_write_json(out / "done.json", {"tasks": len(tasks), "trials": cfg.n_trials})
    return len(tasks)


def evaluate_on_ray(cfg, out: Path, shards: int = 2, address: Optional[str] = None, restart: bool = False,
                    max_retries: int = MAX_RETRIES) -> dict[str, Any]:
    """Split the selected tasks into `shards` contiguous chunks, play each as a Ray task (own directory under
    ``<out>/shards/``), then join the trajectories into ``<out>`` and score them exactly as a one-process run
    does (scores are computed from saved trajectories, sorted by task and trial)."""
    from .config import to_plain
    from .evaluation.run import finalize, select_tasks
    from .evaluation.suites import TRAJECTORIES, get_suite, load_trajectories
    from .runs import atomic_write_jsonl, prepare_run_dir

    if shards < 1:
        raise RecipeError(f"--shards {shards}: need at least 1")
    ray = connect(address)
    out = Path(out).resolve()
    plain = {"task": "evaluate", **to_plain(cfg)}
    prepare_run_dir(out, plain, restart=restart, ignore_keys=("progress",))
    suite = get_suite(cfg.suite)
    tasks = select_tasks(suite.load_tasks(cfg), cfg)  # builds an own task set once, before the workers read it
    ids = [t["id"] for t in tasks]
    size = max(1, -(-len(ids) // shards))
    chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
    dirs = [out / "shards" / f"{i}-of-{len(chunks)}" for i in range(len(chunks))]
    todo = [(dict(plain, progress=False), str(d), c, os.getcwd()) for d, c in zip(dirs, chunks)
            if not (d / "done.json").exists()]
    t0 = time.perf_counter()
    res = policy_resources(cfg.policy)
    if todo:
        run_tasks(ray, _evaluate_chunk, todo, res, desc=f"evaluate {cfg.suite} on ray", max_retries=max_retries)
    trajs = [t for d in dirs for t in load_trajectories(d)]
    atomic_write_jsonl(out / TRAJECTORIES, trajs)
    return finalize(suite, cfg, tasks, out, extra={
        "run_seconds_this_session": round(time.perf_counter() - t0, 3), "n_run_this_session": sum(len(a[2]) for a in todo) * cfg.n_trials,
        "executor": {"name": "ray", "shards": len(chunks), "resumed_finished": len(chunks) - len(todo),
                     "resources": res, "address": address or "local"}})
