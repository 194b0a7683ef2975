"""Recipes (strict parsing, --set overrides) and run directories (resume, refuse a changed recipe, restart)."""
from __future__ import annotations

import dataclasses
import sys
import types
from typing import Literal, Optional

import pytest
import yaml

from toolace_mt import config as cfgmod
from toolace_mt.app.cli import main
from toolace_mt.config import RecipeError, apply_overrides, dataclass_from_dict, load_recipe, to_plain
from toolace_mt.runs import RecipeChanged, atomic_write_json, machine_info, prepare_run_dir, read_jsonl, atomic_write_jsonl


@dataclasses.dataclass
class Sampling:
    temperature: float = 0.7
    top_p: float = 1.0


@dataclasses.dataclass
class FakeConfig:
    name: str = "fake"
    n_dialogues: int = 10
    domains: list[str] = dataclasses.field(default_factory=list)
    mode: Literal["rules", "llm"] = "rules"
    model: Optional[str] = None
    sampling: Sampling = dataclasses.field(default_factory=Sampling)

    def __post_init__(self):
        if self.n_dialogues < 0:
            raise ValueError("n_dialogues must be >= 0")

    def check(self):
        if self.model == "missing":
            raise RecipeError("model 'missing' cannot be found")


@pytest.fixture
def fake_kind(monkeypatch):
    mod = types.ModuleType("toolace_mt_fake_recipe")
    mod.parse_recipe = lambda raw: dataclass_from_dict(FakeConfig, raw)
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    cfgmod.RECIPE_KINDS.register("fake", f"{mod.__name__}:parse_recipe")  # lazy, as the app registers kinds
    yield "fake"
    cfgmod.RECIPE_KINDS.unregister("fake")


def write(tmp_path, name, data):
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_strict_parsing_errors():
    with pytest.raises(RecipeError, match=r"unknown key 'n_dialouges' \(did you mean 'n_dialogues'\?\)"):
        dataclass_from_dict(FakeConfig, {"n_dialouges": 3})
    with pytest.raises(RecipeError, match=r"key 'n_dialogues': 'ten' is not of type int"):
        dataclass_from_dict(FakeConfig, {"n_dialogues": "ten"})
    with pytest.raises(RecipeError, match="key 'n_dialogues'"):
        dataclass_from_dict(FakeConfig, {"n_dialogues": True})  # a bool is not an int
    with pytest.raises(RecipeError, match="key 'mode'"):
        dataclass_from_dict(FakeConfig, {"mode": "magic"})
    with pytest.raises(RecipeError, match="key 'domains'"):
        dataclass_from_dict(FakeConfig, {"domains": ["a", 3]})
    with pytest.raises(RecipeError, match=r"unknown key 'sampling.temp' \(did you mean 'sampling.temperature'|"
                                          r"unknown key 'sampling.temp'"):
        dataclass_from_dict(FakeConfig, {"sampling": {"temp": 1.0}})
    with pytest.raises(RecipeError, match="n_dialogues must be >= 0"):
        dataclass_from_dict(FakeConfig, {"n_dialogues": -1})
    c = dataclass_from_dict(FakeConfig, {"task": "fake", "name": "x", "n_dialogues": 3, "sampling": {"top_p": 0.9},
                                         "model": None})
    assert c.n_dialogues == 3 and c.sampling == Sampling(0.7, 0.9) and c.name == "x"
    assert dataclass_from_dict(Sampling, {"temperature": 1}).temperature == 1  # int accepted for float
    assert to_plain(c)["sampling"] == {"temperature": 0.7, "top_p": 0.9}


