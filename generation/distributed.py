"""`generate --executor ray`: every ``--shard i/N`` of a generate recipe as one Ray task, merged with
`merge_shards` into exactly the single-run dataset (see `toolace_mt.executor` for what Ray does and does not do
here). Each shard writes its own run directory under ``<out>/shards/``; finished shards are not resubmitted."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from toolace_mt.config import RecipeError, to_plain
from toolace_mt.executor import MAX_RETRIES, connect, default_shards, run_tasks, shard_resources
from toolace_mt.runs import atomic_write_json, prepare_run_dir, release_run_dir

from .run import merge_shards


def _generate_shard(cfg_plain: dict, shard_dir: str, shard: str, cwd: str, hook) -> dict:
    """One shard, on a Ray worker: the recipe's relative paths resolve against the driver's directory."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    from .config import parse_recipe
    from .run import run_generation

    cfg = parse_recipe(dict(cfg_plain))
    return run_generation(cfg, Path(shard_dir), shard=shard, hook=hook)


def shard_dirs(out: Path, n: int) -> list[Path]:
    return [out / "shards" / f"{i}-of-{n}" for i in range(n)]


def generate_on_ray(cfg, out: Path, shards: Optional[int] = None, address: Optional[str] = None,
                    restart: bool = False, hook=None, max_retries: int = MAX_RETRIES) -> dict[str, Any]:
    """Run a generate recipe as `shards` Ray tasks (``shard i/N`` each) and merge them into `out`.

    Shards whose ``summary.json`` exists are finished and not resubmitted; the others resume. `hook` is passed
    to each shard's run (tests use it to kill a worker mid-shard)."""
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
        release_run_dir(d)  # the shard's worker (another process) takes the lock while it writes
        if not (d / "summary.json").exists():
            todo.append((dict(plain, progress=False), str(d), f"{i}/{n}", os.getcwd(), hook))
    res = shard_resources(cfg.llm, cfg.engine)
    if todo:
        run_tasks(ray, _generate_shard, todo, res, desc=f"generate {cfg.name} on ray", max_retries=max_retries)
    summary = merge_shards(dirs, out)
    summary["executor"] = {"name": "ray", "shards": n, "resumed_finished": n - len(todo), "resources": res,
                           "address": address or "local"}
    atomic_write_json(out / "summary.json", summary)
    return summary
