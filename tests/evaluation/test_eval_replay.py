"""Externally produced outputs scored through `toolace-mt evaluate` with ``policy: {kind: replay}``: BFCL result
files (prompting text, re-scored independently by bfcl-eval's decoder + checker), OpenAI-format trajectories,
ACEBench result files; the BFCL export of a run re-scored by the official checker gives the run's own verdicts."""
from __future__ import annotations

import importlib.util
import json
import random

import pytest
from replay_helpers import verdicts, write_recipe

from toolace_mt.app.cli import main
from toolace_mt.evaluation.run import SUMMARY

needs_bfcl = pytest.mark.skipif(importlib.util.find_spec("bfcl_eval") is None,
                                reason="bfcl-eval not installed (pip install --no-deps bfcl-eval==2026.3.23)")
PER_CAT = 6  # chosen: 24 entries keep the test in seconds and still hold both verdicts




@pytest.fixture(scope="module")
def external_bfcl(tmp_path_factory):
    """A BFCL result folder as a prompting model's run would leave it: oracle answers with text edits."""
    from toolace_mt.evaluation.bfcl import CATEGORIES, official_category
    from toolace_mt.evaluation.bfcl.harness import play
    from toolace_mt.evaluation.bfcl.official import load_tasks
    from toolace_mt.evaluation.bfcl.textedits import edit, owners_of
    from toolace_mt.evaluation.policies import make_policy

    root = tmp_path_factory.mktemp("ext") / "result"
    tasks = [t for c in CATEGORIES for t in [x for x in load_tasks([c])][:PER_CAT]]
    trajs = play(make_policy({"kind": "oracle"}), tasks, progress=False)
    rng = random.Random(3)
    for t, tr in zip(tasks, trajs):
        new = edit(tr, rng, {"owners": owners_of(t)}) if rng.random() < 0.6 else edit(tr, rng, {}, n_edits=0)
        if rng.random() < 0.1 and len(new["turns"]) > 1:
            new["turns"] = new["turns"][:-1]  # the model was force-terminated
        f = root / "my-model-7b" / f"BFCL_v3_{official_category(t['category'])}_result.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        with open(f, "a") as fh:
            fh.write(json.dumps({"id": t["id"], "result": [[st["raw"] for st in turn] for turn in new["turns"]]}) + "\n")
    return root, {t["id"]: t for t in tasks}


@needs_bfcl
def test_bfcl_result_files_replayed_and_scored_like_the_official_evaluation(tmp_path, external_bfcl, capsys):
    from toolace_mt.evaluation.bfcl.export import official_rescore

    root, tasks = external_bfcl
    rec = write_recipe(tmp_path, "rep", {"suite": "bfcl", "source": "official", "limit": PER_CAT,
                                     "policy": {"kind": "replay", "path": str(root), "format": "bfcl_result"}})
    run = tmp_path / "run"
    assert main(["evaluate", rec, "--out", str(run)]) == 0
    summ = json.loads((run / SUMMARY).read_text())
    assert summ["policy"] == "my-model-7b" and "my-model-7b" in (run / "report.md").read_text()
    assert summ["decoding"] == "official" and summ["call_format"] == "pythonic" and "bfcl-eval" in summ["decoder"]
    ours = verdicts(run)
    theirs = official_rescore(sorted(root.rglob("*.json")), tasks)
    assert len(ours) == 4 * PER_CAT and ours == theirs
    assert 0 < sum(ours.values()) < len(ours)
    # the run's own export, re-scored by the official decoder + checker, gives the run's verdicts
    exported = [run / f for f in summ["exported"]["files"]]
    assert all(p.parent.name == "my-model-7b" and p.name.startswith("BFCL_v4_multi_turn_") for p in exported)
    assert official_rescore(exported, tasks) == ours
    # crosscheck's raw-text mode on the run: the same text through both decoders + checkers
    from toolace_mt.evaluation.bfcl.crosscheck import crosscheck

    rep = crosscheck(run_dir=str(run), raw=True, progress=False)
    assert rep["n"] == len(ours) and rep["disagreements"] == 0 and rep["agree_port"] == rep["n"]


