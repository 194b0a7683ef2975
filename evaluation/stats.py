"""Statistics for evaluation results: Wilson score intervals and the exact McNemar test on paired verdicts.

Pure functions (standard library only), so reports and other modules can reuse them.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

Z95 = 1.959963984540054  # the 97.5% standard normal quantile: two-sided 95% intervals


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (0 <= k <= n); (0, 1) when n == 0."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"wilson: need 0 <= k <= n (got k={k}, n={n})")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for the discordant counts b (A right, B wrong) and c (A wrong, B right):
    the binomial test of min(b, c) under Binomial(b + c, 1/2), doubled and capped at 1."""
    if b < 0 or c < 0:
        raise ValueError("mcnemar_exact: counts must be >= 0")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired(a: Mapping[Any, bool], b: Mapping[Any, bool]) -> dict[str, Any]:
    """Paired comparison of two verdict maps on the keys they share: counts, accuracies, exact McNemar p."""
    keys = sorted(set(a) & set(b), key=str)
    both = sum(1 for k in keys if a[k] and b[k])
    only_a = sum(1 for k in keys if a[k] and not b[k])
    only_b = sum(1 for k in keys if b[k] and not a[k])
    n = len(keys)
    return {"n": n, "both_correct": both, "only_a": only_a, "only_b": only_b,
            "neither": n - both - only_a - only_b,
            "accuracy_a": (both + only_a) / n if n else None, "accuracy_b": (both + only_b) / n if n else None,
            "difference": (only_b - only_a) / n if n else None,
            "mcnemar_exact_p": mcnemar_exact(only_a, only_b)}


def units(scores: Iterable[Mapping[str, Any]]) -> dict[str, list[bool]]:
    """Per category, the binary units the score counts: a conversation (all its items correct) where items
    carry one (ACE multi-turn), else each (task, trial)."""
    convs: dict[tuple, list[bool]] = {}
    out: dict[str, list[bool]] = {}
    for s in scores:
        cat = str(s.get("category", ""))
        if s.get("conversation"):
            convs.setdefault((cat, s["conversation"], s.get("trial", 0)), []).append(bool(s.get("correct")))
        else:
            out.setdefault(cat, []).append(bool(s.get("correct")))
    for (cat, _, _), v in convs.items():
        out.setdefault(cat, []).append(all(v))
    return out


def category_intervals(scores: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """category -> {"n", "correct", "wilson95": [lo, hi]} over `units`."""
    out = {}
    for cat, v in units(scores).items():
        k, n = sum(v), len(v)
        lo, hi = wilson(k, n)
        out[cat] = {"n": n, "correct": k, "wilson95": [round(lo, 4), round(hi, 4)]}
    return out
