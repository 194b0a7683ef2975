"""Training recipes parse strictly; data loading, mixing and the tool check behave (no model needed)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from banking_data import banking_dialogue, write_banking_dataset
from toolace_mt.config import RecipeError, load_recipe
from toolace_mt.training.config import parse_recipe

ROOT = Path(__file__).resolve().parents[2]


def test_keys_route_to_dataclasses_and_sftconfig():
    cfg = parse_recipe({"task": "train", "name": "x", "model_name_or_path": "tiny", "lora_r": 8,
                        "datasets": [{"path": "d", "weight": 0.5}], "learning_rate": 1e-4, "num_train_epochs": 3,
                        "lr_scheduler_type": "cosine", "neftune_noise_alpha": 5.0})
    assert cfg.lora.lora_r == 8 and cfg.data.datasets[0]["weight"] == 0.5
    # any SFTConfig field passes through without code here
    assert cfg.sft == {"learning_rate": 1e-4, "num_train_epochs": 3, "lr_scheduler_type": "cosine",
                       "neftune_noise_alpha": 5.0}
    kw = cfg.sft_kwargs("/tmp/x")
    assert kw["report_to"] == "none" and kw["packing"] is False and kw["assistant_only_loss"] is True
    import torch

    if not torch.cuda.is_available():
        assert kw["bf16"] is False and kw["activation_checkpointing"] is False
    assert cfg.resolved()["lora_r"] == 8 and cfg.resolved()["learning_rate"] == 1e-4


@pytest.mark.parametrize("raw, match", [
    ({"learning_rat": 1e-4}, "did you mean 'learning_rate'"),
    ({"lora_alpah": 8}, "did you mean 'lora_alpha'"),
    ({"output_dir": "x"}, "--out"),
    ({"lora_r": "big"}, "lora_r"),
    ({"datasets": [{"path": "a", "weight": -1}]}, "weight"),
    ({"datasets": [{"file": "a"}]}, "path"),
    ({"chat_template": "chatml"}, "chat_template"),
])
def test_bad_keys_are_rejected(raw, match):
    with pytest.raises(RecipeError, match=match):
        parse_recipe({"task": "train", **raw})


def test_shipped_recipes_parse():
    for p in sorted((ROOT / "recipes" / "train").glob("*.yaml")):
        kind, cfg, _ = load_recipe(p)
        assert kind == "train" and cfg.data.datasets, p
    paper = load_recipe(ROOT / "recipes" / "train" / "qwen25_7b_lora.yaml")[1]
    assert (paper.lora.lora_r, paper.lora.lora_alpha, paper.sft["learning_rate"]) == (16, 32, 1e-4)  # paper §5
    assert paper.sft["per_device_train_batch_size"] * paper.sft["gradient_accumulation_steps"] * 8 == 64


def test_mixing_weights_and_rows(tmp_path):
    from toolace_mt.training.data import dialogue_to_row, load_mixture

    a = write_banking_dataset(tmp_path / "a", n=8, seed0=0)
    b = write_banking_dataset(tmp_path / "b", n=4, seed0=100)
    mixed = load_mixture([{"path": str(a), "weight": 0.5}, {"path": str(b), "weight": 2}], seed=1)
    srcs = [s for s, _ in mixed]
    assert srcs.count(str(a)) == 4 and srcs.count(str(b)) == 8
    assert mixed == load_mixture([{"path": str(a), "weight": 0.5}, {"path": str(b), "weight": 2}], seed=1)
    # a tool update is shown as the evaluation shows it: the prompt again with the updated tool list, so a
    # dialogue with one update is two rows (before the update with the initial tools; whole, with all tools)
    from toolace_mt.training.data import dialogue_to_rows

    d = banking_dialogue(3, tool_update=True)
    at = d.meta["tool_updates"][0]["at"]
    before, whole = dialogue_to_rows(d)
    assert len(before["messages"]) == at and len(whole["messages"]) == len(d.messages)
    assert not any(m["role"] == "system" and m.get("tools") for m in whole["messages"])
    assert "list_payees" not in before["tools"]
    assert [t["function"]["name"] for t in json.loads(whole["tools"])][-1] == "list_payees"
    assert dialogue_to_row(d) == whole and whole["messages"][:at] == before["messages"]


def test_unknown_tool_is_caught_before_training(tmp_path):
    from toolace_mt.io import save_dataset
    from toolace_mt.training.config import DataArguments
    from toolace_mt.training.data import DataError, load_rows

    good = banking_dialogue(1)
    bad = banking_dialogue(2)
    bad = bad.model_copy(update={"tools": [t for t in bad.tools if t.name != "get_balance"]})
    save_dataset([good, bad], tmp_path / "d")
    with pytest.raises(DataError, match="get_balance"):
        load_rows(DataArguments(datasets=[{"path": str(tmp_path / "d")}]))
    rows, rep = load_rows(DataArguments(datasets=[{"path": str(tmp_path / "d")}], on_unknown_tool="drop"))
    assert len(rows) == 1 and rep["unknown_tool_rows"] == 1 and rep["unknown_tool_examples"][0]["id"] == "bank-2"


def test_check_finds_missing_dataset_and_bad_sft_values(tmp_path):
    cfg = parse_recipe({"task": "train", "datasets": [{"path": str(tmp_path / "nope")}]})
    with pytest.raises(RecipeError, match="nope does not exist"):
        cfg.check()
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(RecipeError, match="neither a file"):
        parse_recipe({"task": "train", "datasets": [{"path": str(tmp_path / "empty_dir")}]}).check()
    write_banking_dataset(tmp_path / "d", n=2)
    parse_recipe({"task": "train", "datasets": [{"path": str(tmp_path / "d")}], "save_strategy": False}).check()
    with pytest.raises(RecipeError, match="SFTConfig"):
        parse_recipe({"task": "train", "datasets": [{"path": str(tmp_path / "d")}], "lr_scheduler_type": "zigzag"}).check()


def test_first_turn_keeps_the_first_request_and_its_answer():
    from toolace_mt.schema import validate_dialogue
    from toolace_mt.training.data import first_turn

    d = banking_dialogue(5, turns=3)
    f = first_turn(d)
    assert [m.role for m in f.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert validate_dialogue(f) == [] and f.messages[1].content == d.messages[1].content


def test_a_number_yaml_reads_as_text_gets_a_hint():
    """PyYAML (YAML 1.1) reads ``1e-3`` as a string: the one-line error says how to write it."""
    import yaml

    from toolace_mt.config import RecipeError
    from toolace_mt.training.config import parse_recipe

    raw = yaml.safe_load("task: train\nname: t\nlearning_rate: 1e-3\ntiny_num_heads: 2e0\n")
    assert raw["learning_rate"] == "1e-3"
    with pytest.raises(RecipeError, match=r"'1e-3' is not of type float \(YAML reads 1e-3 as text; write it with a dot"):
        parse_recipe({k: v for k, v in raw.items() if k != "tiny_num_heads"})
    with pytest.raises(RecipeError, match="tiny_num_heads.*YAML reads 2e0 as text"):
        parse_recipe({k: v for k, v in raw.items() if k != "learning_rate"})
