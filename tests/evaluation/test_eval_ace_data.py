"""Official ACEBench data without ../shared: resolution, the checksummed download (offline, against a local
HTTP server on 127.0.0.1), and a reproduce step that is recorded as not run when the data is missing."""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from acebench_data import DATA, HAVE, SKIP_REASON
from toolace_mt.app.cli import main
from toolace_mt.evaluation.ace import data as acedata
from toolace_mt.evaluation.ace.data import DataUnavailable, DownloadError, download, official_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1 (a random port); yields (root, base_url)."""
    root = tmp_path / "www"
    root.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep the server's access log out of the CLI's stderr
            pass

    handler = functools.partial(Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _fixture_files(root: Path) -> dict[str, str]:
    """A two-category tree in the official layout; returns {relative path: sha256}."""
    files = {}
    for rel, rows in {
        "data_all/data_en/data_normal_atom_bool.json": [{"id": "normal_atom_bool_0", "question": "user: hi",
                                                        "function": [{"name": "f", "parameters": {}}]}],
        "data_all/data_en/possible_answer/data_normal_atom_bool.json": [{"id": "normal_atom_bool_0",
                                                                        "ground_truth": {"f": {}}}],
    }.items():
        body = "".join(json.dumps(r) + "\n" for r in rows).encode()
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
        files[rel] = hashlib.sha256(body).hexdigest()
    return files


def _fixture_source(root: Path) -> dict[str, str]:
    """One source file in the repository layout (the download fetches the agent categories' source too)."""
    rel, body = "model_eval/checker.py", b"def agent_checker(model_output, possible_answer):\n    return {}\n"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(body)
    return {rel: hashlib.sha256(body).hexdigest()}


def test_download_checks_sha256_and_the_result_loads(server, tmp_path, monkeypatch):
    root, url = server
    monkeypatch.setattr(acedata, "FILES", _fixture_files(root))
    monkeypatch.setattr(acedata, "SOURCE_FILES", _fixture_source(root))
    dest = tmp_path / "dest"
    man = download(dest, base_url=url)
    assert man["fetched"] == 3 and man["source_files"] == 1 and man["commit"] == acedata.COMMIT
    assert official_dir(str(dest)) == dest
    assert acedata.source_missing(dest) is None and (dest / "model_eval" / "checker.py").is_file()
    again = download(dest, base_url=url)  # files with a matching checksum are kept
    assert again["fetched"] == 0 and again["already_present"] == 3
    (dest / "model_eval" / "checker.py").write_text("edited\n")
    assert "sha256 differs" in acedata.source_missing(dest)


def test_download_refuses_a_wrong_checksum_and_keeps_nothing(server, tmp_path, monkeypatch):
    root, url = server
    files = _fixture_files(root)
    first = next(iter(files))
    (root / first).write_text("tampered\n")
    monkeypatch.setattr(acedata, "FILES", files)
    monkeypatch.setattr(acedata, "SOURCE_FILES", _fixture_source(root))
    with pytest.raises(DownloadError, match="does not match"):
        download(tmp_path / "dest", base_url=url)
    assert not (tmp_path / "dest" / first).exists()


def test_cli_data_acebench_env_url_and_errors(server, tmp_path, monkeypatch, capsys):
    root, url = server
    monkeypatch.setattr(acedata, "FILES", _fixture_files(root))
    monkeypatch.setattr(acedata, "SOURCE_FILES", _fixture_source(root))
    monkeypatch.setenv(acedata.ENV_URL, url)
    assert main(["data", "acebench", "--dest", str(tmp_path / "d")]) == 0
    assert json.loads(capsys.readouterr().out)["fetched"] == 3
    monkeypatch.setenv(acedata.ENV_URL, url + "missing/")
    assert main(["data", "acebench", "--dest", str(tmp_path / "e"), "--force"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.skipif(not HAVE, reason=SKIP_REASON)
def test_pinned_checksums_match_the_official_files_served_locally(server, tmp_path, monkeypatch):
    root, url = server
    shutil.copytree(DATA / "data_all", root / "data_all")
    if acedata.source_missing(DATA) is None:  # a copy with the source: serve it too
        for rel in acedata.SOURCE_FILES:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(DATA / rel, root / rel)
    else:  # the data-only copy (the source checksums are checked by source_missing where a copy has it)
        monkeypatch.setattr(acedata, "SOURCE_FILES", {})
    man = download(tmp_path / "ace", base_url=url)
    assert man["fetched"] == len(acedata.FILES) + len(acedata.SOURCE_FILES) and len(acedata.FILES) == 34
    from toolace_mt.evaluation.ace.official import load_official

    assert len(load_official(official_dir(str(tmp_path / "ace")))) == 1023


def test_resolution_order_and_missing_data_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(acedata.ENV_DIR, raising=False)
    with pytest.raises(DataUnavailable, match="toolace-mt data acebench"):
        official_dir(None)
    monkeypatch.setenv(acedata.ENV_DIR, str(tmp_path / "nowhere"))
    with pytest.raises(DataUnavailable, match="TOOLACE_ACEBENCH_DIR"):
        official_dir(None)
    root = tmp_path / "www"
    root.mkdir()
    _fixture_files(root)
    monkeypatch.setenv(acedata.ENV_DIR, str(root))
    assert official_dir(None) == root
    with pytest.raises(DataUnavailable, match="recipe's tasks"):
        official_dir(str(tmp_path / "other"))


def test_no_product_recipe_or_module_points_at_shared():
    hits = [str(p.relative_to(REPO)) for base in ("recipes", "evaluation", "toolace_mt", "generation", "training")
            for p in (REPO / base).rglob("*") if p.suffix in (".py", ".yaml")
            and "../shared" in p.read_text(encoding="utf-8")]
    assert hits == []


def test_reproduce_step_without_data_is_not_run_and_reported(tmp_path, monkeypatch):
    from toolace_mt.app.report import collect, render_markdown
    from toolace_mt.app.reproduce import StepRef, run_step

    monkeypatch.setenv(acedata.ENV_DIR, str(tmp_path / "nowhere"))
    run = tmp_path / "run"
    ev = run / "evaluate" / "base" / "ace_official"
    res = run_step("evaluate", StepRef(recipe=str(REPO / "recipes/evaluate/ace_official_oracle.yaml")), ev, {})
    assert "no official ACEBench data" in res["not_run"]
    assert not (ev / "summary.json").exists()
    assert json.loads((ev / "not_run.json").read_text())["reason"] == res["not_run"]
    (run / "recipe.yaml").write_text(yaml.safe_dump({"name": "t", "arms": ["base"],
                                                     "evaluate": {"ace_official": "x.yaml"}}))
    data = collect(run)
    md = render_markdown(data, [])
    assert "ace_official: not run" in md and "toolace-mt data acebench" in md


def test_offline_download_is_one_error_line_with_the_ways_out(tmp_path, capsys):
    from toolace_mt.app.cli import main

    rc = main(["data", "acebench", "--dest", str(tmp_path / "d"), "--base-url", f"file://{tmp_path}/no-mirror"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: cannot fetch the ACEBench data") and "\n" not in err
    assert "--base-url" in err and "$TOOLACE_ACEBENCH_DIR" in err and "by hand under" in err
    assert "urlopen" not in err
