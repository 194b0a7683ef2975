"""`reproduce --executor ray`: every phase of `run_reproduce` as one batch of Ray tasks, one task per step.

A step is the same `run_step` the local runner calls, executed on a Ray worker that asks for the resources of
its own sub-recipe: a generate step those of its model (`shard_resources`), a train step its recipe's
`num_devices` GPUs on one node (none on a cluster without GPUs), an evaluate step those of its policy (`policy_resources`). Ray places the tasks and
re-runs a task whose worker died (each step resumes its own run directory); we only wait on the futures.

Steps whose ``summary.json`` exists are reused by the driver, exactly as the local runner reuses them, and are
never submitted. What several steps of a batch share is made by the driver before the batch is submitted, so
tasks never race on it: the task set of an own (generated) benchmark, which every arm's evaluation reads.

Run directories live under the reproduce ``--out``; on a cluster it must be on storage every node mounts at
the same path, and the recipes' relative paths resolve against the driver's working directory.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from ..config import load_recipe, to_plain
from ..executor import (MAX_RETRIES, cluster_gpus, connect, policy_resources, run_batch, shard_resources,
                        train_resources)
from .reproduce import Job, StepRef, _log, _summary


def _run_step_task(kind: str, ref_plain: dict, out: str, extra: Optional[dict], cwd: str) -> dict[str, Any]:
    """One step on a Ray worker: the recipes' relative paths resolve against the driver's directory."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    from .reproduce import run_step

    return run_step(kind, StepRef(**ref_plain), Path(out), extra)


class RaySteps:
    """A step runner for `run_reproduce` (``run_steps=RaySteps(address)``) that fans each batch out on Ray."""

    def __init__(self, address: Optional[str] = None, max_retries: int = MAX_RETRIES):
        self.ray = connect(address)
        self.address = address
        self.max_retries = max_retries
        self.gpus = cluster_gpus(self.ray)
        self.submitted = 0
        self.reused = 0

    def describe(self) -> dict[str, Any]:
        return {"name": "ray", "address": self.address or "local", "cluster_gpus": self.gpus,
                "steps_submitted": self.submitted, "steps_reused": self.reused}

    def resources(self, kind: str, cfg: Any) -> dict[str, float]:
        if kind == "generate":
            return shard_resources(cfg.llm, cfg.engine)
        if kind == "train":
            return train_resources(self.gpus, cfg.launch.num_devices)
        return policy_resources(cfg.policy, self.gpus)

    def _prepare_shared(self, kind: str, cfg: Any, built: set) -> None:
        """Build what every arm's step reads before the tasks start: an own benchmark's task set (built on first
        load, written to the recipe's ``tasks`` path, the same for every arm)."""
        if kind != "evaluate":
            return
        key = (cfg.suite, cfg.source, str(getattr(cfg, "tasks", None)))
        if key in built:
            return
        from ..evaluation.suites import get_suite

        get_suite(cfg.suite).load_tasks(cfg)
        built.add(key)

    def __call__(self, jobs: list[Job]) -> list[dict[str, Any]]:
        results: list[Optional[dict[str, Any]]] = [None] * len(jobs)
        todo, args, res = [], [], []
        built: set = set()
        cwd = os.getcwd()
        for i, (kind, ref, out, extra) in enumerate(jobs):
            done = _summary(out)
            if done is not None:
                _log(f"reuse   {kind:8s} {out}")
                results[i] = done
                self.reused += 1
                continue
            _, cfg, _ = load_recipe(ref.recipe, ref.overrides(extra), expect=kind)  # a bad recipe fails here
            self._prepare_shared(kind, cfg, built)
            todo.append(i)
            args.append((kind, to_plain(ref), str(Path(out).resolve()), extra, cwd))
            res.append(self.resources(kind, cfg))
        if todo:
            kinds = sorted({jobs[i][0] for i in todo})
            _log(f"ray     {len(todo)} {'/'.join(kinds)} step(s): "
                 + ", ".join(f"{jobs[i][2]} {r}" for i, r in zip(todo, res)))
            outs = run_batch(self.ray, _run_step_task, args, res, desc=f"reproduce {'/'.join(kinds)} on ray",
                             max_retries=self.max_retries, unit="step")
            for i, s in zip(todo, outs):
                results[i] = s
            self.submitted += len(todo)
        return results  # type: ignore[return-value]
