"""Every subcommand x bad inputs: exit 2, one `error:` line, no traceback, no run directory left behind.

Table-driven and in-process (`toolace_mt.app.cli.main`), in a temporary working directory so default run
directories (``runs/...``) would show up there. A few cases also go through the console script, to see what a
user sees. Each case lists its argv with ``{t}`` for the temporary directory.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toolace_mt.app.cli import main

ROOT = Path(__file__).resolve().parents[2]

GOOD_ROW = None  # filled by _fixture from a generated rules dialogue


def _fixture(t: Path) -> None:
    shutil.copy(ROOT / "recipes/generate/debug.yaml", t / "gen.yaml")
    (t / "afile").write_text("I am a file\n")
    (t / "bad.yaml").write_text("task: generate\nn_dialogues: [1, 2\n")
    (t / "notmap.yaml").write_text("- a\n- b\n")
    (t / "empty.jsonl").write_text("")
    (t / "badline.jsonl").write_text('{"id": "x", "messages": []}\n{not json\n')
    (t / "foreign.jsonl").write_text('{"x": 1}\n{"y": [2]}\n')
    (t / "binary.jsonl").write_bytes(b"\xff\xfe\x00garbage\n")
    train = (ROOT / "recipes/train/tiny_cpu.yaml").read_text().replace(
        "runs/generate/debug/dataset", str(t / "foreign.jsonl"))
    (t / "train.yaml").write_text(train)
    (t / "train_empty.yaml").write_text(train.replace(str(t / "foreign.jsonl"), str(t / "empty.jsonl")))
    (t / "tasks_bad.jsonl").write_text("{not json\n")
    (t / "tasks_empty.jsonl").write_text("")
    ev = "task: evaluate\nsuite: bfcl\nsource: own\ntasks: {tasks}\npolicy: {{kind: oracle}}\n"
    (t / "eval_bad.yaml").write_text(ev.format(tasks=t / "tasks_bad.jsonl"))
    (t / "eval_empty.yaml").write_text(ev.format(tasks=t / "tasks_empty.jsonl"))
    (t / "adir").mkdir()
    shard = t / "corrupt_shard"
    shard.mkdir()
    (shard / "recipe.yaml").write_text("n_dialogues: [1,\n")
    # issue 24: YAML 1.1 traps, paths of the wrong kind, a valid evaluate recipe for the executor flags
    (t / "octal.yaml").write_text((t / "gen.yaml").read_text() + "\nseed: 010\n")
    (t / "tiny_train.yaml").write_text(train)  # a dataset that exists: the errors below are the recipe's own
    (t / "eval_ok.yaml").write_text((ROOT / "recipes/evaluate/tau_own_null.yaml").read_text())
    (t / "eval_replay_dir.yaml").write_text(
        "task: evaluate\nsuite: tau\nsource: own\npolicy: {kind: replay, format: trajectories, path: %s}\n" % (t / "adir"))
    (t / "eval_model_file.yaml").write_text(
        "task: evaluate\nsuite: tau\nsource: own\npolicy: {kind: transformers, model: %s}\n" % (t / "afile"))
    evrun = t / "eval_run"
    evrun.mkdir()
    (evrun / "recipe.yaml").write_text("task: evaluate\nsuite: bfcl\nname: x\n")
    # issue 24 item 2: evaluation runs whose results compare must refuse, next to a good one
    summ = json.dumps({"suite": "bfcl", "source": "own", "policy": "p"})
    good = ['{"task_id": "a", "trial": 0, "correct": true}', '{"task_id": "b", "trial": 0, "correct": false}']
    runs = {"cmp_good": (good, summ), "cmp_str_verdict": (['{"task_id": "a", "correct": "false"}'], summ),
            "cmp_dup": (good + ['{"task_id": "a", "trial": 0, "correct": false}'], summ),
            "cmp_no_id": (['{"trial": 0, "correct": true}'], summ), "cmp_not_object": (["[1, 2]"], summ),
            "cmp_summary_list": (good, "[1, 2]"), "cmp_trial_str": (['{"task_id": "a", "trial": "0", "correct": true}'], summ),
            "cmp_deep": (["[" * 5000 + "]" * 5000], summ), "cmp_empty": ([], summ)}
    for name, (lines, summary) in runs.items():
        (t / name).mkdir()
        (t / name / "results.jsonl").write_text("".join(x + "\n" for x in lines))
        (t / name / "summary.json").write_text(summary)
    # issue 24 item 4: rows too deep or too large are refused; a dataset left with none is an input error
    (t / "deep.jsonl").write_text('{"id": "d", "messages": ' + "[" * 10000 + "]" * 10000 + "}\n")
    (t / "deep_inner.jsonl").write_text('{"id": "d", "messages": [], "meta": ' + json.dumps("[" * 200 + "]" * 200) + "}\n")
    (t / "listid.jsonl").write_text('{"id": ["list", "id"], "messages": []}\n')
    (t / "tasks_deep.jsonl").write_text("[" * 5000 + "]" * 5000 + "\n")
    (t / "tasks_nan.jsonl").write_text('{"id": "a", "category": "base", "question": [], "initial_config": {}, '
                                       '"involved_classes": [], "ground_truth": [], "x": NaN}\n')
    task = {"id": "a", "category": "base", "question": [], "initial_config": {}, "involved_classes": [],
            "ground_truth": []}
    (t / "tasks_dup.jsonl").write_text(json.dumps(task) + "\n" + json.dumps(task) + "\n")
    for k in ("deep", "nan", "dup"):
        (t / f"eval_{k}.yaml").write_text(ev.format(tasks=t / f"tasks_{k}.jsonl"))
    (t / "tau_deep.yaml").write_text("task: evaluate\nsuite: tau\nsource: own\ntasks: %s\npolicy: {kind: oracle}\n"
                                     % (t / "tasks_deep.jsonl"))
    (t / "train_deep.yaml").write_text(train.replace(str(t / "foreign.jsonl"), str(t / "deep.jsonl")))


# (id, argv, paths under {t} that must not exist afterwards)
CASES = [
    ("generate-out-file", "generate {t}/gen.yaml --out {t}/afile", []),
    ("doctor-out-file", "doctor --cpu --out {t}/afile", []),
    ("compare-missing-runs", "compare {t}/nope {t}/nope2", []),
    ("compare-unfinished-run", "compare {t}/eval_run {t}/eval_run", []),
    ("data-dest-file", "data acebench --dest {t}/afile --base-url http://127.0.0.1:9/x", []),
    ("doctor-gpu-without-gpu", "doctor --gpu --out {t}/d", ["d"]),
    ("generate-out-under-file", "generate {t}/gen.yaml --out {t}/afile/run", []),
    ("generate-shard-3/2", "generate {t}/gen.yaml --shard 3/2 --out {t}/r", ["r"]),
    ("generate-shard-a/b", "generate {t}/gen.yaml --shard a/b --out {t}/r", ["r"]),
    ("generate-shard-0/0", "generate {t}/gen.yaml --shard 0/0 --out {t}/r", ["r"]),
    ("generate-shard-in-recipe", "generate {t}/gen.yaml --set shard=5/2 --out {t}/r", ["r"]),
    ("generate-bad-type", "generate {t}/gen.yaml --set n_dialogues=many --out {t}/r", ["r"]),
    ("generate-bad-domain", "generate {t}/gen.yaml --set domains=[nope] --out {t}/r", ["r"]),
    ("generate-batch-0", "generate {t}/gen.yaml --set batch_size=0 --out {t}/r", ["r"]),
    ("generate-missing-recipe", "generate {t}/nope.yaml", ["runs"]),
    ("generate-bad-yaml", "generate {t}/bad.yaml", ["runs"]),
    ("generate-not-a-mapping", "generate {t}/notmap.yaml", ["runs"]),
    ("generate-wrong-kind", "generate {t}/eval_bad.yaml", ["runs"]),
    ("generate-unknown-key", "generate {t}/gen.yaml --set n_dialogs=3 --out {t}/r", ["r"]),
    ("verify-missing", "verify {t}/nope.jsonl --out {t}/v", ["v"]),
    ("verify-foreign-rows", "verify {t}/foreign.jsonl --out {t}/v", ["v"]),
    ("verify-binary", "verify {t}/binary.jsonl --out {t}/v", ["v"]),
    ("verify-empty", "verify {t}/empty.jsonl --out {t}/v", ["v"]),
    ("verify-out-file", "verify {t}/badline.jsonl --out {t}/afile", []),
    ("verify-bad-verifier", "verify {t}/badline.jsonl --out {t}/v --llm-backend scripted --verifiers nope", ["v"]),
    ("merge-missing-shard", "merge-shards {t}/nope --out {t}/m", ["m"]),
    ("merge-corrupt-recipe", "merge-shards {t}/corrupt_shard --out {t}/m", ["m"]),
    ("merge-out-file", "merge-shards {t}/corrupt_shard --out {t}/afile", []),
    ("train-max-steps-word", "train {t}/train.yaml --set max_steps=many --out {t}/tr", ["tr"]),
    ("train-batch-0", "train {t}/train.yaml --set per_device_train_batch_size=0 --out {t}/tr", ["tr"]),
    ("train-lora-r-neg", "train {t}/train.yaml --set lora_r=-4 --out {t}/tr", ["tr"]),
    ("train-max-steps-neg", "train {t}/train.yaml --set max_steps=-5 --out {t}/tr", ["tr"]),
    ("train-lr-0", "train {t}/train.yaml --set learning_rate=0 --out {t}/tr", ["tr"]),
    ("train-foreign-rows", "train {t}/train.yaml --out {t}/tr", ["tr"]),
    ("train-empty-dataset", "train {t}/train_empty.yaml --out {t}/tr", ["tr"]),
    ("train-out-file", "train {t}/train.yaml --out {t}/afile", []),
    ("evaluate-bad-task-line", "evaluate {t}/eval_bad.yaml --out {t}/e", ["e"]),
    ("evaluate-empty-tasks", "evaluate {t}/eval_empty.yaml --out {t}/e", ["e"]),
    ("evaluate-out-file", "evaluate {t}/eval_empty.yaml --out {t}/afile", []),
    ("evaluate-missing", "evaluate {t}/nope.yaml --out {t}/e", ["e"]),
    ("rescore-missing", "rescore {t}/nope", []),
    ("rescore-not-a-run", "rescore {t}/adir", []),
    ("crosscheck-limit-neg", "crosscheck --limit -1", []),
    ("crosscheck-limit-0", "crosscheck --limit 0", []),
    ("crosscheck-perturb", "crosscheck --perturb 2", []),
    ("crosscheck-out-dir", "crosscheck --out {t}/adir", []),
    ("bfcl-tasks-out-file", "bfcl-tasks --out {t}/afile", []),
    ("bfcl-tasks-bad-domain", "bfcl-tasks --out {t}/b --domains nope", ["b"]),
    ("bfcl-tasks-per-cat-0", "bfcl-tasks --out {t}/b --per-category 0", ["b"]),
    ("validate-missing", "validate {t}/nope.yaml", []),
    ("validate-bad-yaml", "validate {t}/bad.yaml", []),
    ("validate-bad-value", "validate {t}/gen.yaml --set steps=[3,1]", []),
    ("reproduce-missing", "reproduce {t}/nope.yaml", ["runs"]),
    ("reproduce-wrong-kind", "reproduce {t}/gen.yaml --out {t}/p", ["p"]),
    ("reproduce-out-file", "reproduce {t}/gen.yaml --out {t}/afile", []),
    ("report-missing", "report {t}/nope", []),
    ("report-evaluate-run", "report {t}/eval_run", []),
    ("envs-bad-domain", "envs --domain nope", []),
    ("bench-rules-n-0", "bench generation-rules --n 0", []),
    ("bench-rules-bad-domain", "bench generation-rules --domains nope --n 2", []),
    ("bench-evaluation-n-0", "bench evaluation --n 0", []),
    ("bench-generation-n-0", "bench generation --n 0 --out {t}/g", ["g"]),
    ("bench-training-repeats-0", "bench training {t}/train.yaml --repeats 0", []),
    ("bench-copy-missing-model", "bench copy {t}/nope --data {t}/foreign.jsonl", []),
    ("bench-copy-model-is-a-file", "bench copy {t}/afile --data {t}/foreign.jsonl", []),
    ("bench-copy-model-no-config", "bench copy {t}/adir --data {t}/foreign.jsonl", []),
    ("train-copy-warmup-bad-span", "train {t}/tiny_train.yaml --set copy_warmup_span=[5,2] --out {t}/tr", ["tr"]),
    # issue 24 item 7: YAML 1.1 traps and paths of the wrong kind, refused by validate and before any run
    ("validate-octal-seed", "validate {t}/octal.yaml", []),
    ("generate-octal-seed", "generate {t}/octal.yaml --out {t}/r", ["r"]),
    ("generate-octal-seed-set", "generate {t}/gen.yaml --set seed=010 --out {t}/r", ["r"]),
    ("train-report-to-off", "train {t}/tiny_train.yaml --set report_to=off --out {t}/tr", ["tr"]),
    ("validate-report-to-off", "validate {t}/tiny_train.yaml --set report_to=off", []),
    ("train-max-steps-quoted", 'train {t}/tiny_train.yaml --set max_steps="2" --out {t}/tr', ["tr"]),
    ("train-model-is-a-file", "train {t}/tiny_train.yaml --set model_name_or_path={t}/afile --out {t}/tr", ["tr"]),
    ("validate-model-is-a-file", "validate {t}/tiny_train.yaml --set model_name_or_path={t}/afile", []),
    ("evaluate-replay-dir-without-file", "evaluate {t}/eval_replay_dir.yaml --out {t}/e", ["e"]),
    ("validate-replay-dir-without-file", "validate {t}/eval_replay_dir.yaml", []),
    ("evaluate-policy-model-is-a-file", "evaluate {t}/eval_model_file.yaml --out {t}/e", ["e"]),
    ("evaluate-policy-name-off", "evaluate {t}/eval_ok.yaml --set policy.name=off --out {t}/e", ["e"]),
    # issue 24 item 3: --shards checked the same everywhere; an unreachable Ray address refused in bounded time
    ("evaluate-ray-shards-0", "evaluate {t}/eval_ok.yaml --executor ray --shards 0 --out {t}/e", ["e"]),
    ("generate-ray-shards-0", "generate {t}/gen.yaml --executor ray --shards 0 --out {t}/r", ["r"]),
    ("evaluate-shards-0-local", "evaluate {t}/eval_ok.yaml --shards 0 --out {t}/e", ["e"]),
    ("generate-ray-unreachable", "generate {t}/gen.yaml --executor ray --address 127.0.0.1:1 --out {t}/r", ["r"]),
    ("evaluate-ray-unreachable", "evaluate {t}/eval_ok.yaml --executor ray --address 127.0.0.1:1 --out {t}/e",
     ["e"]),
    ("generate-ray-bad-address", "generate {t}/gen.yaml --executor ray --address nonsense --out {t}/r", ["r"]),
    ("reproduce-address-without-ray", "reproduce {t}/gen.yaml --address 127.0.0.1:1 --out {t}/p", ["p"]),
    # issue 24 item 8: a forced backend that cannot import is refused up front, as --gpu is
    ("doctor-cpu-backend-vllm-missing", "doctor --cpu --backend vllm --out {t}/d", ["d"]),
    # issue 24 item 2: compare validates every line of both runs
    ("compare-string-verdict", "compare {t}/cmp_good {t}/cmp_str_verdict", []),
    ("compare-duplicate-line", "compare {t}/cmp_good {t}/cmp_dup", []),
    ("compare-line-without-task-id", "compare {t}/cmp_no_id {t}/cmp_good", []),
    ("compare-non-object-line", "compare {t}/cmp_good {t}/cmp_not_object", []),
    ("compare-summary-list", "compare {t}/cmp_summary_list {t}/cmp_good", []),
    ("compare-trial-string", "compare {t}/cmp_good {t}/cmp_trial_str", []),
    ("compare-deep-line", "compare {t}/cmp_good {t}/cmp_deep", []),
    ("compare-empty-results", "compare {t}/cmp_good {t}/cmp_empty", []),
    # issue 24 item 4: one dataset reader with depth, size and id rules for verify and train
    ("verify-deep-row", "verify {t}/deep.jsonl --out {t}/v", ["v"]),
    ("verify-deep-string-column", "verify {t}/deep_inner.jsonl --out {t}/v", ["v"]),
    ("verify-list-id", "verify {t}/listid.jsonl --out {t}/v", ["v"]),
    ("train-deep-row", "train {t}/train_deep.yaml --out {t}/tr", ["tr"]),
    ("evaluate-deep-task-line", "evaluate {t}/eval_deep.yaml --out {t}/e", ["e"]),
    ("evaluate-nan-task-line", "evaluate {t}/eval_nan.yaml --out {t}/e", ["e"]),
    ("evaluate-duplicate-task-id", "evaluate {t}/eval_dup.yaml --out {t}/e", ["e"]),
    ("evaluate-tau-deep-task-line", "evaluate {t}/tau_deep.yaml --out {t}/e", ["e"]),
]


def _no_ray_no_vllm(monkeypatch) -> None:
    """A case that is no longer refused must fail here fast, never start Ray (or wait on an address) or vLLM."""
    # chosen: ray.init raises instead of starting a cluster; vLLM reads as missing even where it is installed,
    # so the doctor cases test the refusal on every machine
    import toolace_mt.app.smoke as smoke

    monkeypatch.setattr(smoke, "vllm_importable", lambda: False)
    try:
        import ray
    except ImportError:
        return
    monkeypatch.setattr(ray, "init", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ray.init was called")))


def run_case(argv: str, t: Path, capsys) -> tuple[int | None, str, str]:
    """(exit code, stdout, stderr); an escaping exception is re-raised (that is a crash)."""
    args = argv.format(t=t).split()
    try:
        rc = main(args)
    except SystemExit as e:  # argparse usage errors
        rc = e.code
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line_and_exit_2(case, tmp_path, monkeypatch, capsys):
    _id, argv, must_not_exist = case
    _fixture(tmp_path)
    _no_ray_no_vllm(monkeypatch)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, out, err = run_case(argv, tmp_path, capsys)
    assert rc == 2, (rc, out[-500:], err[-2000:])
    assert "Traceback" not in err + out
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and len(errors[0]) > len("error: ") + 5, err
    for name in must_not_exist:
        assert not (tmp_path / name).exists(), f"{name} was created by a command that could not run"
    after = sorted(p.name for p in tmp_path.iterdir())
    assert after == before, "the command left files behind"


def test_matrix_covers_every_subcommand():
    import argparse

    from toolace_mt.app.cli import build_parser

    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    commands = set(sub.choices) - {"bench"}
    covered = {c[1].split()[0] for c in CASES}
    assert commands <= covered, commands - covered
    bench = next(a for a in sub.choices["bench"]._actions if isinstance(a, argparse._SubParsersAction))
    covered_bench = {c[1].split()[1] for c in CASES if c[1].startswith("bench ")}
    assert set(bench.choices) <= covered_bench, set(bench.choices) - covered_bench


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_out(tmp_path, monkeypatch, capsys):
    _fixture(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, _, err = run_case("generate {t}/gen.yaml --out {t}/ro/run", tmp_path, capsys)
    finally:
        ro.chmod(0o755)
    assert rc == 2 and "not writable" in err and not (ro / "run").exists()


def test_console_script_shows_no_traceback(tmp_path):
    """What a user sees: the installed entry point, a bad shard spec and a file as --out."""
    _fixture(tmp_path)
    exe = Path(sys.executable).parent / "toolace-mt"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "toolace_mt.app.cli"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for argv in ("generate {t}/gen.yaml --shard 3/2 --out {t}/r", "bfcl-tasks --out {t}/afile"):
        p = subprocess.run(cmd + argv.format(t=tmp_path).split(), capture_output=True, text=True, timeout=300,
                           env=env, cwd=tmp_path)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
        assert p.stderr.strip().startswith("error:") and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "r").exists()


def test_a_corrected_rerun_after_a_refused_shard_runs(tmp_path, monkeypatch, capsys):
    """A refused --shard must not leave a run dir that then refuses the corrected command."""
    _fixture(tmp_path)
    (tmp_path / "gen.yaml").write_text((tmp_path / "gen.yaml").read_text().replace("n_dialogues: 12", "n_dialogues: 2"))
    rc, _, _ = run_case("generate {t}/gen.yaml --shard 3/2 --out {t}/r", tmp_path, capsys)
    assert rc == 2
    rc, out, err = run_case("generate {t}/gen.yaml --shard 0/2 --out {t}/r", tmp_path, capsys)
    assert rc == 0, err[-2000:]
    assert json.loads(out)["chunks"] >= 1


def test_executor_flags_are_checked_the_same_everywhere(tmp_path, monkeypatch, capsys):
    """`--shards 0` is one refusal for generate and evaluate (evaluate ran 2 shards); an unreachable Ray address
    is refused within the connect timeout, naming the address, before anything is created (issue 24 item 3)."""
    import time

    from toolace_mt.executor import CONNECT_TIMEOUT_S

    _fixture(tmp_path)
    _no_ray_no_vllm(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    for cmd in ("generate {t}/gen.yaml", "evaluate {t}/eval_ok.yaml"):
        rc, _, err = run_case(cmd + " --executor ray --shards 0 --out {t}/o", tmp_path, capsys)
        assert rc == 2 and err.strip() == "error: --shards must be >= 1, got 0", err
        try:
            import ray  # noqa: F401
        except ImportError:
            continue
        t0 = time.monotonic()
        rc, _, err = run_case(cmd + " --executor ray --address 127.0.0.1:1 --out {t}/o", tmp_path, capsys)
        assert rc == 2 and err.startswith("error: --address 127.0.0.1:1: no Ray head answers there"), err
        assert time.monotonic() - t0 < CONNECT_TIMEOUT_S + 5
    assert not (tmp_path / "o").exists()


def test_doctor_backend_vllm_without_vllm_names_the_install(tmp_path, monkeypatch, capsys):
    _no_ray_no_vllm(monkeypatch)
    rc, _, err = run_case("doctor --cpu --backend vllm --out {t}/d", tmp_path, capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: doctor --backend vllm needs vLLM") and "pip install 'toolace-mt[vllm]'" in err
    assert not (tmp_path / "d").exists()
