"""The `toolace-mt` entry point and its core subcommand `envs`."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toolace_mt.app.cli import main
from toolace_mt.schema import check_schema


def _check_listing(data):
    assert data["n_domains"] >= 8 and data["n_tools"] >= 60
    assert data["n_domains"] == len(data["domains"])
    assert data["n_tools"] == sum(len(d["tools"]) for d in data["domains"])
    for d in data["domains"]:
        assert d["description"]
        for t in d["tools"]:
            assert t["schema"]["function"]["name"] == t["name"]
            check_schema(t["schema"]["function"]["parameters"])
            assert isinstance(t["writes"], bool)


def test_envs_json(capsys):
    assert main(["envs", "--json"]) == 0
    _check_listing(json.loads(capsys.readouterr().out))


def test_envs_json_one_domain(capsys):
    assert main(["envs", "--json", "--domain", "banking"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["domain"] for d in data["domains"]] == ["banking"]
    assert "transfer_between_accounts" in {t["name"] for t in data["domains"][0]["tools"]}


def test_envs_table(capsys):
    assert main(["envs"]) == 0  # captured, so not a terminal: one tool per line, tab-separated, names whole
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert all(len(r) == 4 for r in rows) and ["banking", "transfer_between_accounts"] in [r[:2] for r in rows]
    assert {r[0] for r in rows} >= {"file_system", "banking"}


def test_help_and_no_command(capsys):
    assert main([]) == 0
    assert "envs" in capsys.readouterr().out


@pytest.mark.slow
def test_console_script_subprocess():
    exe = Path(sys.executable).parent / "toolace-mt"
    cmd = [str(exe)] if exe.exists() else ([shutil.which("toolace-mt")] if shutil.which("toolace-mt")
                                           else [sys.executable, "-m", "toolace_mt.app.cli"])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(cmd + ["envs", "--json"], capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    _check_listing(json.loads(p.stdout))
