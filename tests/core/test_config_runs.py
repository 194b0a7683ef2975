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


# ------------------------------------------------------------------------------------------------
# issue 24 item 7: YAML 1.1 traps refused with a hint that works; recipe paths of the wrong kind
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Sub:
    tag: str = ""


@dataclasses.dataclass
class Y11Config:
    name: str = "y"
    seed: int = 0
    label: str = ""
    steps: Optional[int] = None
    lr: float = 0.1
    verbose: bool = False
    maybe: Optional[bool] = None
    sub: Sub = dataclasses.field(default_factory=Sub)


@pytest.fixture
def y11(monkeypatch, tmp_path):
    mod = types.ModuleType("toolace_mt_y11_recipe")
    mod.parse_recipe = lambda raw: dataclass_from_dict(Y11Config, raw)
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    cfgmod.RECIPE_KINDS.register("y11", f"{mod.__name__}:parse_recipe")

    def load(text: str, overrides=None) -> Y11Config:
        p = tmp_path / "r.yaml"
        p.write_text("task: y11\n" + text)
        return load_recipe(p, overrides)[1]

    yield load
    cfgmod.RECIPE_KINDS.unregister("y11")


def test_yaml11_octal_is_refused_with_a_hint_that_works(y11):
    with pytest.raises(RecipeError) as e:
        y11("seed: 010\n")
    msg = str(e.value)
    assert "key 'seed' (line 2)" in msg and "reads as 8" in msg and "write 10 " in msg and '"010" (quoted)' in msg
    assert y11("seed: 10\n").seed == 10 and y11('label: "010"\n').label == "010"  # both hints are accepted
    with pytest.raises(RecipeError, match=r"--set seed=010: 010 is an octal .*write 10 "):
        y11("", ["seed=010"])
    with pytest.raises(RecipeError, match=r"key 'steps'.*reads as -8\); write -10 "):
        y11("steps: -010\n")
    with pytest.raises(RecipeError, match=r"key 'sub.tag'.*octal"):
        y11("sub: {tag: 0755}\n")
    with pytest.raises(RecipeError, match=r"key 'label'.*1:30 is a base-60 number .*reads as 90"):
        y11("label: 1:30\n")
    # not traps: the same number under both readings, explicit hex, quoted text
    assert y11("seed: 0\n").seed == 0 and y11("seed: 00\n").seed == 0 and y11("seed: 0x10\n").seed == 16
    assert y11("seed: '010'\n", ["seed=7"]).seed == 7


def test_yaml11_words_refused_for_keys_that_are_not_booleans(y11):
    with pytest.raises(RecipeError) as e:
        y11("label: off\n")
    assert "key 'label': off is a boolean in YAML 1.1 (it reads as false)" in str(e.value)
    assert 'label: "off"' in str(e.value)
    assert y11('label: "off"\n').label == "off"  # the hint, applied, is accepted
    with pytest.raises(RecipeError, match=r"key 'label': no is a boolean"):
        y11("", ["label=no"])
    assert y11("", ['label="no"']).label == "no"
    with pytest.raises(RecipeError, match=r"key 'sub.tag': On is a boolean.*tag: \"On\""):
        y11("sub: {tag: On}\n")
    with pytest.raises(RecipeError, match=r"key 'steps': yes is a boolean"):
        y11("steps: yes\n")
    # boolean keys keep YAML 1.1's reading; an override replaces the word it overrides
    c = y11("verbose: yes\nmaybe: on\n")
    assert c.verbose is True and c.maybe is True
    assert y11("label: off\n", ["label=x"]).label == "x"
    assert y11("sub: {tag: off}\n", ["sub={tag: y}"]).sub.tag == "y"


def _suggestion(msg: str) -> str:
    import re

    m = re.search(r"(?:without quotes: |with a dot, e\.g\. )(\S+)\)", msg)
    assert m, msg
    return m.group(1)


@pytest.mark.parametrize("key,text,want", [("steps", '"2"', 2), ("seed", "'1e3'", 1000), ("lr", "1e-5", 1e-5),
                                           ("lr", "1.25e+7x", None), ("lr", "1e5", 1e5), ("lr", '"3"', 3.0)])
