"""Run directories: kill-and-resume gives the uninterrupted output, shards merge into the single run, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolace_mt.app.cli import main
from toolace_mt.config import RecipeError
from toolace_mt.generation.config import parse_recipe
from toolace_mt.generation.run import merge_shards, run_generation
from toolace_mt.runs import RecipeChanged

RAW = {"name": "runtest", "domains": ["banking"], "n_dialogues": 10, "seed": 5, "batch_size": 3,
       "refinement_steps": 2, "progress": False}


def cfg(**kw):
    return parse_recipe(dict(RAW, **kw))


def read(p: Path) -> str:
    return p.read_text()


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    summary = run_generation(cfg(), out)
    return out, summary


def test_run_dir_contents(full):
    out, summary = full
    assert summary["counts"]["generated"] == 10
    rows = [json.loads(x) for x in read(out / "dataset" / "train.jsonl").splitlines()]
    assert len(rows) == summary["counts"]["kept"] > 0
    assert isinstance(rows[0]["tools"], str) and isinstance(rows[0]["messages"], list)
    assert (out / "dataset" / "train.parquet").exists()
    card = json.loads(read(out / "card.json"))
    assert card["counts"]["generated"] == 10 and "injections" in card and "rejection_reasons" in card
    assert "Dataset card" in read(out / "card.md")
    assert sorted(p.name for p in (out / "stages" / "verify").iterdir()) == [f"chunk-0000{i}.jsonl" for i in range(4)]
    from datasets import load_dataset

    ds = load_dataset("json", data_files=str(out / "dataset" / "train.jsonl"), split="train")
    assert len(ds) == summary["counts"]["kept"]


def test_kill_and_resume_is_identical(full, tmp_path):
    ref, _ = full
    out = tmp_path / "killed"

    class Killed(Exception):
        pass

    seen = []

    def hook(stage, chunk):
        seen.append((stage, chunk))
        if (stage, chunk) == ("refine", 2):
            raise Killed()

    with pytest.raises(Killed):
        run_generation(cfg(), out, hook=hook)
    assert not (out / "dataset").exists() and (out / "stages" / "skeleton" / "chunk-00002.jsonl").exists()
    run_generation(cfg(), out)
    for f in ("dataset/train.jsonl", "card.json", "rejected.jsonl"):
        assert read(out / f) == read(ref / f), f
    # a second resume has nothing to do and changes nothing
    calls = []
    run_generation(cfg(), out, hook=lambda s, c: calls.append((s, c)))
    assert calls == [] and read(out / "dataset/train.jsonl") == read(ref / "dataset/train.jsonl")


def test_changed_recipe_refused_unless_restart(full, tmp_path):
    out = tmp_path / "r"
    run_generation(cfg(n_dialogues=3), out)
    with pytest.raises(RecipeChanged):
        run_generation(cfg(n_dialogues=4), out)
    s = run_generation(cfg(n_dialogues=4), out, restart=True)
    assert s["counts"]["generated"] == 4


def test_shards_merge_to_single_run(full, tmp_path):
    ref, _ = full
    dirs = []
    for i in range(3):
        d = tmp_path / f"s{i}"
        run_generation(cfg(), d, shard=f"{i}/3")
        dirs.append(d)
    merged = tmp_path / "merged"
    merge_shards(dirs, merged)
    for f in ("dataset/train.jsonl", "card.json"):
        assert read(merged / f) == read(ref / f), f
    with pytest.raises(RecipeError):
        merge_shards(dirs[:2], tmp_path / "incomplete")


def test_method_fails_clearly_when_its_module_is_missing(monkeypatch):
    from toolace_mt.generation import config as gconf

    monkeypatch.setattr(gconf, "METHODS", type(gconf.METHODS)("generation method"))
    gconf.METHODS.register("mas", "toolace_mt.generation.not_a_module")
    with pytest.raises(RecipeError, match="generation method 'mas': module toolace_mt.generation.not_a_module is not installed"):
        parse_recipe(dict(RAW, method="mas")).check()


def test_bad_recipe_values():
    for bad in ({"subtasks": [3, 2]}, {"injection_types": ["nope"]}, {"engine": "gpt"}, {"shard": "3/2"},
                {"n_dialogue": 3}, {"tool_pool": "x.json"}):
        with pytest.raises(RecipeError):
            parse_recipe(dict(RAW, **bad))


def test_cli_generate_verify_and_bench(tmp_path, capsys):
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "generate" / "debug.yaml"
    out = tmp_path / "cli"
    assert main(["generate", str(recipe), "--out", str(out), "--set", "n_dialogues=4", "--set", "progress=false"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"]["generated"] == 4
    # re-verify the exported dataset after tampering with one row: it comes back annotated and rejected
    rows = [json.loads(x) for x in read(out / "dataset" / "train.jsonl").splitlines()]
    msgs = rows[0]["messages"]
    call = next(m for m in msgs if m.get("tool_calls"))
    call["tool_calls"][0]["function"]["name"] = "no_such_tool"
    data = tmp_path / "tampered.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["verify", str(data), "--out", str(tmp_path / "v")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["counts"]["rejected"] == 1 and "tools_available" in res["rejection_reasons"]
    back = [json.loads(x) for x in read(tmp_path / "v" / "train.jsonl").splitlines()]
    assert len(back) == len(rows) and all("verification" in json.loads(r["meta"]) for r in back)
    assert main(["bench", "generation-rules", "--n", "8", "--domains", "banking"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["dialogues"] == 8 and bench["kept_per_s"] > 0 and "projected_s_for_8000_kept" in bench


def test_id_style_is_a_recipe_key_recorded_in_the_run(tmp_path):
    """Short ids come from the generate recipe itself (recorded in the run's recipe.yaml), not from ambient state."""
    import os
    import re

    import yaml

    assert os.environ.get("TOOLACE_MT_ID_STYLE") is None
    short = run_generation(cfg(n_dialogues=3, id_style="short"), tmp_path / "short")
    long_ = run_generation(cfg(n_dialogues=3), tmp_path / "long")
    assert short["counts"]["kept"] > 0 and long_["counts"]["kept"] > 0
    assert yaml.safe_load((tmp_path / "short" / "recipe.yaml").read_text())["id_style"] == "short"
    assert os.environ.get("TOOLACE_MT_ID_STYLE") is None  # the style does not leak past the run

    def account_ids(run):
        text = (tmp_path / run / "dataset" / "train.jsonl").read_text()
        return set(re.findall(r'\\"account_id\\": \\"ACC(\d+)\\"', text))  # ids the environment returned

    assert account_ids("short") and all(len(d) == 2 for d in account_ids("short"))
    assert account_ids("long") and all(len(d) > 2 for d in account_ids("long"))
    with pytest.raises(RecipeError, match="id_style"):
        parse_recipe(dict(RAW, id_style="tiny"))
