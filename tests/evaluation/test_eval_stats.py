"""Wilson intervals, the exact McNemar test (checked against hand-computed cases), per-category intervals in
every evaluate report, recorded versions, and `toolace-mt compare` on two runs."""
from __future__ import annotations

import json

import pytest

from toolace_mt.app.cli import main
from toolace_mt.evaluation.stats import category_intervals, mcnemar_exact, paired, wilson


def test_wilson_matches_hand_computed_values():
    # k=8, n=10, z=1.96: centre (0.8 + 0.19208) / 1.38416 = 0.71673; half 1.96*sqrt(0.016 + 0.0096040)/1.38416
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    lo, hi = wilson(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_exact_mcnemar_hand_computed():
    # b=1, c=9: P(X<=1 | Bin(10, .5)) = (1 + 10)/1024; two-sided = 22/1024
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    # b=2, c=5: (1 + 7 + 21)/128 = 29/128, doubled = 58/128
    assert mcnemar_exact(2, 5) == pytest.approx(58 / 128)
    assert mcnemar_exact(4, 4) == 1.0 and mcnemar_exact(0, 0) == 1.0
    r = paired({"a": True, "b": True, "c": False, "d": False, "x": True}, {"a": True, "b": False, "c": True, "d": True})
    assert (r["n"], r["both_correct"], r["only_a"], r["only_b"], r["neither"]) == (4, 1, 1, 2, 0)
    assert r["mcnemar_exact_p"] == pytest.approx(1.0)


def test_intervals_count_conversations_where_items_carry_one():
    scores = [{"category": "m", "conversation": "c1", "correct": True}, {"category": "m", "conversation": "c1",
              "correct": False}, {"category": "m", "conversation": "c2", "correct": True},
              {"category": "s", "correct": True}]
    iv = category_intervals(scores)
    assert iv["m"]["n"] == 2 and iv["m"]["correct"] == 1 and iv["s"]["n"] == 1


def _run(tmp_path, name, kind):
    import yaml

    rec = tmp_path / f"{name}.yaml"
    rec.write_text(yaml.safe_dump({"task": "evaluate", "suite": "ace", "source": "own", "progress": False,
                                   "categories": ["normal_atom_bool", "special_irrelevant"], "policy": {"kind": kind}}))
    out = tmp_path / name
    assert main(["evaluate", str(rec), "--out", str(out)]) == 0
    return out


def test_reports_and_compare(tmp_path, capsys):
    a, b = _run(tmp_path, "orc", "oracle"), _run(tmp_path, "nul", "null")
    summ = json.loads((a / "summary.json").read_text())
    assert summ["intervals"]["normal_atom_bool"]["n"] > 0 and len(summ["intervals"]["normal_atom_bool"]["wilson95"]) == 2
    assert set(summ["versions"]) >= {"transformers", "trl", "peft", "vllm", "bfcl-eval", "git_commit"}
    assert "95% CI (Wilson)" in (a / "report.md").read_text()
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    table = capsys.readouterr().out
    assert "B − A in percentage points" in table and "(oracle)" in table
    overall = next(line for line in table.splitlines() if line.startswith("overall")).split()
    assert overall[2:5] == ["100.0%", "0.0%", "-100.0"]  # A oracle, B null: B − A is -100 points
    assert main(["compare", str(a), str(b), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["difference_is"] == "accuracy_b - accuracy_a" and rep["overall"]["difference"] == -1.0
    o = rep["overall"]
    # the oracle passes every item, the null answer none of these: all pairs are discordant the same way
    assert o["n"] == summ["n_tasks"] and (o["only_a"], o["only_b"], o["both_correct"]) == (o["n"], 0, 0)
    assert o["mcnemar_exact_p"] == pytest.approx(2 * 0.5 ** o["n"])
    assert rep["a"]["policy"] == "oracle" and rep["b"]["policy"] == "null"
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2


def test_pooled_wilson_bootstrap_mean_and_t_interval():
    from toolace_mt.evaluation.stats import bootstrap_mean, mean_interval, pooled_wilson, wilson

    p = pooled_wilson([{"n": 10, "correct": 3}, {"n": 30, "correct": 9}])
    assert (p["n"], p["k"]) == (40, 12) and p["ci95"] == [round(x, 4) for x in wilson(12, 40)]
    b = bootstrap_mean([0.0, 0.5, 1.0, 1.0])
    assert b["n"] == 4 and 0.0 <= b["ci95"][0] < 0.625 < b["ci95"][1] <= 1.0
    assert bootstrap_mean([1.0, 1.0])["ci95"] == [1.0, 1.0] and bootstrap_mean([])["ci95"] is None
    m = mean_interval([10, 12, 14])  # sd 2, t(2) = 4.303: half-width 4.303 * 2 / sqrt(3)
    assert m["mean"] == 12 and m["ci95"] == [round(12 - 4.303 * 2 / 3 ** 0.5, 3), round(12 + 4.303 * 2 / 3 ** 0.5, 3)]
    assert mean_interval([5])["ci95"] is None


def test_mean_of_rates_interval_brackets_the_mean_not_the_pooled_rate():
    from toolace_mt.evaluation.stats import mean_of_rates_interval, wilson

    # tau-bench's shape: retail 7/114, airline 19/50 -> the average 22.1% (the pooled rate would be 15.9%)
    r = mean_of_rates_interval([{"n": 114, "correct": 7}, {"n": 50, "correct": 19}])
    mean = (7 / 114 + 19 / 50) / 2
    assert r["n"] == 164 and r["ci95"][0] < mean < r["ci95"][1] and r["ci95"][0] > 26 / 164 - 0.01
    assert r == mean_of_rates_interval([{"n": 114, "correct": 7}, {"n": 50, "correct": 19}])  # seeded
    one = mean_of_rates_interval([{"n": 50, "correct": 19}])
    assert one["ci95"] == [round(x, 4) for x in wilson(19, 50)]
