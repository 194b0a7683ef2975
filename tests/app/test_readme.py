"""The README's commands connect (issue 25): the "First steps" block runs in the order written from a fresh
clone's files (recipes/ and configs/ only, no runs/), each command reading what the one before it wrote; and the
install lines keep their shape (the PyTorch CPU wheel index, the pinned constraints) in the README and in CI."""
from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from toolace_mt.app.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def first_steps() -> list[list[str]]:
    block = next(b for b in bash_blocks(README.split("**First steps**", 1)[1]))
    cmds = []
    for line in block.splitlines():
        line = line.split("  #", 1)[0].strip()
        if line and not line.startswith(("#", "export ")):
            cmds.append(shlex.split(line))
    return cmds


def test_first_steps_block_is_what_the_test_runs():
    cmds = first_steps()
    assert all(c[0] == "toolace-mt" for c in cmds)
    names = [c[1] for c in cmds]
    # the block generates before it trains, and evaluates both runs before comparing them
    assert names.index("generate") < names.index("train") < names.index("compare")
    assert names.count("evaluate") == 2


def test_install_lines_take_the_cpu_wheel_and_the_pinned_versions():
    blocks = [b for b in bash_blocks(README) if "pip install" in b]
    assert len(blocks) == 2  # the two commands: main job, tests
    for b in blocks:
        assert "pip install torch==2.13.0 --extra-index-url https://download.pytorch.org/whl/cpu" in b
        assert "-c constraints.txt" in b
    ci = (ROOT / ".ci/run").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in ci and "-c constraints.txt" in ci
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert {"torch", "transformers", "trl", "peft", "datasets", "accelerate"} <= set(pins)


@pytest.mark.slow
def test_first_steps_run_in_order_from_a_fresh_clone(tmp_path, monkeypatch, capsys):
    for d in ("recipes", "configs"):
        shutil.copytree(ROOT / d, tmp_path / d)
    monkeypatch.chdir(tmp_path)
    for cmd in first_steps():
        argv = cmd[1:]
        if argv[0] == "train":
            argv += ["--set", "max_steps=2", "--set", "save_steps=1"]  # chosen: steps do not change what connects
        rc = main(argv)
        out = capsys.readouterr()
        assert rc == 0, f"{' '.join(cmd)} exited {rc}:\n{out.out[-2000:]}\n{out.err[-2000:]}"
    assert (tmp_path / "runs/train/tiny_cpu/summary.json").is_file()
    assert "B − A" in out.out  # the last command, compare, printed its table
