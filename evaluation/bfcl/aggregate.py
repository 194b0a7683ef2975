"""BFCL's headline numbers from per-category results, in two formulas (pure; the summary names which one):

* ``v3`` -- the BFCL v3 leaderboard, the one the paper reports: **Non-Live** = unweighted mean of simple (itself
  the unweighted mean of simple_python / simple_java / simple_javascript), multiple, parallel,
  parallel_multiple and irrelevance; **Live** = entry-weighted mean over live_simple, live_multiple,
  live_parallel, live_parallel_multiple, live_irrelevance and live_relevance; **Multi-turn** = unweighted mean
  of the four multi-turn categories; **Overall** = unweighted mean of Non-Live, Live and Multi-turn.
* ``installed`` -- what the installed bfcl-eval's leaderboard code computes (V4, composed from its own
  ``calculate_*_accuracy`` functions as its `generate_leaderboard_csv` composes them): non-live AST = mean of
  simple/multiple/parallel/parallel_multiple, live AST = entry-weighted over the four live AST categories,
  irrelevance = mean of irrelevance and live_irrelevance, weighted 10/10/10/30/40 with multi-turn and agentic
  (web search, memory: not run here, so they count 0 as they do in bfcl-eval when a category is missing).

A number whose parts were not all run is None (``v3``) or marked partial (``installed``: missing parts count 0).
"""
from __future__ import annotations

from typing import Any, Optional

MULTI = ["base", "miss_param", "miss_func", "long_context"]
SIMPLE = ["simple_python", "simple_java", "simple_javascript"]
NON_LIVE_PARTS = ["multiple", "parallel", "parallel_multiple", "irrelevance"]
LIVE = ["live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance",
        "live_relevance"]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def v3(acc: dict[str, float], n: dict[str, int]) -> dict[str, Optional[float]]:
    """``acc``: category -> accuracy in [0, 1]; ``n``: category -> entries."""
    have = lambda cats: all(c in acc for c in cats)  # noqa: E731
    simple = _mean([acc[c] for c in SIMPLE]) if have(SIMPLE) else None
    non_live = _mean([simple] + [acc[c] for c in NON_LIVE_PARTS]) if simple is not None and have(NON_LIVE_PARTS) \
        else None
    live = (sum(acc[c] * n[c] for c in LIVE) / sum(n[c] for c in LIVE)) if have(LIVE) else None
    multi = _mean([acc[c] for c in MULTI]) if have(MULTI) else None
    overall = _mean([non_live, live, multi]) if None not in (non_live, live, multi) else None
    return {"simple": simple, "non_live": non_live, "live": live, "multi_turn": multi, "overall": overall}


def installed(acc: dict[str, float], n: dict[str, int]) -> dict[str, Any]:
    """The installed bfcl-eval's own aggregation (its functions), on the categories run."""
    from .single import bfcl_helper

    h = bfcl_helper()

    def cat(c: str) -> dict[str, Any]:
        if c in acc:
            return {"accuracy": acc[c], "total_count": n[c], "display_accuracy": acc[c]}
        return {"accuracy": 0, "total_count": n.get(c, 0), "display_accuracy": "N/A"}

    def safe(fn, parts, **kw):
        try:
            return fn(parts, **kw)
        except ZeroDivisionError:  # no entries at all in an entry-weighted part
            return {"accuracy": 0, "total_count": 0, "display_accuracy": "N/A"}

    simple = h.calculate_unweighted_accuracy([cat(c) for c in SIMPLE])
    non_live = h.calculate_unweighted_accuracy([simple] + [cat(c) for c in ("multiple", "parallel",
                                                                             "parallel_multiple")],
                                               display_na_if_category_missing=False)
    live = safe(h.calculate_weighted_accuracy, [cat(c) for c in LIVE[:4]], display_na_if_category_missing=False)
    irrelevance = h.calculate_unweighted_accuracy([cat("irrelevance"), cat("live_irrelevance")])
    multi = h.calculate_unweighted_accuracy([cat(c) for c in MULTI],
                                            display_na_if_category_missing=False)
    na = {"accuracy": 0, "total_count": 0, "display_accuracy": "N/A"}
    agentic = h.calculate_unweighted_accuracy([h.calculate_unweighted_accuracy([na, na]),
                                               h.calculate_unweighted_accuracy([na, na, na])],
                                              display_na_if_category_missing=False)
    total = h.calculate_percentage_weighted_accuracy([non_live, live, irrelevance, multi, agentic],
                                                     [10, 10, 10, 30, 40], display_na_if_category_missing=False)
    run = set(acc)
    missing = [c for c in SIMPLE + NON_LIVE_PARTS + LIVE + MULTI if c not in run]
    return {"non_live_ast": non_live["accuracy"], "live_ast": live["accuracy"],
            "irrelevance": irrelevance["accuracy"], "multi_turn": multi["accuracy"], "agentic": 0.0,
            "overall": total["accuracy"], "weights": {"non_live_ast": 10, "live_ast": 10, "irrelevance": 10,
                                                      "multi_turn": 30, "agentic": 40},
            "partial": True, "missing_counted_zero": missing + ["agentic (web_search, memory): not run"]}


def v3_weights(n: dict[str, int]) -> dict[str, dict[str, float]]:
    """Each v3 headline number as a weighted sum of category accuracies: metric -> {category: weight}."""
    non_live = {**{c: 1 / 15 for c in SIMPLE}, **{c: 1 / 5 for c in NON_LIVE_PARTS}}
    total_live = sum(n.get(c, 0) for c in LIVE) or 1
    live = {c: n.get(c, 0) / total_live for c in LIVE}
    multi = {c: 1 / 4 for c in MULTI}
    overall: dict[str, float] = {}
    for part in (non_live, live, multi):
        for c, w in part.items():
            overall[c] = overall.get(c, 0.0) + w / 3
    return {"non_live": non_live, "live": live, "multi_turn": multi, "overall": overall}


def weighted_wilson(weights: dict[str, float], correct: dict[str, int], n: dict[str, int]) -> Optional[list[float]]:
    """A 95% Wilson interval for a weighted mean of category accuracies, on Kish's effective sample size
    (n_eff = m(1-m) / sum w^2 p(1-p)/n): exactly the Wilson interval of the pooled rate when the weights are
    proportional to the category sizes (Live; equal-size multi-turn categories). None when a part is missing."""
    from ..stats import wilson

    if any(n.get(c, 0) == 0 for c in weights):
        return None
    m = sum(w * correct[c] / n[c] for c, w in weights.items())
    var = sum(w * w * (correct[c] / n[c]) * (1 - correct[c] / n[c]) / n[c] for c, w in weights.items())
    n_pool = sum(n[c] for c in weights)
    n_eff = m * (1 - m) / var if var > 0 else n_pool
    lo, hi = wilson(round(m * n_eff), max(1, round(n_eff)))
    return [lo, hi]


def v3_intervals(correct: dict[str, int], n: dict[str, int]) -> dict[str, Optional[list[float]]]:
    return {k: weighted_wilson(w, correct, n) for k, w in v3_weights(n).items()}