def test_overrides():
    raw = {"n_dialogues": 10, "sampling": {"temperature": 0.7}}
    out = apply_overrides(raw, ["n_dialogues=5", "domains=[banking, trading]", "sampling.top_p=0.5", "model=",
                                "mode=llm"])
    assert out == {"n_dialogues": 5, "domains": ["banking", "trading"], "model": "", "mode": "llm",
                   "sampling": {"temperature": 0.7, "top_p": 0.5}}
    assert raw == {"n_dialogues": 10, "sampling": {"temperature": 0.7}}  # input untouched
    with pytest.raises(RecipeError, match="expected key=value"):
        apply_overrides(raw, ["n_dialogues"])


def test_load_recipe(tmp_path, fake_kind):
    p = write(tmp_path, "small", {"task": "fake", "n_dialogues": 4})
    kind, cfg, raw = load_recipe(p, ["n_dialogues=7"])
    assert kind == "fake" and cfg.n_dialogues == 7 and raw["name"] == "small"
    with pytest.raises(RecipeError, match=r"small.yaml: unknown key 'n_dialouges'"):
        load_recipe(p, ["n_dialouges=7"])
    with pytest.raises(RecipeError, match="missing key 'task'"):
        load_recipe(write(tmp_path, "notask", {"n_dialogues": 1}))
    assert load_recipe(write(tmp_path, "notask2", {"n_dialogues": 1}), expect="fake")[0] == "fake"
    with pytest.raises(RecipeError, match="task 'cook' is not one of"):
        load_recipe(write(tmp_path, "cook", {"task": "cook"}))
    with pytest.raises(RecipeError, match="this command runs 'train' recipes"):
        load_recipe(p, expect="train")
    with pytest.raises(RecipeError, match="file not found"):
        load_recipe(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(RecipeError, match="top level must be a mapping"):
        load_recipe(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("a: [1, 2\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(tmp_path / "broken.yaml")


def test_validate_command(tmp_path, fake_kind, capsys):
    good = write(tmp_path, "good", {"task": "fake"})
    bad = write(tmp_path, "bad", {"task": "fake", "modle": "x"})
    missing = write(tmp_path, "missing", {"task": "fake", "model": "missing"})
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(good), str(bad), str(missing)]) == 2
    out = capsys.readouterr().out
    assert "ok    " in out and "unknown key 'modle' (did you mean" in out and "model 'missing' cannot be found" in out
    assert main(["validate", str(good), "--set", "n_dialogues=x"]) == 2


def test_run_dir_resume_refuse_restart(tmp_path):
    out = tmp_path / "run"
    r1 = {"task": "fake", "n_dialogues": 4, "progress": True}
    assert prepare_run_dir(out, r1) == out
    (out / "partial.jsonl").write_text("{}\n")
    prepare_run_dir(out, dict(r1))  # same recipe: resume, keep work
    assert (out / "partial.jsonl").exists()
    prepare_run_dir(out, dict(r1, progress=False), ignore_keys=("progress",))
    with pytest.raises(RecipeChanged) as ei:
        prepare_run_dir(out, dict(r1, n_dialogues=5))
    msg = str(ei.value)
    assert "--restart" in msg and "-n_dialogues: 4" in msg and "+n_dialogues: 5" in msg
    assert (out / "partial.jsonl").exists()  # refused: nothing lost
    prepare_run_dir(out, dict(r1, n_dialogues=5), restart=True)
    assert not (out / "partial.jsonl").exists()
    assert yaml.safe_load((out / "recipe.yaml").read_text())["n_dialogues"] == 5


def test_atomic_writes_and_machine_info(tmp_path):
    atomic_write_json(tmp_path / "a" / "s.json", {"x": 1})
    assert (tmp_path / "a" / "s.json").read_text().strip().startswith("{")
    atomic_write_jsonl(tmp_path / "r.jsonl", [{"i": 1}, {"i": 2}])
    assert read_jsonl(tmp_path / "r.jsonl") == [{"i": 1}, {"i": 2}]
    assert not [p for p in tmp_path.rglob("*.tmp")]
    info = machine_info()
    assert {"platform", "python", "cpu_count"} <= set(info)