@needs_bfcl
def test_oracle_run_export_rescored_by_the_official_checker(tmp_path):
    from toolace_mt.evaluation.bfcl.export import official_rescore
    from toolace_mt.evaluation.bfcl.official import load_tasks

    rec = write_recipe(tmp_path, "orc", {"suite": "bfcl", "source": "official", "limit": 3, "policy": {"kind": "oracle"}})
    run = tmp_path / "run"
    assert main(["evaluate", rec, "--out", str(run)]) == 0
    summ = json.loads((run / SUMMARY).read_text())
    tasks = {t["id"]: t for t in load_tasks()}
    got = official_rescore([run / f for f in summ["exported"]["files"]], tasks)
    assert got == verdicts(run) and all(got.values()) and len(got) == 12


@needs_bfcl
def test_openai_format_trajectories_replay(tmp_path):
    from toolace_mt.evaluation.bfcl.harness import play
    from toolace_mt.evaluation.bfcl.official import load_tasks
    from toolace_mt.evaluation.policies import make_policy

    tasks = load_tasks(["base"])[:4]
    trajs = play(make_policy({"kind": "oracle"}), tasks, progress=False)
    lines = []
    for t, tr in zip(tasks, trajs):
        msgs = []
        for turn in tr["turns"]:
            msgs.append({"role": "user", "content": "..."})
            for st in turn:
                msgs.append({"role": "assistant", "content": st["content"],
                             "tool_calls": [{"id": "x", "type": "function", "function": {
                                 "name": c["name"], "arguments": json.dumps(c["arguments"])}} for c in st["tool_calls"]]})
        lines.append(json.dumps({"id": t["id"], "messages": msgs}))
    src = tmp_path / "gpt-x" / "conversations.jsonl"
    src.parent.mkdir()
    src.write_text("\n".join(lines) + "\n")
    rec = write_recipe(tmp_path, "oai", {"suite": "bfcl", "source": "official", "categories": ["base"], "limit": 4,
                                     "policy": {"kind": "replay", "path": str(src), "format": "trajectories"}})
    run = tmp_path / "run"
    assert main(["evaluate", rec, "--out", str(run)]) == 0
    summ = json.loads((run / SUMMARY).read_text())
    assert summ["policy"] == "gpt-x" and summ["overall"] == 1.0 and summ["call_format"] == "structured"


def test_ace_result_files_replayed_on_own_items(tmp_path):
    from toolace_mt.evaluation.ace.own_tasks import build_normal_special
    from toolace_mt.evaluation.ace.suite import item_gold
    from toolace_mt.pycalls import format_python_calls

    root = tmp_path / "result_en" / "ace-model"
    root.mkdir(parents=True)
    tasks = [t for t in build_normal_special() if t["category"] in ("normal_atom_bool", "special_irrelevant")]
    by_cat = {}
    for i, t in enumerate(tasks):
        g = item_gold(t)
        text = format_python_calls(g["tool_calls"]) if "tool_calls" in g else g["content"]
        if i % 2:
            text = f"```python\n{text}\n```"  # single-turn: bracket extraction passes it
        by_cat.setdefault(t["category"], []).append({"id": t["id"], "result": text})
    for cat, rows in by_cat.items():
        (root / f"data_{cat}_result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rec = write_recipe(tmp_path, "ace", {"suite": "ace", "source": "own",
                                     "categories": ["normal_atom_bool", "special_irrelevant"],
                                     "policy": {"kind": "replay", "path": str(root.parent), "format": "ace_result"}})
    run = tmp_path / "run"
    assert main(["evaluate", rec, "--out", str(run)]) == 0
    summ = json.loads((run / SUMMARY).read_text())
    assert summ["policy"] == "ace-model" and summ["n_tasks"] == len(tasks)
    assert summ["categories"]["normal_atom_bool"] == 1.0
    assert summ["compat_acebench"]["categories"]["normal_atom_bool"] == 1.0


def test_replay_recipe_errors_are_one_line(tmp_path, capsys):
    rec = write_recipe(tmp_path, "bad", {"suite": "bfcl", "source": "official",
                                     "policy": {"kind": "replay", "format": "bfcl_result"}})
    assert main(["evaluate", rec, "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