def test_number_text_hint_suggests_a_value_that_is_accepted(y11, key, text, want):
    if want is None:  # not a number at all: no hint
        with pytest.raises(RecipeError) as e:
            y11(f"{key}: {text}\n")
        assert "YAML reads" not in str(e.value)
        return
    with pytest.raises(RecipeError) as e:
        y11(f"{key}: {text}\n")
    fix = _suggestion(str(e.value))
    assert getattr(y11(f"{key}: {fix}\n"), key) == want
    assert getattr(y11("", [f"{key}={fix}"]), key) == want


def _validate(capsys, *argv) -> tuple[int, str]:
    rc = main(["validate", *argv])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


TINY_TRAIN = "recipes/train/tiny_cpu.yaml"


def test_train_recipe_traps_and_model_path(tmp_path, capsys):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "rows.jsonl").write_text("")
    recipe = str(tmp_path / "tiny.yaml")  # the committed recipe, on a dataset that exists (validate checks it)
    Path(recipe).write_text((root / TINY_TRAIN).read_text().replace("runs/generate/debug/dataset",
                                                                     str(tmp_path / "rows.jsonl")))
    rc, out = _validate(capsys, recipe, "--set", 'max_steps="2"')
    assert rc == 2 and "write it as an integer, without quotes: 2)" in out, out
    fix = _suggestion(out)
    assert _validate(capsys, recipe, "--set", f"max_steps={fix}")[0] == 0  # the hint works (was 2.0e+00)
    rc, out = _validate(capsys, recipe, "--set", "report_to=off")
    assert rc == 2 and "off is a boolean in YAML 1.1" in out and "report_to: none" in out, out
    assert _validate(capsys, recipe, "--set", "report_to=none")[0] == 0
    rc, out = _validate(capsys, recipe, "--set", 'report_to="off"')  # not a tracker: refused now, not at run time
    assert rc == 2 and "report_to" in out and "not supported" in out, out
    assert _validate(capsys, recipe, "--set", "save_strategy=no")[0] == 0  # the documented `no` still means "no"
    (tmp_path / "weights.bin").write_text("x")
    rc, out = _validate(capsys, recipe, "--set", f"model_name_or_path={tmp_path / 'weights.bin'}")
    assert rc == 2 and "model_name_or_path" in out and "is a file" in out, out
    rc, out = _validate(capsys, recipe, "--set", f"chat_template={tmp_path}/nope.jinja")
    assert rc == 2 and "chat_template" in out, out


def test_evaluate_recipe_policy_paths(tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")

    def ev(policy: str) -> tuple[int, str]:
        p = tmp_path / "e.yaml"
        p.write_text(f"task: evaluate\nsuite: tau\nsource: own\npolicy: {policy}\n")
        return _validate(capsys, str(p))

    rc, out = ev(f"{{kind: replay, format: trajectories, path: {tmp_path / 'adir'}}}")
    assert rc == 2 and "is a directory without trajectories.jsonl" in out, out
    (tmp_path / "adir" / "trajectories.jsonl").write_text("")
    assert ev(f"{{kind: replay, format: trajectories, path: {tmp_path / 'adir'}}}")[0] == 0
    rc, out = ev(f"{{kind: replay, format: trajectories, path: {tmp_path / 'nope.jsonl'}}}")
    assert rc == 2 and "does not exist" in out, out
    rc, out = ev(f"{{kind: replay, format: bfcl_result, path: {tmp_path / 'adir'}}}")
    assert rc == 2 and "no bfcl_result files" in out, out
    rc, out = ev(f"{{kind: transformers, model: {tmp_path / 'afile'}}}")
    assert rc == 2 and "policy.model" in out and "is a file" in out, out
    rc, out = ev(f"{{kind: transformers, model: {tmp_path / 'adir'}, adapter: {tmp_path / 'afile'}}}")
    assert rc == 2 and "policy.adapter" in out and "is a file" in out, out


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
