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


Z80 = 0.8416212335729143  # the 80% standard normal quantile: power 0.8


def mcnemar_tasks_needed(discordant_rate: float, diff: float, z_alpha: float = Z95,
                         z_power: float = Z80) -> float:
    """Paired tasks a two-sided McNemar test at 5% needs to detect `diff` (the difference of the two success
    rates, as a share of tasks) with power 0.8 when a share `discordant_rate` of tasks is discordant: the normal
    approximation of Connor (1987), n = (z_a sqrt(pd) + z_b sqrt(pd - diff^2))^2 / diff^2. ``inf`` when no
    difference was observed. With a few discordant tasks the observed rates are themselves uncertain, so this is
    an order of magnitude, not a sample-size guarantee."""
    pd, d = float(discordant_rate), abs(float(diff))
    if not 0 <= pd <= 1 or d > pd:
        raise ValueError(f"mcnemar_tasks_needed: need 0 <= |diff| <= discordant_rate <= 1 (got {diff}, {pd})")
    if d == 0:
        return math.inf
    return math.ceil((z_alpha * math.sqrt(pd) + z_power * math.sqrt(pd - d * d)) ** 2 / (d * d))


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


def pooled_wilson(intervals: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """n, k and a Wilson 95% interval pooled over categories' ``{"n", "correct"}`` (from `category_intervals`).
    For a mean of category rates the pooled interval is exact when the categories are the same size and an
    approximation otherwise (the report says so)."""
    ivs = list(intervals)
    k, n = sum(int(c.get("correct", 0)) for c in ivs), sum(int(c.get("n", 0)) for c in ivs)
    lo, hi = wilson(k, n)
    return {"n": n, "k": k, "ci95": [round(lo, 4), round(hi, 4)] if n else None, "interval": "wilson"}


BOOT_SEED = 0  # chosen: a fixed seed, so a report rebuilt from the same summary shows the same interval
N_BOOT = 2000  # chosen: as toolace_mt.uncertainty


def bootstrap_mean(values: Iterable[float], n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> dict[str, Any]:
    """n and a percentile-bootstrap 95% interval of the mean of per-item values in [0, 1] (for means of
    fractions, such as ACEBench's process accuracy, where a Wilson interval does not apply)."""
    import random

    xs = [float(v) for v in values]
    n = len(xs)
    if not n:
        return {"n": 0, "ci95": None, "interval": "bootstrap"}
    rng = random.Random(seed)
    means = sorted(sum(rng.choice(xs) for _ in range(n)) / n for _ in range(n_boot))
    lo, hi = means[int(0.025 * n_boot)], means[min(n_boot - 1, int(0.975 * n_boot))]
    return {"n": n, "ci95": [round(lo, 4), round(hi, 4)], "interval": "bootstrap"}


T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        15: 2.131, 20: 2.086, 30: 2.042, 60: 2.000, 120: 1.980}  # Student t 97.5% quantiles by degrees of freedom


def _t975(df: int) -> float:
    keys = sorted(T975)
    return T975[max(k for k in keys if k <= df)] if df >= 1 else float("nan")  # conservative: the next lower df


def mean_interval(values: Iterable[float]) -> dict[str, Any]:
    """Mean, n and a 95% t-interval of the mean (for counts such as turns per task); no interval below n = 2."""
    xs = [float(v) for v in values]
    n = len(xs)
    if not n:
        return {"mean": None, "n": 0, "ci95": None}
    m = sum(xs) / n
    if n < 2:
        return {"mean": round(m, 3), "n": n, "ci95": None}
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    h = (_t975(n - 1) if n - 1 < 120 else Z95) * sd / math.sqrt(n)
    return {"mean": round(m, 3), "n": n, "ci95": [round(m - h, 3), round(m + h, 3)]}


def mean_of_rates_interval(intervals: Iterable[Mapping[str, Any]], draws: int = 4000,
                           seed: int = BOOT_SEED) -> dict[str, Any]:
    """n and a 95% interval for the unweighted MEAN of several categories' rates (``{"n", "correct"}`` each, as
    `category_intervals` gives), e.g. tau-bench's retail/airline average: each rate drawn from its Jeffreys
    posterior Beta(k + 1/2, n - k + 1/2), the mean's 2.5 / 97.5 percentiles over seeded draws. One category:
    its Wilson interval."""
    import random

    ivs = [c for c in intervals if int(c.get("n", 0)) > 0]
    if len(ivs) <= 1:
        return pooled_wilson(ivs)
    rng = random.Random(seed)
    means = sorted(sum(rng.betavariate(int(c["correct"]) + 0.5, int(c["n"]) - int(c["correct"]) + 0.5)
                       for c in ivs) / len(ivs) for _ in range(draws))
    return {"n": sum(int(c["n"]) for c in ivs), "k": sum(int(c["correct"]) for c in ivs),
            "ci95": [round(means[int(0.025 * draws)], 4), round(means[min(draws - 1, int(0.975 * draws))], 4)],
            "interval": "jeffreys-mean"}
