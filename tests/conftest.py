"""Shared test fixtures. Keep heavy ones session-scoped (built once per test run)."""
from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True)
def _torch_one_thread():
    """Keep torch on one thread once some test has imported it (importing torch here would cost every run)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Qwen2 chat model + locally trained tokenizer (tests/tiny_model.py), built once."""
    from tiny_model import build

    return build(tmp_path_factory.mktemp("tiny_model"))
