"""The `tau` suite: our policy-bound domains (retail, airline) played with a simulated user.

Recipe keys used: ``source: own`` (the only one: tau-bench's own data is not installable offline), ``tasks``
(optional JSONL of task dicts, `Task.to_dict` shape; default = the built-in deterministic tasks),
``categories`` (domains), ``n_trials`` (pass^k needs > 1), ``max_steps`` (default 30 agent actions), and
``options``: ``user`` = scripted | llm, ``user_llm`` = an LLMConfig dict for the llm user.
Summary: per-domain pass^1, their mean as ``overall`` (the paper reports the retail/airline average), pass^k
for k = 1..n_trials, and the count of each termination reason.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ...config import RecipeError
from ..suites import Suite, mean, register_suite, save_trajectory, summarize_diagnostics
from ..episodes.domain import Task
from .domains import DOMAINS, own_tasks, tau_env
from ..episodes.orchestrator import DEFAULT_MAX_STEPS, run_episodes
from .scoring import pass_hat_k, score_tau
from ..episodes.users import make_user

_OPTION_KEYS = {"user", "user_llm"}


def _task_dict(t: Task) -> dict[str, Any]:
    return {"id": t.task_id, "category": t.domain, **t.to_dict()}


@register_suite("tau")
class TauSuite(Suite):
    table_rank = 2  # the paper's table: BFCL, ACEBench, tau-bench

    def overall_row(self, by_arm: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        return "average (mean of the domains' pass^1)", {a: s.get("overall") for a, s in by_arm.items()}

    def report_rows(self, by_arm: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """Categories (domains), then pass^k as tau-bench reports it. The efficiency (assistant turns per task,
        a count, not a rate) is in the paper-table section, which prints it as a number."""
        any_s = next(iter(by_arm.values()))
        return super().report_rows(by_arm) + [(k, {a: s.get(k) for a, s in by_arm.items()})
                                              for k in sorted(k for k in any_s if k.startswith("pass^"))]

    def paper_rows(self, summary: dict[str, Any]) -> list[dict[str, Any]]:
        """tau-bench's cells of the paper's table: average, retail, airline (pass^1, Wilson intervals over the
        (task, trial) units; the average's interval pools both domains) and the efficiency."""
        from ..stats import pooled_wilson

        ivs = summary.get("intervals") or {}
        cats = summary.get("categories") or {}
        rows = [{"metric": "average", "value": summary.get("overall"), **pooled_wilson(ivs.values())}]
        rows += [{"metric": d, "value": cats[d], **pooled_wilson([ivs.get(d) or {}])} for d in cats]
        eff = summary.get("efficiency") or {}
        if eff:
            rows.append({"metric": "efficiency (assistant turns / task)", "value": eff.get("assistant_turns_per_task"),
                         "n": eff.get("n"), "ci95": eff.get("ci95"), "interval": "t", "count": True})
        return rows

    def check_config(self, cfg) -> None:
        if cfg.source != "own":
            raise RecipeError(f"suite tau: source must be 'own' (got {cfg.source!r})")
        bad = set(cfg.options) - _OPTION_KEYS
        if bad:
            raise RecipeError(f"suite tau: unknown options {sorted(bad)}; known: {sorted(_OPTION_KEYS)}")
        if cfg.options.get("user", "scripted") not in ("scripted", "llm"):
            raise RecipeError("suite tau: options.user must be 'scripted' or 'llm'")
        unknown = set(cfg.categories) - set(DOMAINS)
        if unknown:
            raise RecipeError(f"suite tau: unknown domains {sorted(unknown)}; known: {list(DOMAINS)}")

    def load_tasks(self, cfg) -> list[dict[str, Any]]:
        self.check_config(cfg)
        if cfg.tasks:
            rows = [json.loads(line) for line in Path(cfg.tasks).read_text().splitlines() if line.strip()]
            return [_task_dict(Task.from_dict(r)) for r in rows]
        return [_task_dict(t) for t in own_tasks()]

    def version(self, cfg) -> str:
        blob = json.dumps(self.load_tasks(cfg), sort_keys=True).encode()
        return "tau-own-" + hashlib.sha256(blob).hexdigest()[:12]

    def run(self, policy, tasks, cfg, out_dir, trial: int = 0):
        user = make_user(cfg.options, seed=cfg.seed + trial)
        return run_episodes(policy, [Task.from_dict(t) for t in tasks], user, make_env=tau_env, trial=trial,
                            max_steps=cfg.max_steps or DEFAULT_MAX_STEPS,
                            on_done=lambda tr: save_trajectory(out_dir, tr), progress=cfg.progress)

    def scoring_info(self, cfg) -> dict[str, Any]:
        return {"decoding": f"policy parse (toolace_mt.llm.toolparse, {cfg.policy.tool_call_format})",
                "scoring": "tau-bench rules: final database state equals the gold replay's, and every required "
                           "output was said"}

    def score(self, task, trajectory):
        return score_tau(Task.from_dict(task), trajectory)

    def summarize(self, scores):
        by_dom: dict[str, list[float]] = {}
        succ: dict[str, int] = {}
        trials: dict[str, int] = {}
        terms: dict[str, int] = {}
        for s in scores:
            by_dom.setdefault(s["category"], []).append(s["score"])
            succ[s["task_id"]] = succ.get(s["task_id"], 0) + int(s["correct"])
            trials[s["task_id"]] = trials.get(s["task_id"], 0) + 1
            terms[s.get("termination") or "none"] = terms.get(s.get("termination") or "none", 0) + 1
        categories = {d: mean(v) for d, v in sorted(by_dom.items())}
        out = {"categories": categories, "counts": {d: len(v) for d, v in sorted(by_dom.items())},
               "overall": mean(categories.values()), "n_tasks": len(succ), "terminations": terms}
        n = min(trials.values()) if trials else 0
        for k in range(1, n + 1):
            out[f"pass^{k}"] = pass_hat_k(succ, n, k) if n == max(trials.values()) else \
                mean(pass_hat_k({t: c}, trials[t], k) for t, c in succ.items())
        out["efficiency"] = efficiency(scores)
        out["diagnostics"] = summarize_diagnostics(scores)  # graded, never part of `overall`
        eff = out["efficiency"]
        out["report_lines"] = ["", "terminations: " + ", ".join(f"{k} {v}" for k, v in sorted(terms.items())),
                               "", f"efficiency: {eff['assistant_turns_per_task']} assistant turns per task "
                               f"(n = {eff['n']} episodes; per domain: "
                               + ", ".join(f"{d} {v}" for d, v in eff["per_domain"].items()) + ")"]
        return out


def efficiency(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """Assistant turns per task (the paper's efficiency, §7.1): mean over every (task, trial) episode, with a
    95% t-interval of the mean, and per domain."""
    from ..stats import mean_interval

    turns = [s["assistant_turns"] for s in scores if isinstance(s.get("assistant_turns"), int)]
    by_dom: dict[str, list[int]] = {}
    for s in scores:
        if isinstance(s.get("assistant_turns"), int):
            by_dom.setdefault(s["category"], []).append(s["assistant_turns"])
    m = mean_interval(turns)
    return {"assistant_turns_per_task": m["mean"], "n": m["n"], "ci95": m["ci95"],
            "per_domain": {d: round(mean(v), 2) for d, v in sorted(by_dom.items())}}
