"""The CPU tier's knobs: short ids from the env samplers, single-domain short BFCL tasks, domain tool lists."""
from __future__ import annotations

import json
import os
import random
import re


def test_short_id_style_in_env_samplers_and_restored():
    from toolace_mt.envs import get_env
    from toolace_mt.envs.base import ID_STYLE_ENV, unique_ids, use_id_style

    before = os.environ.get(ID_STYLE_ENV)
    long_ids = [a["account_id"] for a in get_env("banking").sample_state(random.Random(3))["accounts"]]
    with use_id_style("short"):
        short = [a["account_id"] for a in get_env("banking").sample_state(random.Random(3))["accounts"]]
        many = unique_ids(random.Random(0), "X", 100, 0, 10)
    assert all(re.fullmatch(r"ACC\d{5}", i) for i in long_ids)
    assert all(re.fullmatch(r"ACC\d{2}", i) for i in short)
    assert len(set(many)) == 100 and all(len(i) == 4 for i in many)  # widened to 3 digits to stay unique
    assert os.environ.get(ID_STYLE_ENV) == before


def test_tier_task_set_is_single_domain_and_short(tmp_path):
    from toolace_mt.evaluation.bfcl.build import build_task_set
    from toolace_mt.runs import read_jsonl

    man = build_task_set(tmp_path, per_category=3, seed=1, domains=["banking", "messaging", "trading"],
                         max_domains=1, turns=[2, 3], id_style="short")
    assert man["id_style"] == "short" and man["max_domains"] == 1 and man["turns"] == [2, 3]
    for t in read_jsonl(tmp_path / "tasks.jsonl"):
        assert len(t["involved_classes"]) == 1
        assert len(t["question"]) <= 3 + (t["category"] in ("miss_param", "miss_func"))
        assert not re.search(r"\b(ACC|PAY|TX|ORD)\d{3,}", json.dumps(t["question"]))  # sampled ids are short


def test_domain_tool_list_matches_the_evaluation_order():
    from banking_data import banking_dialogue
    from toolace_mt.envs import get_env
    from toolace_mt.training.data import dialogue_to_rows, with_domain_tools

    d = banking_dialogue(3, tool_update=True)
    d.meta["domain"] = "banking"
    full = with_domain_tools(d)
    before, whole = dialogue_to_rows(full)
    names = [t["function"]["name"] for t in json.loads(whole["tools"])]
    order = [t["function"]["name"] for t in get_env("banking").tool_schemas()]
    assert names == [n for n in order if n != "list_payees"] + ["list_payees"]  # the harness's tools_at_turn order
    assert "list_payees" not in before["tools"]
    d.meta["domain"] = "no_such_domain"
    assert with_domain_tools(d) is None


def test_seed_and_ablation_recipes_start_from_the_quickstarts_base():
    # their READMEs and reports read "the quickstart's base": they fine-tune from the model the main command
    # trained (no second, possibly different base), with the quickstart's arm data and arm learning rate
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2] / "recipes"
    quick = yaml.safe_load((root / "quickstart.yaml").read_text())
    runs_dir = quick.get("runs_dir", "runs/reproduce")
    for name in ("quickstart_seeds", "ablation_refinement", "quickstart_chain_steps"):
        r = yaml.safe_load((root / "reproduce" / f"{name}.yaml").read_text())
        assert "base_train" not in r and "base_data" not in r, name
        assert r["base_model"] == f"{runs_dir}/{quick['name']}/train/base/model", name
        assert r["arm_train"]["set"]["learning_rate"] == quick["arm_train"]["set"]["learning_rate"], name
        # the step-cost keys change the batches (group_by_length) and the loss code: "the quickstart's arms" means
        # the same fine-tune, so a recipe that drops them measures another one
        for key in ("fused_loss", "train_sampling_strategy"):
            assert r["arm_train"]["set"].get(key) == quick["arm_train"]["set"].get(key), (name, key)
        assert r["generate"]["toolace_mt"] == quick["generate"]["toolace_mt"], name
