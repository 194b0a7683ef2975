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
import sys
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
    if kind == "train" or "torch" in sys.modules:
        _use_assigned_cpus()
    from .reproduce import run_step

    return run_step(kind, StepRef(**ref_plain), Path(out), extra)


def _use_assigned_cpus() -> None:
    """Give torch exactly as many threads as CPUs Ray assigned this task. A driver started with OMP_NUM_THREADS=1
    (two processes on two cores each run 10x slower with two threads apiece) passes that to its workers, so a
    train step that has the machine to itself would still use one thread; and Ray reuses a worker process, so a
    step after one that had two CPUs must go back to one (measured: the two arm fine-tunes at 1.3 s a step
    instead of 0.9 when the base's worker kept its two threads)."""
    import ray

    import torch

    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))


def share_cpus(kinds: list[str], res: list[dict[str, float]], cluster_cpus: float) -> list[dict[str, float]]:
    """CPU-only train steps of one batch split the cluster's CPUs between them (at least one each). chosen: a
    batch with one such step (the base pretrain of a reproduce run) gets them all -- on 2 cores the tiny base
    trains at 0.75 s a step with 2 threads vs 1.18 s with 1 (measured 2026-12-07) --, two arm fine-tunes get one
    each, as before. Other steps keep one CPU: evaluation batches have more steps than CPUs."""
    cpu_train = [k for k, (kind, r) in enumerate(zip(kinds, res)) if kind == "train" and not r.get("num_gpus")]
    if not cpu_train:
        return res
    share = max(1, int(cluster_cpus // len(cpu_train)))
    return [{**r, "num_cpus": share} if k in cpu_train else r for k, r in enumerate(res)]


class RaySteps:
    """A step runner for `run_reproduce` (``run_steps=RaySteps(address)``) that fans each batch out on Ray."""

    def __init__(self, address: Optional[str] = None, max_retries: int = MAX_RETRIES):
        self.ray = connect(address)
        self.address = address
        self.max_retries = max_retries
        self.gpus = cluster_gpus(self.ray)
        self.cpus = float(self.ray.cluster_resources().get("CPU", 1))
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
            res = share_cpus([jobs[i][0] for i in todo], res, self.cpus)
            kinds = sorted({jobs[i][0] for i in todo})
            _log(f"ray     {len(todo)} {'/'.join(kinds)} step(s): "
                 + ", ".join(f"{jobs[i][2]} {r}" for i, r in zip(todo, res)))
            outs = run_batch(self.ray, _run_step_task, args, res, desc=f"reproduce {'/'.join(kinds)} on ray",
                             max_retries=self.max_retries, unit="step")
            for i, s in zip(todo, outs):
                results[i] = s
            self.submitted += len(todo)
        return results  # type: ignore[return-value]
