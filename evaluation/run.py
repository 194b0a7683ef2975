"""`run_evaluation(cfg, out_dir, restart=False) -> summary`: play, save, score, summarize, report.

Run directory layout::

    recipe.yaml          the resolved recipe (a changed recipe is refused; see toolace_mt.runs)
    trajectories.jsonl   one line per finished (task, trial), appended as they finish -> resume
    results.jsonl        one score dict per (task, trial): correct, score, reasons
    summary.json         category metrics in [0, 1], overall, task-set version, policy, machine, timings
    report.md            the same as a Markdown table in percentages

Scoring reads only tasks and saved trajectories, so `rescore(run_dir)` re-scores a finished run offline
(after a checker fix) without touching the model.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..config import RecipeError, to_plain
from ..runs import atomic_write_json, atomic_write_jsonl, atomic_write_text, machine_info, prepare_run_dir
from .config import EvaluateConfig
from .stats import category_intervals
from .suites import TRAJECTORIES, Suite, get_suite, load_trajectories, unreadable_trajectory_lines

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
REPORT = "report.md"


def select_tasks(tasks: list[dict[str, Any]], cfg: EvaluateConfig) -> list[dict[str, Any]]:
    """Keep the configured categories (all when empty) and at most ``limit`` tasks per category, in order."""
    out, seen = [], {}
    for t in tasks:
        c = t.get("category", "")
        if cfg.categories and c not in cfg.categories:
            continue
        if cfg.limit is not None and seen.get(c, 0) >= cfg.limit:
            continue
        seen[c] = seen.get(c, 0) + 1
        out.append(t)
    return out


def score_all(suite: Suite, tasks: list[dict[str, Any]], trajs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Score every saved trajectory of a known task; a checker exception becomes a recorded wrong verdict."""
    by_id = {t["id"]: t for t in tasks}
    scores = []
    for tr in sorted(trajs, key=lambda t: (str(t.get("task_id")), t.get("trial", 0))):
        task = by_id.get(tr.get("task_id"))
        if task is None:
            continue
        try:
            s = suite.score(task, tr)
        except Exception as e:  # a checker bug must not lose the run: record it on the task
            s = {"task_id": task["id"], "category": task.get("category", ""), "trial": tr.get("trial", 0),
                 "correct": False, "score": 0.0, "reasons": [f"scoring_error: {type(e).__name__}: {e}"]}
        scores.append(s)
    return scores


def render_report(summary: dict[str, Any]) -> str:
    lines = [f"# Evaluation: {summary.get('suite')} ({summary.get('source')})", "",
             f"- policy: `{summary.get('policy')}`", f"- task set: `{summary.get('task_set_version')}`",
             f"- tasks: {summary.get('n_tasks')} (trials: {summary.get('n_trials', 1)})"]
    for key in ("decoding", "decoder", "scoring"):
        if summary.get(key):
            lines.append(f"- {key}: {summary[key]}")
    lines += ["", "| category | n | score | 95% CI (Wilson) |", "|---|---:|---:|---:|"]
    counts = summary.get("counts", {})
    ivs = summary.get("intervals") or {}
    for c, v in summary.get("categories", {}).items():
        iv = (ivs.get(c) or {}).get("wilson95")
        ci = f"{100 * iv[0]:.1f}–{100 * iv[1]:.1f}%" if iv else ""
        lines.append(f"| {c} | {(ivs.get(c) or {}).get('n', counts.get(c, ''))} | {100 * v:.2f}% | {ci} |")
    lines.append(f"| **overall** | {summary.get('n_tasks')} | **{100 * summary.get('overall', 0.0):.2f}%** | |")
    extra = {k: v for k, v in summary.items() if k.startswith("pass^")}
    for k, v in extra.items():
        lines.append(f"| {k} | | {100 * v:.2f}% | |")
    lines.extend(summary.get("report_lines") or [])  # suite-specific Markdown (e.g. ACE's compat table)
    lines.extend(diagnostics_lines(summary.get("diagnostics") or {}))
    return "\n".join(lines) + "\n"


