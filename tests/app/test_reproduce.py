"""`toolace-mt reproduce` orchestration on the tiny debug recipe: every step, reuse on rerun, report rebuild."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from toolace_mt.app.cli import main
from toolace_mt.config import RecipeError, load_recipe

ROOT = Path(__file__).resolve().parents[2]
DEBUG = "recipes/reproduce/debug.yaml"


@pytest.fixture(scope="module")
def debug_run(debug_reproduce):
    """One full debug reproduce (tests/app/conftest.py), shared with the Ray reproduce test."""
    return debug_reproduce


def _table_rows(report: str) -> list[list[str]]:
    sec = report.split("## Comparison", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in sec.splitlines() if r.startswith("| ") and not r.startswith("| benchmark")]
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows]


@pytest.mark.slow
def test_reproduce_writes_complete_report(debug_run):
    res = debug_run / "results"
    report = (res / "report.md").read_text()
    rows = _table_rows(report)
    benches = {r[0].split(" ")[0] for r in rows}
    assert benches == {"bfcl_own", "tau_own"}
    assert all(("[smoke]" in r[0]) == r[0].startswith("tau_own") for r in rows)
    for r in rows:  # every cell of every arm is a number from this run
        assert len(r) == 5, r
        for cell in r[2:]:
            assert re.fullmatch(r"\**\d+\.\d\**", cell), (r, cell)
    summary = json.loads((res / "summary.json").read_text())
    assert summary["arms"] == ["base", "mas", "toolace_mt"]
    assert set(summary["generation"]) >= {"toolace_mt", "mas"}
    assert summary["generation"]["toolace_mt"]["card"]["counts"]["kept"] > 0
    assert set(summary["training"]) == {"base", "mas", "toolace_mt"}
    assert summary["machine"]["cpu_count"] >= 1
    assert (res / "comparison.png").stat().st_size > 1000
    # intervals, teacher-forced calls, the seed spread and the data-level comparison
    unc = summary["uncertainty"]["bfcl_own"]
    assert set(unc) == {"official", "turn_accuracy", "teacher_forced_exact_calls", "teacher_forced_exact_any_order"}
    for r in unc.values():
        assert set(r["arms"]) == {"base", "mas", "toolace_mt"} and "toolace_mt-mas" in r["diffs"]
    assert "comparison with 95% confidence intervals" in report and "spread over training seeds" in report
    assert set(summary["seeds"]["bfcl_own"]) == {"mas", "toolace_mt"}
    assert set(summary["seeds"]["bfcl_own"]["mas"]) == {"0", "1"}  # the main run is seed 0
    # the seeded fine-tunes go to the step runner as one batch (under --executor ray they share the cores), after
    # the base's and the arms' batches; then their evaluations as one batch, then their teacher-forced scoring
    phases = json.loads((debug_run / "run" / "steps.json").read_text())["invocations"][0]["phases"]
    assert [p["steps"] for p in phases if p["kind"] == "train"] == [1, 2, 2]
    kinds = [p["kind"] for p in phases]
    assert kinds.index("seeds_teacher_forced") == len(kinds) - 1 and kinds[-2] == "evaluate"
    assert "## Data-level comparison" in report and set(summary["data_comparison"]) >= {"toolace_mt", "mas"}
    assert summary["data_comparison"]["toolace_mt"]["cost_per_kept"]["llm_calls"] is not None
    tf = json.loads((debug_run / "run" / "evaluate" / "mas" / "bfcl_own" / "teacher_forced.json").read_text())
    assert tf["calls"] > 0 and 0 <= tf["exact_call_rate"] <= 1
    # a message exact in the gold order is exact in some order; no more than the messages scored
    assert tf["exact"] <= tf["exact_any_order"] <= tf["calls"] - tf["skipped"]
    assert all(r["exact"] <= r["exact_any_order"] for r in tf["per_task"])
    # every scored call that is not exact has one first-miss part (the report's "where ... first go wrong" table)
    assert sum(tf["first_miss"].values()) == tf["calls"] - tf["exact"] - tf["skipped"]
    assert sum(sum(r["first_miss"].values()) for r in tf["per_task"]) == sum(tf["first_miss"].values())
    # the tier's tokenizer and ids: a Llama tiny model, 2-digit ids in the built tasks
    cfg = json.loads((debug_run / "run" / "train" / "base" / "base_model" / "config.json").read_text())
    assert cfg["model_type"] == "llama"
    man = json.loads((ROOT / "runs/bfcl_tasks/debug_tier/manifest.json").read_text())
    assert man["id_style"] == "short" and man["max_domains"] == 1
    # learning curves: every saved checkpoint and the final model of each trained run, scored teacher-forced
    run = debug_run / "run"
    for arm, steps in (("base", [2, 4]), ("mas", [2, 3]), ("toolace_mt", [2, 3])):
        lc = json.loads((run / "train" / arm / "learning_curve.json").read_text())
        assert [p["step"] for p in lc["points"]] == steps, (arm, lc)
        assert all(p["calls"] > 0 and 0 <= p["token_accuracy"] <= 1 for p in lc["points"])
        assert all(p["exact"] <= p["exact_any_order"] <= p["calls"] for p in lc["points"])
    assert summary["learning_curves"]["mas"]["points"][-1]["step"] == 3
    assert "## Learning curves" in report and "| MAS | 2 |" in report
    assert (res / "learning_curves.png").stat().st_size > 1000
    # the tier's template and tokenizer reached the trained models (signature lines, bare words)
    assert "compact" in (run / "train" / "base" / "template_report.json").read_text()
    tok = json.loads((run / "train" / "base" / "base_model" / "tokenizer.json").read_text())
    assert "\\p{L}+|" in json.dumps(tok["pre_tokenizer"])
    # the base saw both plain datasets (one per base_data recipe: ToolACE-MT-built and MAS-built), whole dialogues
    base_recipe = (run / "train" / "base" / "recipe.yaml").read_text()
    assert "generate/base_data/dataset" in base_recipe and "generate/base_data_2/dataset" in base_recipe
    assert "method: mas" in (run / "generate" / "base_data_2" / "recipe.yaml").read_text()
    assert set(summary["generation"]) >= {"base_data", "base_data_2"}
    # the arms really were trained from the base model, on their own data
    for arm in ("mas", "toolace_mt"):
        t = json.loads((run / "train" / arm / "summary.json").read_text())
        assert t["start_model"].startswith(str(run / "train" / "base"))
        assert (run / "train" / arm / "recipe.yaml").read_text().count(f"generate/{arm}/dataset") == 1


@pytest.mark.slow
def test_rerun_reuses_every_step_and_redoes_only_missing(debug_run, monkeypatch, capsys):
    import os

    import toolace_mt.generation.run as grun
    import toolace_mt.training.train as ttrain

    def boom(*a, **k):
        raise AssertionError("a finished step was run again")

    monkeypatch.setattr(grun, "run_generation", boom)
    monkeypatch.setattr(ttrain, "run_training", boom)
    run = debug_run / "run"
    # an interrupted evaluation: its summary is gone, so only it runs again
    victim = run / "evaluate" / "mas" / "tau_own"
    before = json.loads((victim / "summary.json").read_text())
    (victim / "summary.json").unlink()
    monkeypatch.chdir(ROOT)
    rc = main(["reproduce", DEBUG, "--out", str(run), "--results", str(debug_run / "results2")])
    assert rc == 0
    out = capsys.readouterr().out
    assert out.count("run     evaluate") == 1 and "mas/tau_own" in out
    after = json.loads((victim / "summary.json").read_text())
    assert after["overall"] == before["overall"] and after["n_scored"] == before["n_scored"]
    # the resumed invocation is added to the run's wall time, not put in its place
    steps = json.loads((run / "steps.json").read_text())
    assert len(steps["invocations"]) >= 2
    assert steps["wall_s"] == pytest.approx(sum(r["wall_s"] for r in steps["invocations"]), abs=0.2)
    report2 = (debug_run / "results2" / "report.md").read_text()
    assert "invocations (a resumed run reuses finished steps" in report2
    # each invocation's phases are reported: the first run's training stays visible after a resume that re-scored
    first = next(ln for ln in report2.splitlines() if ln.startswith("Where invocation 1 of "))
    assert "train" in first and "generate" in first
    # the resumed invocation re-ran one evaluation, however fast (a 0.0 s phase is still reported when it ran a step)
    last = next(ln for ln in report2.splitlines()
                if ln.startswith(f"Where invocation {len(steps['invocations'])} of "))
    assert re.search(r"evaluate \(\d+ steps, 1 run\)", last), last


@pytest.mark.slow
def test_report_rebuilds_from_saved_results(debug_run, tmp_path):
    rc = main(["report", str(debug_run / "run"), "--results", str(tmp_path / "rebuilt")])
    assert rc == 0
    a = _table_rows((debug_run / "results" / "report.md").read_text())
    b = _table_rows((tmp_path / "rebuilt" / "report.md").read_text())
    assert a == b and a


@pytest.mark.slow
def test_report_goes_to_the_run_directory_and_to_results_only_when_asked(debug_run, tmp_path, monkeypatch):
    """The main job must not rewrite the committed results/ unless told: the report lives in <run>/report/."""
    run = debug_run / "run"
    assert (run / "report" / "report.md").is_file() and (run / "report" / "comparison.png").is_file()
    monkeypatch.chdir(tmp_path)  # a bare `report RUN` must write nothing under ./results
    assert main(["report", str(run)]) == 0
    assert not (tmp_path / "results").exists()
    assert main(["report", str(run), "--results"]) == 0  # bare --results: <results_dir>/<name>
    report = tmp_path / "results" / "debug" / "report.md"
    assert report.is_file() and (report.stat().st_mode & 0o777) != 0o600  # a plain file's mode, not mkstemp's


def test_reproduce_recipe_errors_are_clear(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: reproduce\narms: [base, mas]\nbase_model: x\nevaluate: {a: recipes/evaluate/bfcl_own_oracle.yaml}\n")
    with pytest.raises(RecipeError, match="needs a generate recipe"):
        load_recipe(bad)
    bad.write_text("task: reproduce\narms: [base]\nbase_model: x\nevaluate: {a: recipes/evaluate/nope.yaml}\n")
    _, cfg, _ = load_recipe(bad)
    with pytest.raises(RecipeError, match="evaluate/base/a.*file not found"):
        cfg.check()
    bad.write_text("task: reproduce\narms: [base]\nbase_model: x\nevalute: {}\n")
    with pytest.raises(RecipeError, match="did you mean 'evaluate'"):
        load_recipe(bad)
    # validate catches a sub-recipe of the wrong kind
    bad.write_text("task: reproduce\narms: [base]\nbase_model: x\nevaluate: {a: recipes/generate/debug.yaml}\n")
    assert main(["validate", str(bad)]) == 2
    # base_data: one recipe or a list of them; each item is checked, an empty list is no base data
    head = "task: reproduce\narms: [base]\nbase_train: recipes/train/tiny_base_pretrain.yaml\n" \
           "evaluate: {a: recipes/evaluate/bfcl_own_oracle.yaml}\n"
    for base_data, msg in (("[5]", r"base_data\[0\]\.: expected a mapping"),
                           ("[{recipe: a.yaml, sett: {}}]", r"base_data\[0\]\.sett.*did you mean 'set'"),
                           ("[]", "base_train needs base_data")):
        bad.write_text(head + f"base_data: {base_data}\n")
        with pytest.raises(RecipeError, match=msg):
            load_recipe(bad)
    bad.write_text(head + "base_data: recipes/generate/quickstart_plain_multi_turn.yaml\n")
    assert [r.recipe for r in load_recipe(bad)[1].base_data] == ["recipes/generate/quickstart_plain_multi_turn.yaml"]


def test_shipped_reproduce_recipes_validate(monkeypatch, capsys, tmp_path):
    import toolace_mt.deps as deps
    from toolace_mt.evaluation.bfcl import official

    monkeypatch.setattr(deps, "installed", lambda module: True)  # the paper recipes' vLLM: a GPU install
    monkeypatch.setattr(official, "available", lambda: True)
    monkeypatch.chdir(ROOT)
    recipes = [str(p.relative_to(ROOT)) for p in [ROOT / "recipes/quickstart.yaml", *sorted((ROOT / "recipes/reproduce").glob("*.yaml"))]]
    assert main(["validate", *recipes]) == 0  # together: the quickstart's run makes the others' base_model
    # alone, before the quickstart has run, the seed and ablation recipes (which start from its trained base) fail
    # with the command that makes it; with a model there they validate
    after_quickstart = ["recipes/reproduce/quickstart_seeds.yaml", "recipes/reproduce/ablation_refinement.yaml",
                        "recipes/reproduce/quickstart_chain_steps.yaml"]
    capsys.readouterr()
    if not (ROOT / "runs/reproduce/quickstart/train/base/model").exists():
        for r in after_quickstart:
            assert main(["validate", r]) == 2
            out = capsys.readouterr().out
            assert "run `toolace-mt reproduce recipes/quickstart.yaml` first" in out, out
    for r in after_quickstart:
        assert main(["validate", "--set", f"base_model={tmp_path}", r]) == 0, r


def test_ablation_rows_sort_by_swept_value_and_unfiltered_dataset(tmp_path):
    from toolace_mt.io import load_dataset_dialogues
    from toolace_mt.app.report import _ablation_sort_key
    from toolace_mt.app.reproduce import unfiltered_dataset
    from toolace_mt.runs import atomic_write_jsonl

    tags = ["refinement_steps=10/verify=on", "refinement_steps=3/verify=off", "refinement_steps=3/verify=on",
            "refinement_steps=0/verify=on"]
    assert sorted(tags, key=_ablation_sort_key) == [tags[3], tags[1], tags[2], tags[0]]
    # verification off = kept + rejected-but-renderable; a format-broken rejected dialogue is counted, not trained on
    from toolace_mt.io import save_dataset
    from toolace_mt.schema import Dialogue

    ok = {"id": "a", "tools": [], "messages": [{"role": "user", "content": "hi"},
                                               {"role": "assistant", "content": "hello"}], "meta": {}}
    save_dataset([Dialogue.model_validate(ok)], tmp_path / "dataset")
    rejected_ok = dict(ok, id="b", meta={"verification": {"passed": False, "reasons": ["replay: x"]}})
    broken = {"id": "c", "tools": [], "messages": [{"role": "assistant", "content": "no user"}], "meta": {}}
    atomic_write_jsonl(tmp_path / "rejected.jsonl", [rejected_ok, broken])
    out = unfiltered_dataset(tmp_path)
    assert [d.id for d in load_dataset_dialogues(out)] == ["a", "b"]
    assert json.loads((out / "unfiltered.json").read_text()) == {"kept": 1, "rejected_added": 1,
                                                                 "rejected_unrenderable": 1}


def test_ablation_rows_state_n_and_a_wilson_interval():
    from toolace_mt.app.report import _overall_ci

    s = {"overall": 0.25, "intervals": {"base": {"n": 4, "correct": 1}, "miss_param": {"n": 4, "correct": 1}}}
    # 2 of 8 tasks: Wilson 95% = [0.0715, 0.5907]
    assert _overall_ci(s) == "25.0 [7.1, 59.1]"
    assert _overall_ci({"overall": 0.5}) == "50.0"  # an old summary without intervals: the value alone
