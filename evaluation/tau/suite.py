"""The `tau` suite: policy-bound domains (retail, airline) played with a simulated user.

Sources: ``own`` (our deterministic tasks on our own retail/airline databases) and ``official`` (tau2-bench's
retail 114 and airline 50 tasks, environments, policy, user simulator and reward through its own package,
`official.py`; needs the ``tau2`` extra, else the step is "not run" with the install line).
Recipe keys used: ``tasks`` (own only: optional JSONL of task dicts, `Task.to_dict` shape; default = the
built-in deterministic tasks), ``categories`` (domains), ``n_trials`` (pass^k needs > 1), ``max_steps`` (own:
default 30 agent actions; official: tau2's own step cap unless set), and ``options``: ``user`` = scripted | llm
(official default llm: tau2's user simulator; scripted is an offline stand-in), ``user_llm`` = an LLMConfig dict
for the llm user.
Summary: per-domain pass^1, their mean as ``overall`` (the paper reports the retail/airline average), pass^k
for k = 1..n_trials as tau-bench defines it (mean over tasks of C(c, k) / C(n, k)), the efficiency (assistant
turns per task, the paper's §7.1) and the count of each termination reason.
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
from . import official
from .scoring import pass_hat_k, score_tau
from ..episodes.users import make_user

_OPTION_KEYS = {"user", "user_llm", "concurrency"}
OFFICIAL = "official"  # tau2-bench's retail and airline through its own package (official.py)


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
        """tau-bench's cells of the paper's table: average, retail, airline (pass^1; Wilson intervals over the
        (task, trial) units, the average's the interval of a mean of the two rates) and the efficiency."""
        from ..stats import mean_of_rates_interval, pooled_wilson

        ivs = summary.get("intervals") or {}
        cats = summary.get("categories") or {}
        rows = [{"metric": "average", "value": summary.get("overall"), **mean_of_rates_interval(ivs.values())}]
        rows += [{"metric": d, "value": cats[d], **pooled_wilson([ivs.get(d) or {}])} for d in cats]
        eff = summary.get("efficiency") or {}
        if eff:
            rows.append({"metric": "efficiency (assistant turns / task)", "value": eff.get("assistant_turns_per_task"),
                         "n": eff.get("n"), "ci95": eff.get("ci95"), "interval": "t", "count": True})
        return rows

    def check_config(self, cfg) -> None:
        if cfg.source not in ("own", OFFICIAL):
            raise RecipeError(f"suite tau: source must be 'own' or 'official' (got {cfg.source!r})")
        if cfg.source == OFFICIAL and cfg.tasks:
            raise RecipeError("suite tau: source official takes its tasks from the tau2 package; drop `tasks`")
        if cfg.source == OFFICIAL:  # checked at validate time, with the install line (issue 25: before any compute)
            from toolace_mt.deps import installed

            if not installed("tau2"):
                raise RecipeError(f"suite tau, source official needs tau2-bench, which is not installed here: "
                                  f"{official.INSTALL}")
        bad = set(cfg.options) - _OPTION_KEYS
        if bad:
            raise RecipeError(f"suite tau: unknown options {sorted(bad)}; known: {sorted(_OPTION_KEYS)}")
        if cfg.options.get("user", "scripted") not in ("scripted", "llm"):
            raise RecipeError("suite tau: options.user must be 'scripted' or 'llm'")
        c = cfg.options.get("concurrency", 1)
        if cfg.source != OFFICIAL and "concurrency" in cfg.options:
            raise RecipeError("suite tau: options.concurrency is for source official (own episodes are batched)")
        if not isinstance(c, int) or isinstance(c, bool) or c < 1:
            raise RecipeError(f"suite tau: options.concurrency must be an integer >= 1 (got {c!r})")
        known = list(official.DOMAINS) if cfg.source == OFFICIAL else list(DOMAINS)
        unknown = set(cfg.categories) - set(known)
        if unknown:
            raise RecipeError(f"suite tau: unknown domains {sorted(unknown)}; known: {known}")

    def load_tasks(self, cfg) -> list[dict[str, Any]]:
        self.check_config(cfg)
        if cfg.source == OFFICIAL:
            return official.load_tasks(list(cfg.categories))
        if cfg.tasks:
            from toolace_mt.io import DataFileError, iter_json_lines

            out = []
            for n, r, why in iter_json_lines(cfg.tasks):
                if why is not None:
                    raise DataFileError(f"{cfg.tasks}:{n}: {why}")
                try:
                    out.append(_task_dict(Task.from_dict(r)))
                except (KeyError, TypeError, ValueError, AttributeError) as e:
                    raise RecipeError(f"{cfg.tasks}:{n}: not a tau task ({type(e).__name__}: {e})") from None
            return out
        return [_task_dict(t) for t in own_tasks()]

    def version(self, cfg) -> str:
        if cfg.source == OFFICIAL:
            return official.version(self.load_tasks(cfg))
        blob = json.dumps(self.load_tasks(cfg), sort_keys=True).encode()
        return "tau-own-" + hashlib.sha256(blob).hexdigest()[:12]

    def run(self, policy, tasks, cfg, out_dir, trial: int = 0):
        if cfg.source == OFFICIAL:
            return self._run_official(policy, tasks, cfg, out_dir, trial)
        user = make_user(cfg.options, seed=cfg.seed + trial)
        return run_episodes(policy, [Task.from_dict(t) for t in tasks], user, make_env=tau_env, trial=trial,
                            max_steps=cfg.max_steps or DEFAULT_MAX_STEPS,
                            on_done=lambda tr: save_trajectory(out_dir, tr), progress=cfg.progress)

    def _run_official(self, policy, tasks, cfg, out_dir, trial):
        """tau2's orchestrator plays each episode (its agent/user/environment loop is sequential);
        ``options.concurrency`` > 1 plays that many episodes in threads, their policy requests batched into
        one ``policy.act`` call (`BatchingPolicy`), so an in-process vLLM policy still gets batches."""
        from concurrent.futures import ThreadPoolExecutor

        users = official.make_user_factory(cfg.options)
        n = int(cfg.options.get("concurrency", 1))
        shared = policy
        if n > 1:
            from ..policies.batching import BatchingPolicy

            shared = BatchingPolicy(policy, max_batch=max(n, 1))
        bar = None
        if cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(tasks), desc=f"tau2 trial {trial}", unit="task")

        def one(t):
            tr = official.play(shared, t, users(official._task(t), t["id"]), trial=trial, seed=cfg.seed + trial,
                               max_steps=cfg.max_steps)
            save_trajectory(out_dir, tr)
            if bar:
                bar.update(1)
            return tr

        try:
            if n > 1:
                with ThreadPoolExecutor(max_workers=n) as ex:
                    out = list(ex.map(one, tasks))
            else:
                out = [one(t) for t in tasks]
        finally:
            if shared is not policy:
                shared.close()
            if bar:
                bar.close()
        return out

    def export_results(self, cfg, out_dir) -> dict[str, Any]:
        """Official tasks: the trajectories also as tau2 `Results` files (``tau2_results/<domain>.json``), which
        tau2's own `evaluate_trajectories` re-scores."""
        if cfg.source != OFFICIAL:
            return {}
        from ..suites import load_trajectories

        tasks = self.load_tasks(cfg)
        paths = official.export_results(load_trajectories(out_dir), tasks, Path(out_dir) / "tau2_results",
                                        agent=cfg.policy.label, user=cfg.options.get("user", "llm"))
        return {"exported": {"layout": "tau2_results", "files": [str(p.relative_to(out_dir)) for p in paths]}}

    def scoring_info(self, cfg) -> dict[str, Any]:
        if cfg.source == OFFICIAL:
            return {"decoding": f"policy parse (toolace_mt.llm.toolparse, {cfg.policy.tool_call_format})",
                    "scoring": f"tau2's own evaluator ({official.PACKAGE}=={official.package_version()}, "
                               "EvaluationType.ALL: DB + COMMUNICATE), success = reward 1",
                    "user": "tau2 user simulator through toolace_mt.llm" if cfg.options.get("user", "llm") == "llm"
                            else "scripted stand-in (offline; a mechanism check, not a user)"}
        return {"decoding": f"policy parse (toolace_mt.llm.toolparse, {cfg.policy.tool_call_format})",
                "scoring": "tau-bench rules: final database state equals the gold replay's, and every required "
                           "output was said"}

    def score(self, task, trajectory):
        if "tau2_task" in task:
            return official.score(task, trajectory)
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
