"""The ``bfcl`` suite: BFCL multi-turn (base, miss_param, miss_func, long_context) and, on ``source: official``,
the single-turn categories (non-live: simple_python, simple_java, simple_javascript, multiple, parallel,
parallel_multiple, irrelevance; live: live_simple, live_multiple, live_parallel, live_parallel_multiple,
live_irrelevance, live_relevance; `single.py`, scored by bfcl-eval's own AST checker and relevance rule).
``data_version: v3 | v4`` picks the official data release (`official.py`); the summary carries the v3
leaderboard aggregation (the paper's Non-Live, Live, Overall) beside the installed bfcl-eval's (`aggregate.py`).

Recipe keys (`EvaluateConfig`): ``source: official`` (the `bfcl-eval` package's entries, executed on its env
classes) or ``source: own`` with ``tasks: <task file or directory from toolace-mt bfcl-tasks>`` (executed on
our `toolace_mt.envs`); ``categories`` (default all four); ``max_steps`` (default 20); ``options``:
``strict`` (also require abstention on ``[]`` turns; not official, default false), ``max_parallel``
(tasks played at once, default 256), ``decoding`` (``official`` | ``lenient``, default official on
``source: official`` and lenient on own task sets; see `decoding.py`), ``decoder`` (``auto`` | ``bfcl-eval`` |
``own``: which implementation of the official decoder, default auto = bfcl-eval when importable), ``build`` (own source only: keyword arguments of
`build.build_task_set` -- per_category, seed, domains, heldout_domains, n_distractors, categories,
max_domains, turns, id_style -- used to build the
task set at ``tasks`` when it does not exist yet, so an own-task recipe runs from a fresh clone).
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from ...config import RecipeError
from ..suites import Suite, mean, register_suite, summarize_diagnostics
from . import CATEGORIES
from .checker import check_entry, decode_turns, gt_calls, multiset_missing, turn_checks
from .decoding import IMPLS, MODES, decoder_name, step_calls
from .single import LIVE, NON_LIVE, SINGLE_CATEGORIES

ALL_CATEGORIES = CATEGORIES + SINGLE_CATEGORIES


def data_version(cfg) -> str:
    return cfg.data_version or "v4"


def decoding_mode(cfg) -> str:
    return cfg.options.get("decoding") or ("official" if cfg.source == "official" else "lenient")


def call_format(cfg) -> str:
    """``pythonic`` when the policy writes calls as Python text (prompting style, replayed result files),
    else ``structured`` (tool calls the policy or the server already parsed)."""
    if cfg.policy.kind == "replay":
        return "pythonic" if cfg.policy.format == "bfcl_result" else "structured"
    return "pythonic" if cfg.policy.tool_call_format == "pythonic" and cfg.policy.kind not in ("oracle", "null") \
        else "structured"

OPTIONS = {"strict", "max_parallel", "build", "decoding", "decoder"}
BUILD_KEYS = {"per_category", "seed", "domains", "heldout_domains", "n_distractors", "categories", "max_domains",
              "turns", "id_style", "chain_prob"}


def own_task_file(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / "tasks.jsonl"
    if not p.is_file():
        raise RecipeError(f"bfcl own task set {p} not found (build one with `toolace-mt bfcl-tasks --out DIR`)")
    return p


def load_own_tasks(path: str | Path) -> list[dict[str, Any]]:
    p = own_task_file(path)
    from toolace_mt.io import DataFileError, iter_json_lines

    out, seen = [], set()
    for n, t, why in iter_json_lines(p):  # the project's JSONL reader: depth, size and NaN bounds per line
        if why is not None:
            raise DataFileError(f"{p}:{n}: {why}")
        if not isinstance(t, dict):
            raise RecipeError(f"{p}:{n}: a task is a JSON object, got {type(t).__name__}")
        for k in ("id", "category", "question", "initial_config", "involved_classes", "ground_truth"):
            if k not in t:
                raise RecipeError(f"{p}:{n}: task lacks {k!r}")
        if not isinstance(t["id"], str) or t["id"] in seen:
            raise RecipeError(f"{p}:{n}: task id must be a string unique in the file, got {t['id']!r:.60}")
        seen.add(t["id"])
        t.setdefault("backend", "own")
        out.append(t)
    return out


def _canon(value: Any) -> str:
    """Order-free comparable form of an argument dict (tuples and lists alike, keys sorted)."""
    return json.dumps(value, sort_keys=True, default=str)


def diagnostics(task: dict[str, Any], decoded: list[list[list[dict[str, Any]]]]) -> dict[str, Any]:
    """Graded per-task metrics, NOT part of the official (all-or-nothing) score; they tell weak models apart.

    Over turns with non-empty ground truth: ``call_rate`` (turns with >= 1 decodable call), ``name_recall`` /
    ``exact_call_recall`` (GT calls whose name / name + keyword arguments the model called in that turn,
    multiset, order-free; positional GT arguments are named first), ``turn_accuracy`` (turns passing the
    official per-turn state + response check, played on past failures: `checker.turn_checks`).
    ``abstain_rate``: over ``[]`` turns (clarification / held-out function), the share with no call; ``None``
    when the task has no such turn. Metrics over an empty set of turns are ``None``.
    """
    from .backends import make_world
    from .harness import keyword_call

    world = make_world(task)
    short = lambda n: str(n).split(".")[-1]  # noqa: E731
    n_turns = called = gt_n = name_hit = exact_hit = 0
    n_empty = abstained = 0
    for t, gt_turn in enumerate(gt_calls(task)):
        calls = [c for step in (decoded[t] if t < len(decoded) else []) for c in step]
        if not gt_turn:
            n_empty += 1
            abstained += not calls
            continue
        n_turns += 1
        called += bool(calls)
        gold = [keyword_call(world, c) for c in gt_turn]
        gt_n += len(gold)
        name_hit += len(gold) - len(multiset_missing([short(g["name"]) for g in gold],
                                                     [short(c.get("name")) for c in calls]))
        args = lambda c: c.get("arguments") if isinstance(c.get("arguments"), dict) else None  # noqa: E731
        exact_hit += len(gold) - len(multiset_missing(
            [short(g["name"]) + _canon(g["arguments"]) for g in gold],
            [short(c.get("name")) + _canon(args(c)) for c in calls]))
    turns = [v for v in turn_checks(task, decoded) if v is not None]
    ratio = lambda a, b: a / b if b else None  # noqa: E731
    return {"call_rate": ratio(called, n_turns), "name_recall": ratio(name_hit, gt_n),
            "exact_call_recall": ratio(exact_hit, gt_n), "turn_accuracy": ratio(sum(turns), len(turns)),
            "abstain_rate": ratio(abstained, n_empty)}


@register_suite("bfcl")
class BFCLSuite(Suite):
    table_rank = 0  # the paper's table: BFCL, ACEBench, tau-bench
    def check_config(self, cfg) -> None:
        bad = set(cfg.options) - OPTIONS
        if bad:
            raise RecipeError(f"options: unknown bfcl option(s) {sorted(bad)}; known: {sorted(OPTIONS)}")
        cats = [c for c in cfg.categories if c not in ALL_CATEGORIES]
        if cats:
            raise RecipeError(f"categories: {cats} are not BFCL categories (multi-turn {CATEGORIES}; single-turn "
                              f"non-live {NON_LIVE}; live {LIVE})")
        if cfg.source not in ("official", "own"):
            raise RecipeError(f"source: {cfg.source!r} must be 'official' or 'own' for the bfcl suite")
        single = [c for c in cfg.categories if c in SINGLE_CATEGORIES]
        if single and cfg.source != "official":
            raise RecipeError(f"categories: single-turn {single} run on source: official only")
        if cfg.data_version not in (None, "v3", "v4"):
            raise RecipeError(f"data_version: {cfg.data_version!r} must be v3 or v4 for the bfcl suite")
        if cfg.data_version and cfg.source != "official":
            raise RecipeError("data_version applies to source: official only")
        if cfg.source == "own" and not cfg.tasks:
            raise RecipeError("source 'own' needs tasks: <task file or directory>")
        if cfg.options.get("decoding", "official") not in MODES:
            raise RecipeError(f"options.decoding must be one of {MODES}")
        if cfg.options.get("decoder", "auto") not in IMPLS:
            raise RecipeError(f"options.decoder must be one of {IMPLS}")
        build = cfg.options.get("build")
        if build is not None and (not isinstance(build, dict) or set(build) - BUILD_KEYS):
            raise RecipeError(f"options.build must be a mapping with keys from {sorted(BUILD_KEYS)}")
        cp = (build or {}).get("chain_prob", 0)
        if isinstance(cp, bool) or not isinstance(cp, (int, float)) or not 0 <= cp <= 1:
            raise RecipeError(f"options.build.chain_prob must be a number in [0, 1]; got {cp!r}")
        if cfg.source == "official":
            from . import official

            if not official.available():
                raise RecipeError("source 'official' needs bfcl-eval, which is not installed here: pip install --no-deps "
                                  f"bfcl-eval=={official.PINNED_VERSION}")
            if single:
                from .single import available

                why = available()
                if why:
                    raise RecipeError(f"single-turn BFCL categories need bfcl-eval's checker and decoder: {why}")

    def load_tasks(self, cfg) -> list[dict[str, Any]]:
        self.check_config(cfg)
        cats = list(cfg.categories) or CATEGORIES
        if cfg.source == "official":
            from ..ace.data import DataUnavailable  # a reproduce run records the step as not run
            from . import official, single

            try:
                official.data_dir(data_version(cfg))
            except official.BFCLUnavailable as e:
                raise DataUnavailable(f"data_version: {e}") from None
            multi = [c for c in cats if c in CATEGORIES]
            tasks = official.load_tasks(multi, data_version(cfg)) if multi else []
            tasks += single.load_tasks([c for c in cats if c in SINGLE_CATEGORIES], data_version(cfg))
            order = {c: i for i, c in enumerate(cats)}
            tasks.sort(key=lambda t: order[t["category"]])  # stable: file order within a category
        else:
            self._maybe_build(cfg)
            tasks = [t for t in load_own_tasks(cfg.tasks) if t["category"] in cats]
        mode, impl = decoding_mode(cfg), cfg.options.get("decoder", "auto")
        for t in tasks:
            t["decoding"], t["decoder"] = mode, impl
            if cfg.options.get("strict"):
                t["strict"] = True
        return tasks

    @staticmethod
    def _maybe_build(cfg) -> None:
        build = cfg.options.get("build")
        p = Path(cfg.tasks)
        if build is None or (p / "tasks.jsonl" if p.suffix != ".jsonl" else p).exists():
            return
        if p.suffix == ".jsonl":
            raise RecipeError("options.build needs tasks: to be a directory")
        from .build import build_task_set

        build_task_set(p, **build)

    def version(self, cfg) -> str:
        if cfg.source == "official":
            from . import official

            v = data_version(cfg)
            return f"BFCL {v} data (bfcl-eval=={official.release(v)} files); checker bfcl-eval=={official.version()}"
        p = own_task_file(cfg.tasks)
        man = p.parent / "manifest.json"
        tag = json.loads(man.read_text()).get("version", "") if man.exists() else ""
        return f"own:{tag or p.name}:sha256={hashlib.sha256(p.read_bytes()).hexdigest()[:12]}"

    def run(self, policy, tasks, cfg, out_dir, trial: int = 0):
        from .harness import play

        fmt = call_format(cfg)
        single = [t for t in tasks if t.get("single_turn")]
        tasks = [t for t in tasks if not t.get("single_turn")]
        out = []
        if single:
            from .single import play_single

            out += play_single(policy, single, fc=fmt == "structured", out_dir=out_dir, trial=trial,
                               max_parallel=int(cfg.options.get("max_parallel", 256)), progress=cfg.progress)
        if not tasks:
            return out
        mode, impl = decoding_mode(cfg), cfg.options.get("decoder", "auto")
        decode = (lambda step: step_calls(step, mode, fmt, impl)) if mode == "official" and fmt == "pythonic" else None
        return out + play(policy, tasks, out_dir=out_dir, trial=trial, max_steps=cfg.max_steps,
                          max_parallel=int(cfg.options.get("max_parallel", 256)), progress=cfg.progress,
                          decode=decode, call_format=fmt)

    def export_results(self, cfg, out_dir) -> dict[str, Any]:
        """Official task sets: the run also in BFCL's result layout (``bfcl_result/<model>/``), so the official
        evaluation can re-score it independently."""
        if cfg.source != "official":
            return {}
        from .export import export_bfcl_results

        paths = export_bfcl_results(out_dir, Path(out_dir) / "bfcl_result", cfg.policy.label, data_version(cfg))
        return {"exported": {"layout": "bfcl_result", "files": [str(p.relative_to(out_dir)) for p in paths]}}

    def scoring_info(self, cfg) -> dict[str, Any]:
        """What the report records about decoding and scoring."""
        mode, fmt = decoding_mode(cfg), call_format(cfg)
        dec = (decoder_name(cfg.options.get("decoder", "auto")) if mode == "official" and fmt == "pythonic"
               else "structured tool calls written as f(k=repr(v)) (BFCL's FC path)" if mode == "official"
               else f"policy parse (toolace_mt.llm.toolparse, {cfg.policy.tool_call_format})")
        info = {"decoding": mode, "call_format": fmt, "decoder": dec,
                "scoring": "official BFCL multi-turn rules" + (" + strict abstention" if cfg.options.get("strict")
                                                               else "")}
        if cfg.source == "official":
            from . import official

            info["data_version"] = data_version(cfg)
            info["data_release"] = f"bfcl-eval=={official.release(data_version(cfg))}"
            if any(c in SINGLE_CATEGORIES for c in cfg.categories):
                info["scoring"] += (f"; single-turn: bfcl-eval {official.version()} ast_checker + relevance rule "
                                    f"({'FC' if fmt == 'structured' else 'prompting'} decoder)")
        return info

    def score(self, task: dict[str, Any], trajectory: dict[str, Any]) -> dict[str, Any]:
        if task.get("single_turn"):
            from .single import score_single

            return score_single(task, trajectory)
        decoded = decode_turns(trajectory.get("turns") or [], task.get("decoding", "lenient"),
                               trajectory.get("call_format", "structured"), task.get("decoder", "auto"))
        verdict = check_entry(task, decoded, strict=bool(task.get("strict")))
        return {"task_id": task["id"], "category": task["category"], "trial": trajectory.get("trial", 0),
                "correct": verdict["valid"], "score": 1.0 if verdict["valid"] else 0.0,
                "error_type": verdict["error_type"], "reasons": verdict["reasons"],
                "force_quit": bool(trajectory.get("force_quit")),
                "diagnostics": diagnostics(task, decoded)}  # graded, not official

    def report_rows(self, by_arm: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """The paper's BFCL columns first (multi-turn overall, Non-Live, Live, Overall: v3 leaderboard formula,
        with Wilson 95% intervals, labelled with the data version), then one row per category."""
        rows = []
        dv = {s.get("data_version") or "v4" for s in by_arm.values()}
        tag = f" [BFCL {'/'.join(sorted(dv))} data]"
        if any(s.get("bfcl_v3") for s in by_arm.values()):
            for key, label in (("multi_turn", "multi-turn overall"), ("non_live", "Non-Live"), ("live", "Live"),
                               ("overall", "Overall (v3 formula)")):
                vals = {}
                for a, s in by_arm.items():
                    v3 = s.get("bfcl_v3") or {}
                    vals[a] = None if v3.get(key) is None else {"value": v3[key],
                                                                  "ci95": (v3.get("ci95") or {}).get(key)}
                rows.append((label + tag, vals))
            rows.append(("Overall (installed bfcl-eval formula, agentic not run)" + tag,
                         {a: (s.get("bfcl_installed") or {}).get("overall") for a, s in by_arm.items()}))
        return rows + super().report_rows(by_arm)

    def summarize(self, scores: list[dict[str, Any]]) -> dict[str, Any]:
        cats: dict[str, list[float]] = {}
        errors: dict[str, Counter] = {}
        for s in scores:
            cats.setdefault(s["category"], []).append(s["score"])
            if not s["correct"]:
                errors.setdefault(s["category"], Counter())[s.get("error_type") or "other"] += 1
        order = [c for c in ALL_CATEGORIES if c in cats] + sorted(c for c in cats if c not in ALL_CATEGORIES)
        categories = {c: mean(cats[c]) for c in order}
        counts = {c: len(cats[c]) for c in order}
        out = {"categories": categories, "counts": counts, "correct": {c: int(sum(cats[c])) for c in order},
               # multi-turn only: the unweighted mean of the categories run (as BFCL's leaderboard)
               "overall": mean(categories.values()), "n_tasks": len(scores),
               "errors": {c: dict(v) for c, v in errors.items()},
               # graded means beside the official numbers; never part of `overall`
               "diagnostics": summarize_diagnostics([s for s in scores if s["category"] in CATEGORIES], CATEGORIES)}
        if any(c in SINGLE_CATEGORIES for c in cats):
            from .aggregate import installed, v3, v3_intervals

            agg = v3(categories, counts)
            out["bfcl_v3"] = {**agg, "ci95": v3_intervals(out["correct"], counts), "formula": "BFCL v3 leaderboard: Overall = unweighted mean of Non-Live, Live, "
                              "Multi-turn; Non-Live = mean of simple[mean of python/java/javascript], multiple, "
                              "parallel, parallel_multiple, irrelevance; Live = entry-weighted over the six live "
                              "categories; None where a part was not run"}
            try:
                out["bfcl_installed"] = {**installed(categories, counts),
                                         "formula": "installed bfcl-eval's own leaderboard aggregation (V4 weights "
                                                    "10/10/10/30/40)"}
            except Exception as e:  # noqa: BLE001 - the paper's formula stands without it
                out["bfcl_installed"] = {"error": f"{type(e).__name__}: {e}"}
            # the headline number: the v3 Overall when every part ran, else the mean of what ran (said so)
            if agg["overall"] is not None:
                out["overall"], out["overall_formula"] = agg["overall"], "bfcl_v3"
            else:
                out["overall_formula"] = "mean of the categories run (the v3 Overall needs every category)"
            out["report_lines"] = report_lines(out)
        return out


def report_lines(summary: dict[str, Any]) -> list[str]:
    """The paper-table numbers under the per-category table."""
    v3 = summary.get("bfcl_v3") or {}
    ins = summary.get("bfcl_installed") or {}
    pct = lambda x: "n/a" if x is None else f"{100 * x:.2f}%"  # noqa: E731
    ci = lambda k: "" if not (v3.get("ci95") or {}).get(k) else "{:.1f}–{:.1f}%".format(  # noqa: E731
        *(100 * x for x in v3["ci95"][k]))
    lines = ["", "| BFCL (v3 leaderboard formula) | score | 95% CI (Wilson, effective n) |", "|---|---:|---:|"]
    for k, label in (("multi_turn", "Multi-turn overall"), ("non_live", "Non-Live"), ("live", "Live"),
                     ("overall", "Overall")):
        lines.append(f"| {label} | {pct(v3.get(k))} | {ci(k)} |")
    if "overall" in ins:
        lines.append(f"| Overall, installed bfcl-eval formula (V4 weights; agentic not run, counted 0) | "
                     f"{pct(ins['overall'])} | |")
    return lines
