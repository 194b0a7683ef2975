"""Report statistics that match their claims (issue 26 item 4/5): an exact test beside every paired-bootstrap
interval, "resolved" only where both agree, and per-category official rows with n and Wilson intervals."""
from __future__ import annotations

from toolace_mt.app.report import _uncertainty_markdown, uncertainty
from toolace_mt.evaluation.stats import mcnemar_exact


def _tasks(scores: list[int], cat_of) -> dict:
    return {f"t{i}": {"category": cat_of(i), "score": float(s), "turn_accuracy": float(s)} for i, s in enumerate(scores)}


def _arms(wins: int, n: int = 100):
    cat_of = lambda i: ["base", "miss_param", "miss_func", "long_context"][i % 4]  # noqa: E731
    base = [0] * n
    arm = [1 if i < wins else 0 for i in range(n)]
    return {"base": _tasks(base, cat_of), "mas": _tasks(arm, cat_of)}


def test_bootstrap_excluding_0_with_few_discordant_tasks_is_not_resolved():
    unc = uncertainty(_arms(4))
    d = unc["official"]["diffs"]["mas-base"]
    assert d["excludes_0"] is True  # the percentile bootstrap alone would call it
    assert d["exact_test"] == "exact McNemar" and d["discordant"] == {"b_better": 4, "b_worse": 0}
    assert abs(d["exact_p"] - 0.125) < 1e-12 and d["exact_p"] == mcnemar_exact(0, 4)
    assert d["resolved"] is False
    md = "\n".join(_uncertainty_markdown({"uncertainty": {"bfcl_own": unc}}, ["base", "mas"]))
    row = next(ln for ln in md.splitlines() if ln.startswith("| MAS − Base"))
    assert "p=0.125" in row and "*" not in row


def test_clear_difference_is_resolved_and_marked():
    unc = uncertainty(_arms(20))
    d = unc["official"]["diffs"]["mas-base"]
    assert d["resolved"] is True and d["exact_p"] < 1e-5
    md = "\n".join(_uncertainty_markdown({"uncertainty": {"bfcl_own": unc}}, ["base", "mas"]))
    assert next(ln for ln in md.splitlines() if ln.startswith("| MAS − Base")).rstrip(" |").endswith("*")
    assert unc["turn_accuracy"]["diffs"]["mas-base"]["exact_test"] == "exact McNemar"  # 0/1 values here too


def test_sign_test_for_graded_metrics_and_per_category_wilson_rows():
    arms = _arms(20)
    for i, t in enumerate(arms["mas"].values()):
        t["turn_accuracy"] = 0.5 if i % 2 else 0.25  # graded, every task better than base's 0
    unc = uncertainty(arms)
    d = unc["turn_accuracy"]["diffs"]["mas-base"]
    assert d["exact_test"] == "exact sign test" and d["discordant"] == {"b_better": 100, "b_worse": 0}
    cats = unc["official"]["per_category"]
    assert set(cats) == {"base", "miss_param", "miss_func", "long_context"}
    assert cats["miss_param"]["mas"]["n"] == 25 and cats["miss_param"]["mas"]["k"] == 5
    lo, hi = cats["miss_param"]["mas"]["wilson95"]
    assert 0.08 < lo < 0.2 < hi < 0.4
    md = "\n".join(_uncertainty_markdown({"uncertainty": {"bfcl_own": unc}}, ["base", "mas"]))
    assert "| official miss_func (k/n, Wilson 95%) | 0/25 [0.0, 13.3] | 5/25 [8.9, 39.1] |" in md


def test_tasks_for_power_matches_a_simulation_of_the_exact_test_and_is_reported():
    import math
    import random

    from toolace_mt.evaluation.stats import mcnemar_tasks_needed

    n = mcnemar_tasks_needed(0.2, 0.1)
    assert 140 <= n <= 170  # Connor's approximation: 155
    # the exact McNemar test at that n rejects about 80% of the time when the rates are true
    rng, hits, reps = random.Random(0), 0, 1500
    for _ in range(reps):
        b = c = 0
        for _ in range(n):
            u = rng.random()
            b, c = (b + 1, c) if u < 0.15 else (b, c + 1) if u < 0.2 else (b, c)
        hits += mcnemar_exact(b, c) < 0.05
    assert 0.72 < hits / reps < 0.88
    assert mcnemar_tasks_needed(0.1, 0.0) == math.inf
    # the report states it for an unresolved official difference (micro's 4 vs 0 of 100 -> ~194 tasks)
    unc = uncertainty(_arms(4))
    assert unc["official"]["diffs"]["mas-base"]["tasks_for_power80"] == 194
    md = "\n".join(_uncertainty_markdown({"uncertainty": {"bfcl_own": unc}}, ["base", "mas"]))
    assert "MAS − Base: ~194 tasks" in md
    # a resolved difference is not listed as needing more tasks
    md20 = "\n".join(_uncertainty_markdown({"uncertainty": {"bfcl_own": uncertainty(_arms(20))}}, ["base", "mas"]))
    assert "Tasks an official difference would need" not in md20


def test_per_category_paired_differences_with_exact_tests_and_power():
    # mas wins the 25 miss_param tasks 12 times (a category-only effect, diluted in the overall) and ties elsewhere
    cat_of = lambda i: ["base", "miss_param", "miss_func", "long_context"][i % 4]  # noqa: E731
    mas = [1 if cat_of(i) == "miss_param" and i < 48 else 0 for i in range(100)]
    arms = {"base": _tasks([0] * 100, cat_of), "mas": _tasks(mas, cat_of)}
    unc = uncertainty(arms)
    per = unc["official"]["per_category_diffs"]
    assert set(per) == {"base", "miss_param", "miss_func", "long_context"}
    mp = per["miss_param"]["mas-base"]
    assert mp["discordant"] == {"b_better": 12, "b_worse": 0} and mp["exact_p"] == mcnemar_exact(0, 12)
    assert abs(mp["value"] - 12 / 25) < 1e-12 and mp["resolved"] is True
    assert per["miss_func"]["mas-base"]["resolved"] is False and per["miss_func"]["mas-base"]["value"] == 0
    md = "\n".join(_uncertainty_markdown({"uncertainty": {"bfcl_own": unc}}, ["base", "mas"]))
    row = next(ln for ln in md.splitlines() if ln.startswith("| MAS − Base") and "48.0" in ln)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2].startswith("48.0 [") and cells[2].endswith("*")  # miss_param column: resolved
    assert cells[3] == "0.0 [0.0, 0.0] p=1 (no difference observed)"  # miss_func: nothing to detect
    # a category with a few discordant tasks gets its own power figure, not a mark
    few = [1 if cat_of(i) == "miss_func" and i < 12 else 0 for i in range(100)]
    d = uncertainty({"base": _tasks([0] * 100, cat_of), "mas": _tasks(few, cat_of)})[
        "official"]["per_category_diffs"]["miss_func"]["mas-base"]
    assert d["discordant"]["b_better"] == 3 and d["resolved"] is False and d["tasks_for_power80"] > 25
