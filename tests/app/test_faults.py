"""Run directories under faults, and secrets: the run-directory lock, a checkpoint cut by a kill, a full disk,
fsync before rename, and an API key echoed by a server that must never reach a file."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from toolace_mt.app.cli import main
from toolace_mt.runs import (RunLocked, atomic_write_json, last_complete_checkpoint, lock_run_dir, prepare_run_dir,
                             release_run_dir)

ROOT = Path(__file__).resolve().parents[2]


def _gen_recipe(tmp: Path, **extra) -> Path:
    text = (ROOT / "recipes/generate/debug.yaml").read_text().replace("n_dialogues: 12", "n_dialogues: 2")
    for k, v in extra.items():
        text += f"{k}: {json.dumps(v)}\n"
    p = tmp / "gen.yaml"
    p.write_text(text)
    return p


# ------------------------------------------------------------------------------------------------ lock
HOLD = """
import sys, time
from toolace_mt.runs import lock_run_dir
lock_run_dir(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_second_writer_is_refused_while_the_first_runs(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        rc = main(["generate", str(_gen_recipe(tmp_path)), "--out", str(out), "--set", "seed=7"])
        err = capsys.readouterr().err
        assert rc == 2 and "in use by another process" in err and "Traceback" not in err
        assert not (out / "recipe.yaml").exists()  # the refused run wrote nothing
        with pytest.raises(RunLocked):
            prepare_run_dir(out, {"a": 1})
    finally:
        holder.kill()  # kill -9: the lock goes with the process, no stale lock file to clean
        holder.wait()
    rc = main(["generate", str(_gen_recipe(tmp_path)), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    release_run_dir(out)


def test_two_concurrent_generate_processes_never_mix(tmp_path):
    """Two `toolace-mt generate` with different seeds into one --out: one runs, the other is refused (exit 2),
    and the dataset comes from exactly one seed."""
    recipe = _gen_recipe(tmp_path)
    out = tmp_path / "run"
    exe = Path(sys.executable).parent / "toolace-mt"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "toolace_mt.app.cli"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen(cmd + ["generate", str(recipe), "--out", str(out), "--set", f"seed={s}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for s in (1, 2)]
    res = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    codes = sorted(r[2] for r in res)
    assert codes[0] == 0 and all(c in (0, 2) for c in codes), res
    for _, err, rc in res:
        assert "Traceback" not in err
        if rc == 2:
            assert "in use by another process" in err or "different recipe" in err, err
    import yaml

    seed = yaml.safe_load((out / "recipe.yaml").read_text())["seed"]
    rows = [json.loads(x) for x in (out / "dataset" / "train.jsonl").read_text().splitlines() if x.strip()]
    rej = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines() if x.strip()]
    ids = {r["id"] for r in rows} | {r["id"] for r in rej}
    assert ids and all(f"-{seed}-" in i for i in ids), (seed, ids)


def test_lock_is_reentrant_in_one_process_and_survives_restart(tmp_path):
    out = tmp_path / "run"
    prepare_run_dir(out, {"a": 1})
    (out / "junk.txt").write_text("x")
    prepare_run_dir(out, {"a": 2}, restart=True)  # same process: no self-deadlock; restart clears but the lock
    assert not (out / "junk.txt").exists() and (out / ".lock").exists()
    lock_run_dir(out)
    release_run_dir(out)


# ------------------------------------------------------------------------------------------------ writes
def test_atomic_write_fsyncs_before_rename(tmp_path, monkeypatch):
    order = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (order.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (order.append("replace"), real_replace(a, b))[1])
    atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert order[:2] == ["fsync", "replace"] and json.loads((tmp_path / "x.json").read_text()) == {"a": 1}


def test_writers_refuse_nan_and_escape_lone_surrogates(tmp_path):
    from toolace_mt.runs import atomic_write_jsonl

    with pytest.raises(ValueError):
        atomic_write_jsonl(tmp_path / "a.jsonl", [{"x": float("nan")}])
    atomic_write_jsonl(tmp_path / "b.jsonl", [{"x": "a\ud800b"}])
    assert json.loads((tmp_path / "b.jsonl").read_text(encoding="utf-8")) == {"x": "a\ud800b"}  # lossless
    assert not list(tmp_path.glob(".*.tmp"))


def test_disk_full_is_a_clear_error_and_the_rerun_resumes(tmp_path, monkeypatch, capsys):
    import toolace_mt.runs as runs

    recipe = _gen_recipe(tmp_path)
    out = tmp_path / "run"
    real = runs.tempfile.mkstemp
    calls = {"n": 0}

    def full(*a, **kw):
        calls["n"] += 1
        if calls["n"] > 3:  # recipe.yaml and the first stage files go through, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **kw)

    monkeypatch.setattr(runs.tempfile, "mkstemp", full)
    rc = main(["generate", str(recipe), "--out", str(out)])
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert rc == 2 and "Traceback" not in err and len(errors) == 1 and "disk full while writing" in errors[0], err
    monkeypatch.setattr(runs.tempfile, "mkstemp", real)
    release_run_dir(out)
    assert main(["generate", str(recipe), "--out", str(out)]) == 0
    ref = tmp_path / "ref"
    assert main(["generate", str(recipe), "--out", str(ref)]) == 0
    assert (out / "dataset/train.jsonl").read_bytes() == (ref / "dataset/train.jsonl").read_bytes()


# ------------------------------------------------------------------------------------------------ checkpoints
def _ckpt(root: Path, step: int, complete: bool) -> Path:
    d = root / f"checkpoint-{step}"
    d.mkdir(parents=True)
    (d / "adapter_config.json").write_text("{}")
    if complete:
        (d / "adapter_model.safetensors").write_bytes(b"weights")
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return d


def test_last_complete_checkpoint_skips_partial_ones(tmp_path):
    root = tmp_path / "checkpoints"
    assert last_complete_checkpoint(root) is None
    _ckpt(root, 3, True)
    _ckpt(root, 6, False)  # killed mid-save: no trainer_state.json, no weights
    d9 = _ckpt(root, 9, True)
    (d9 / "trainer_state.json").write_text('{"global_st')  # torn
    d12 = _ckpt(root, 12, True)
    (d12 / "adapter_model.safetensors").write_bytes(b"")  # empty weights
    (root / "checkpoint-x").mkdir()
    assert last_complete_checkpoint(root).endswith("checkpoint-3")


@pytest.mark.slow
def test_train_resumes_after_a_kill_during_checkpoint_write(tmp_path):
    pytest.importorskip("torch")
    from banking_data import write_banking_dataset
    from toolace_mt.training.config import parse_recipe
    from toolace_mt.training.train import run_training

    data = write_banking_dataset(tmp_path / "data", n=8, turns=1)
    kw = dict(task="train", name="t", model_name_or_path="tiny", tiny_hidden_size=32, tiny_intermediate_size=64,
              datasets=[{"path": str(data)}], max_steps=4, per_device_train_batch_size=4, learning_rate=1e-3,
              logging_steps=1, save_strategy="steps", save_steps=2, disable_tqdm=True, seed=0, report_to="none")
    first = run_training(parse_recipe(dict(kw)), tmp_path / "run")
    assert first["steps"] == 4
    ck = tmp_path / "run" / "checkpoints" / "checkpoint-4"
    (ck / "trainer_state.json").unlink()  # the kill came while checkpoint-4 was being written
    for f in ck.glob("*.safetensors"):
        f.write_bytes(f.read_bytes()[:10])
    (tmp_path / "run" / "summary.json").unlink()
    again = run_training(parse_recipe(dict(kw)), tmp_path / "run")
    assert again["resumed_from"].endswith("checkpoint-2") and again["steps"] == 4


# ------------------------------------------------------------------------------------------------ secrets
KEY = "plainSECRETvalue-12345"  # no sk- prefix: only the registered value can catch it
OTHER = "sk-live-ABCDEFGHIJKLMNOP"


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"error": {"message": f"invalid key; you sent Authorization: {self.headers.get('Authorization')}"
                                                f" and {OTHER}", "type": "auth"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def echo_server():
    srv = HTTPServer(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_key_echoed_by_the_server_is_never_stored_and_the_run_fails(tmp_path, echo_server, monkeypatch, capsys):
    pytest.importorskip("openai")
    monkeypatch.setenv("TOOLACE_TEST_KEY", KEY)
    recipe = tmp_path / "gen.yaml"
    recipe.write_text("task: generate\nmethod: toolace_mt\nengine: llm\ndomains: [banking]\nn_dialogues: 2\n"
                      "batch_size: 2\nrefinement_steps: 1\nprogress: false\n"
                      f"llm: {{backend: openai, model: m, base_url: '{echo_server}', api_key_env: TOOLACE_TEST_KEY, "
                      "max_retries: 0, timeout_s: 10}\n")
    out = tmp_path / "run"
    t0 = time.time()
    rc = main(["generate", str(recipe), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "all 2 LLM requests failed" in err and "http_status" in err, err
    assert KEY not in err and OTHER not in err
    assert time.time() - t0 < 60
    seen = 0
    for f in out.rglob("*"):
        if f.is_file():
            text = f.read_text(encoding="utf-8", errors="replace")
            assert KEY not in text and OTHER not in text and "Bearer " + KEY[:6] not in text, f
            seen += "[REDACTED]" in text
    assert seen >= 2  # the error bodies are kept (redacted) in rejected.jsonl and the ledger
    rej = (out / "rejected.jsonl").read_text()
    assert "401" in rej and "[REDACTED]" in rej


def test_redact_patterns():
    from toolace_mt.llm.redact import redact, register_secret

    register_secret("my-own-token-XYZ")
    s = redact('Authorization: Bearer abc.def-123 key sk-proj-1234567890abc {"api_key": "zzzz9999"} my-own-token-XYZ')
    assert "abc.def-123" not in s and "sk-proj-1234567890abc" not in s and "zzzz9999" not in s
    assert "my-own-token-XYZ" not in s and s.count("[REDACTED]") == 4, s
    assert s.startswith("Authorization: Bearer [REDACTED]")


def test_rescore_counts_unreadable_trajectory_lines(tmp_path):
    from toolace_mt.evaluation.suites import TRAJECTORIES, load_trajectories, unreadable_trajectory_lines

    (tmp_path / TRAJECTORIES).write_text('{"task_id": "a", "trial": 0}\n{torn\n[1, 2]\n\n{"task_id": "b"}\n{"task_id": "c"')
    assert unreadable_trajectory_lines(tmp_path) == [2, 3, 6]
    assert sorted(t["task_id"] for t in load_trajectories(tmp_path)) == ["a", "b"]


def test_all_failed_reason_from_a_ledger():
    from toolace_mt.llm.ledger import UsageLedger, all_failed_reason
    from toolace_mt.llm.types import ChatRequest, ChatResponse, LLMFailure

    led = UsageLedger()
    req = ChatRequest(messages=[])
    for _ in range(3):
        led.record(req, ChatResponse())
        f = LLMFailure("http_status", "HTTP 401: Authorization: Bearer sk-abcdef123456")
        led.record_failure(req, f.kind, f.message)
    why = all_failed_reason(led.summary())
    assert why.startswith("all 3 LLM requests failed; e.g. http_status: HTTP 401") and "sk-abcdef" not in why
    led.record(req, ChatResponse())
    assert all_failed_reason(led.summary()) is None  # one answer came back: not "all failed"
