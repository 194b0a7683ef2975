"""Fixtures of the app tests."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def debug_reproduce(tmp_path_factory):
    """One full in-process reproduce of recipes/reproduce/debug.yaml (a minute or two on CPU) in ``<tmp>/run``
    with its report in ``<tmp>/results``, shared by every reproduce test. A test that removes part of the run
    must copy it first or leave it complete again."""
    from toolace_mt.app.cli import main

    tmp = tmp_path_factory.mktemp("reproduce")
    cwd = os.getcwd()
    os.chdir(ROOT)  # recipes reference each other relative to the repository root
    try:
        rc = main(["reproduce", "recipes/reproduce/debug.yaml", "--out", str(tmp / "run"),
                   "--results", str(tmp / "results")])
    finally:
        os.chdir(cwd)
    assert rc == 0
    return tmp