def software_versions() -> dict[str, str]:
    """Versions of the libraries a number depends on, and the project's git commit ("+dirty" with local edits)."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("transformers", "trl", "peft", "vllm", "bfcl-eval", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        out["git_commit"] = (head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")) \
            if head.returncode == 0 else "unknown (not a git checkout)"
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = "unknown (git not available)"
    return out


def diagnostics_lines(diag: dict[str, Any]) -> list[str]:
    """Markdown table of the suite's graded diagnostics (rows: overall then categories; columns: metrics;
    a metric a category does not define is left blank). Clearly apart from the official table above."""
    if not diag:
        return []
    rows = ["overall"] + [c for c in diag if c != "overall"]
    keys = list(dict.fromkeys(k for r in rows for k in diag.get(r, {})))
    lines = ["", "## Diagnostics (not official)", "",
             "Graded per-task metrics from the same trajectories, to tell weak models apart; they are not part "
             "of any official score above.", "",
             "| category | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for r in rows:
        vals = diag.get(r, {})
        cells = [f"{100 * vals[k]:.2f}%" if vals.get(k) is not None else "" for k in keys]
        name = f"**{r}**" if r == "overall" else r
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def finalize(suite: Suite, cfg: EvaluateConfig, tasks: list[dict[str, Any]], out: Path,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    trajs = load_trajectories(out)
    scores = score_all(suite, tasks, trajs)
    atomic_write_jsonl(out / RESULTS, scores)
    summary = suite.summarize(scores)
    summary.update({"suite": cfg.suite, "source": cfg.source, "task_set_version": suite.version(cfg),
                    "policy": cfg.policy.label, "n_trials": cfg.n_trials, "n_expected": len(tasks) * cfg.n_trials,
                    "n_scored": len(scores), "machine": machine_info(),
                    # n and a Wilson 95% interval per category, on the units the category score counts
                    "intervals": category_intervals(scores), "versions": software_versions()})
    info = getattr(suite, "scoring_info", None)
    if callable(info):  # decoder and scoring mode, recorded with every number
        summary.update(info(cfg))
    export = getattr(suite, "export_results", None)
    if callable(export):  # the benchmark's own result layout, for an independent official re-score
        summary.update(export(cfg, out))
    summary.update(extra or {})
    atomic_write_json(out / SUMMARY, summary)
    atomic_write_text(out / REPORT, render_report(summary))
    return summary


def replay_policy_checked(cfg: EvaluateConfig, tasks: list[dict[str, Any]]):
    """A replay policy, built and checked against the selected tasks BEFORE a run directory exists: a bad,
    empty or non-matching result file is one `error:` line (exit 2), never a run that scores 0.0. None for
    other policy kinds (they are built when needed)."""
    if cfg.policy.kind != "replay":
        return None
    from .policies import make_policy

    policy = make_policy(cfg.policy)
    policy.check_tasks(tasks)
    return policy


def run_evaluation(cfg: EvaluateConfig, out_dir: Path, restart: bool = False) -> dict[str, Any]:
    suite = get_suite(cfg.suite)
    tasks = select_tasks(suite.load_tasks(cfg), cfg)
    if not tasks:  # checked before the run directory exists: an empty task set must not score 0.0 and exit 0
        raise RecipeError(f"no tasks selected (suite {cfg.suite}, source {cfg.source}, categories "
                          f"{cfg.categories or 'all'}, limit {cfg.limit})")
    policy = replay_policy_checked(cfg, tasks)
    out = prepare_run_dir(out_dir, {"task": "evaluate", **to_plain(cfg)}, restart=restart, ignore_keys=("progress",))
    t0 = time.perf_counter()
    done = {(t.get("task_id"), t.get("trial", 0)) for t in load_trajectories(out)}
    n_new = 0
    for trial in range(cfg.n_trials):
        pending = [t for t in tasks if (t["id"], trial) not in done]
        if not pending:
            continue
        if policy is None:
            from .policies import make_policy

            policy = make_policy(cfg.policy)
        suite.run(policy, pending, cfg, out, trial=trial)
        n_new += len(pending)
    elapsed = time.perf_counter() - t0
    extra: dict[str, Any] = {"run_seconds_this_session": round(elapsed, 3), "n_run_this_session": n_new}
    client = getattr(policy, "client", None)  # model-backed policies: did any request get an answer?
    if client is not None and getattr(client, "n_requests", 0) and client.n_failed == client.n_requests:
        f = client.first_failure
        extra["llm_all_failed"] = (f"all {client.n_requests} model requests failed"
                                   + (f" (first: {f.kind}: {f.message})" if f is not None else ""))
    return finalize(suite, cfg, tasks, out, extra=extra)


def rescore(run_dir: Path) -> dict[str, Any]:
    """Re-score a run directory's saved trajectories with the current checker (no model needed)."""
    from ..config import load_recipe

    run_dir = Path(run_dir)
    _, cfg, _ = load_recipe(run_dir / "recipe.yaml", expect="evaluate")
    suite = get_suite(cfg.suite)
    tasks = select_tasks(suite.load_tasks(cfg), cfg)
    if not tasks:
        raise RecipeError(f"{run_dir}: its recipe selects no tasks")
    bad = unreadable_trajectory_lines(run_dir)
    if bad:  # said and counted, never dropped silently
        import sys

        print(f"warning: {run_dir / TRAJECTORIES}: {len(bad)} unreadable line(s) skipped (lines "
              f"{', '.join(map(str, bad[:10]))}{' ...' if len(bad) > 10 else ''})", file=sys.stderr)
    return finalize(suite, cfg, tasks, run_dir, extra={"rescored": True, "unreadable_trajectory_lines": len(bad)})
