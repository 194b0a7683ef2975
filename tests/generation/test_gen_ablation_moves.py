"""Ablations that can move: on fair offline data the verification and refinement settings change the dataset,
and the card carries the figures that explain how (pass rate, rejections, judge acceptance, turns changed)."""
from __future__ import annotations

import json

from toolace_mt.generation import pipeline
from toolace_mt.generation.card import build_card, card_markdown
from toolace_mt.generation.config import parse_recipe
from toolace_mt.llm.client import make_client


def _run(**kw):
    raw = {"name": "abl", "engine": "llm", "llm": {"backend": "simulated"}, "n_dialogues": 10, "seed": 2,
           "domains": "all", "subtasks": [2, 3], "steps": [1, 3], "injections": [1, 2], "progress": False}
    raw.update(kw)
    cfg = parse_recipe(raw)
    return pipeline.run_batch(cfg, list(range(10)), make_client(cfg.llm))


def _kept(ds):
    return [d for d in ds if d["meta"].get("verification", {}).get("passed", True)]


def test_refinement_steps_change_the_data_and_the_card_says_how():
    r0, r3 = _run(refinement_steps=0), _run(refinement_steps=3)
    assert json.dumps([d["messages"] for d in r0]) != json.dumps([d["messages"] for d in r3])
    c0, c3 = build_card(r0), build_card(r3)
    assert c0["refinement"]["passes"] == 0 and c0["refinement"]["turns_changed"] == 0
    assert c3["refinement"]["passes"] > 0 and c3["refinement"]["turns_changed"] > 0
    assert 0 <= c3["refinement"]["judge_acceptance"] <= 1 and c3["injections_realised"]["all"] > 0
    md = card_markdown(c3)
    assert "mechanism check" in md and "per generated dialogue" in md and "re-check the visible facts" in md


def test_verification_rejects_real_defects_of_fair_offline_data():
    # skeleton_goal description: the skeleton stand-in chooses its own values, so some calls fail for real
    ds = _run(refinement_steps=1, skeleton_goal="description")
    card = build_card(ds)
    assert 0 < card["counts"]["kept"] < card["counts"]["generated"]
    assert card["rejection_reasons"]
    off = _run(refinement_steps=1, verify=False, skeleton_goal="description")
    assert len(_kept(off)) > len(_kept(ds))  # verification off trains on more (and worse) data
