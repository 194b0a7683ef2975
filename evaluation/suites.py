"""Suite registry (lm-eval-harness style) and the contract every suite implements.

A suite is a class registered under a name::

    @register_suite("bfcl")
    class BFCLSuite(Suite): ...

and implements four steps, so that running and scoring are separate and saved trajectories can be
re-scored offline (`toolace-mt rescore RUN_DIR`):

* ``load_tasks(cfg) -> list[dict]``: every task is a JSON-able dict with at least ``id`` and ``category``;
* ``run(policy, tasks, cfg, out_dir, trial=0) -> list[dict]``: plays the tasks with the policy (batched across
  tasks), returns one trajectory dict per task (``task_id``, ``category``, ``trial`` + suite-specific fields)
  and appends each finished one to ``out_dir/trajectories.jsonl`` with `save_trajectory` (so a killed run
  resumes from the finished ones);
* ``score(task, trajectory) -> dict``: PURE (no policy, no global state): ``task_id``, ``category``, ``trial``,
  ``correct`` (bool), ``score`` (float in [0, 1]) and ``reasons`` (list of str, empty when correct);
* ``summarize(scores) -> dict``: ``categories`` {name: metric in [0, 1]}, ``overall`` (float) and anything
  else the suite reports (counts, pass^k, ...). The default is per-category mean of ``score`` and the
  unweighted mean of the categories as ``overall``.

``version(cfg)`` names the task set (file hash / package version) for the summary.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ..config import RecipeError
from ..registry import Registry, RegistryError

TRAJECTORIES = "trajectories.jsonl"
_lock = threading.Lock()


def _discover() -> None:
    """A suite is a subpackage of `evaluation` with a ``suite`` module that registers itself: adding a suite is
    adding that folder (its package name also goes into pyproject's package list; a test checks it)."""
    import importlib
    import importlib.util
    import pkgutil

    from . import __path__ as pkg_path

    for m in pkgutil.iter_modules(pkg_path):
        if m.ispkg and importlib.util.find_spec(f"{__package__}.{m.name}.suite") is not None:
            importlib.import_module(f"{__package__}.{m.name}.suite")


SUITES: Registry = Registry("suite", discover=_discover)


def register_suite(name: str):
    def deco(cls):
        cls.name = name
        SUITES.register(name, cls)
        return cls

    return deco


def get_suite(name: str) -> "Suite":
    """An instance of the suite registered as `name` (RecipeError if unknown)."""
    try:
        return SUITES.get(name)()
    except RegistryError as e:
        raise RecipeError(str(e)) from None


def save_trajectory(out_dir: str | Path | None, traj: dict[str, Any]) -> None:
    """Append one finished trajectory to ``out_dir/trajectories.jsonl`` (flushed at once; thread-safe)."""
    if out_dir is None:
        return
    p = Path(out_dir) / TRAJECTORIES
    from toolace_mt.runs import dumps_strict  # no NaN (not JSON); a lone surrogate is escaped, not a crash

    line = dumps_strict(traj) + "\n"
    with _lock:
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "a+b") as f:
            f.seek(0, 2)
            if f.tell() > 0:  # a killed run may have left a torn last line: start on a fresh one
                f.seek(-1, 2)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()


def load_trajectories(out_dir: str | Path) -> list[dict[str, Any]]:
    """Saved trajectories, last one wins per (task_id, trial); a torn last line (killed run) is skipped."""
    p = Path(out_dir) / TRAJECTORIES
    if not p.exists():
        return []
    by_key: dict[tuple, dict] = {}
    with open(p, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                t = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(t, dict):
                by_key[(t.get("task_id"), t.get("trial", 0))] = t
    return list(by_key.values())


def unreadable_trajectory_lines(out_dir: str | Path) -> list[int]:
    """Line numbers of saved trajectories that `load_trajectories` skips (not a JSON object)."""
    p = Path(out_dir) / TRAJECTORIES
    bad = []
    if p.exists():
        with open(p, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        ok = isinstance(json.loads(line), dict)
                    except json.JSONDecodeError:
                        ok = False
                    if not ok:
                        bad.append(n)
    return bad


def mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else 0.0


class Suite:
    name: str = ""
    # where the suite's rows go in a comparison table (the paper's order: BFCL, ACEBench, tau-bench)
    table_rank: int = 9

    def report_rows(self, by_arm: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """(metric, {arm: value}) rows a comparison report shows for this suite, after its overall: by default
        one per category. A suite with its own headline metrics overrides this (the report knows no suite)."""
        any_s = next(iter(by_arm.values()))
        return [(cat, {a: (s.get("categories") or {}).get(cat) for a, s in by_arm.items()})
                for cat in any_s.get("categories", {})]

    def overall_row(self, by_arm: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        """(label, {arm: value}) of the suite's headline row in a comparison report: by default ``overall``."""
        return "overall", {a: s.get("overall") for a, s in by_arm.items()}

    def paper_rows(self, summary: dict[str, Any]) -> list[dict[str, Any]]:
        """The cells of the paper's table this suite fills, from one summary: ``{"metric", "value", "n",
        "ci95", "interval"}`` each (`interval` names how ``ci95`` was computed). None by default."""
        return []

    def load_tasks(self, cfg) -> list[dict[str, Any]]:
        raise NotImplementedError

    def version(self, cfg) -> str:
        return "unknown"

    def run(self, policy, tasks: list[dict[str, Any]], cfg, out_dir: Path | None, trial: int = 0) -> list[dict[str, Any]]:
        raise NotImplementedError

    def score(self, task: dict[str, Any], trajectory: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def summarize(self, scores: list[dict[str, Any]]) -> dict[str, Any]:
        cats: dict[str, list[float]] = {}
        for s in scores:
            cats.setdefault(s["category"], []).append(float(s["score"]))
        categories = {c: mean(v) for c, v in sorted(cats.items())}
        return {"categories": categories, "counts": {c: len(v) for c, v in sorted(cats.items())},
                "overall": mean(categories.values()), "n_tasks": len(scores)}


def summarize_diagnostics(scores: list[dict[str, Any]], order: list[str] | None = None) -> dict[str, Any]:
    """Means of the per-task ``score["diagnostics"]`` values (graded, NOT official): per category, and
    ``overall`` = unweighted mean of the category means (as the official overalls are). A value of ``None``
    (metric undefined for that task, e.g. no clarification turn) is left out of its mean; a metric no task of a
    category defines is absent from that category."""
    cats: dict[str, dict[str, list[float]]] = {}
    for s in scores:
        for k, v in (s.get("diagnostics") or {}).items():
            if v is not None:
                cats.setdefault(s["category"], {}).setdefault(k, []).append(float(v))
    names = [c for c in (order or []) if c in cats] + sorted(c for c in cats if c not in (order or []))
    out: dict[str, Any] = {c: {k: mean(v) for k, v in cats[c].items()} for c in names}
    keys = list(dict.fromkeys(k for c in names for k in out[c]))
    out = {"overall": {k: mean(out[c][k] for c in names if k in out[c]) for k in keys}, **out}
    return out
