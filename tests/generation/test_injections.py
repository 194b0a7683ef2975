"""Injection types as a registry: discovery, the protocol, and a new type added from one module of its own."""
from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from toolace_mt.generation.config import parse_recipe
from toolace_mt.generation.injections import INJECTIONS, Injection, default_weights, injection_types
from toolace_mt.generation.pipeline import run_batch
from toolace_mt.generation.verify import verify_dialogue
from toolace_mt.llm.client import LLMConfig, make_client
from toolace_mt.registry import RegistryError

BUILT_IN = ("clarification", "tool_awareness", "error_simulation", "non_function_call", "long_context")


def cfg_of(**kw):
    base = {"name": "t", "domains": ["banking"], "n_dialogues": 6, "seed": 3, "progress": False}
    base.update(kw)
    return parse_recipe(base)


def test_the_package_discovers_every_built_in_type_in_its_order():
    assert injection_types() == BUILT_IN  # the order the planner draws from (seeded plans depend on it)
    assert default_weights() == {"clarification": 1.0, "tool_awareness": 1.0, "error_simulation": 1.0,
                                 "non_function_call": 1.0, "long_context": 0.5}
    for name in BUILT_IN:
        inj = INJECTIONS.get(name)
        assert isinstance(inj, Injection) and inj.name == name
        for method in ("find", "realise", "answer", "apply", "check"):
            assert getattr(type(inj), method) is not getattr(Injection, method), (name, method)
    # only non_function_call can be realised on a schema-only tool pool
    assert [n for n in BUILT_IN if not INJECTIONS.get(n).needs_env] == ["non_function_call"]


def test_an_unknown_type_is_a_recipe_error_naming_the_known_ones():
    with pytest.raises(ValueError, match="'nope' is not one of clarification, tool_awareness"):
        cfg_of(injection_types=["nope"])
    with pytest.raises(ValueError, match="injection_weights"):
        cfg_of(injection_weights={"nope": 1.0})
    with pytest.raises(RegistryError, match="did you mean 'long_context'"):
        INJECTIONS.get("long_contxt")


TOY = textwrap.dedent('''
    """A toy type: the user adds "Please hurry." to a request."""
    from toolace_mt.generation.injections import Injection, free_queries, register, where
    from toolace_mt.generation.work import user

    SUFFIX = " Please hurry."
    CHECKED = []  # records every check call (the test reads it)

    @register
    class Hurry(Injection):
        name = "toy_hurry"
        needs_env = False
        reject = False

        def find(self, d, rng):
            qs = free_queries(d)
            if not qs:
                return None
            i, tg = rng.choice(qs)
            return {"type": self.name, "uid": tg.uid, "t": tg.subtask, "roles": ["user"],
                    "instruction": "Repeat the user's request and add: Please hurry."}

        def realise(self, d, spec, rng, env_cls, original):
            return [original + SUFFIX]

        def answer(self, facts, original, rng):
            return [original + SUFFIX]

        def apply(self, d, spec, texts, rec):
            i, t = where(d, spec)
            d.replace(i, [(user(texts[0]), "query", t)])
            return d.turns[i:i + 1]

        def check(self, d, rec, pos):
            CHECKED.append(rec.uids)
            msg = d.messages[pos[0]]
            if self.reject or not (msg.get("content") or "").endswith(SUFFIX):
                return [f"message {pos[0]} is not in a hurry"]
            return []
''')


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A new injection type from a module outside the package, registered by importing it."""
    (tmp_path / "toy_hurry_injection.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("toy_hurry_injection")
    yield mod
    INJECTIONS.unregister("toy_hurry")
    sys.modules.pop("toy_hurry_injection", None)


@pytest.mark.parametrize("engine", ["rules", "llm"])
def test_a_new_type_from_its_own_module_is_generated_and_verified(toy, engine):
    assert "toy_hurry" in injection_types() and default_weights()["toy_hurry"] == 1.0
    extra = {"engine": "llm", "llm": {"backend": "simulated", "model": "rules"}} if engine == "llm" else {}
    cfg = cfg_of(injections=[1, 1], injection_types=["toy_hurry"], refinement_steps=0, **extra)
    client = make_client(LLMConfig(backend="simulated", model="rules")) if engine == "llm" else None
    ds = run_batch(cfg, list(range(6)), client)
    got = [d for d in ds if d["meta"]["injection_types"] == ["toy_hurry"]]
    assert len(got) == len(ds), [d["meta"].get("failure") for d in ds]
    for d in got:
        rec = d["meta"]["injections"][0]
        hurried = [m for m in d["messages"] if m["role"] == "user" and m["content"].endswith(toy.SUFFIX)]
        assert len(hurried) == 1 and rec["type"] == "toy_hurry" and len(rec["uids"]) == 1
        assert d["meta"]["verification"]["checks"]["injections"] is True
    # stage 3 called the type's own check once per recorded injection
    assert {tuple(d["meta"]["injections"][0]["uids"]) for d in got} <= set(map(tuple, toy.CHECKED))
    assert sum(d["meta"]["verification"]["passed"] for d in got) >= len(got) // 2

    # ... and the check can reject: a verdict with the type's own reason
    toy.CHECKED.clear()
    INJECTIONS.get("toy_hurry").reject = True
    v = verify_dialogue(got[0])
    assert toy.CHECKED and not v.passed and v.checks["injections"] is False
    assert any(r.startswith("injections: toy_hurry: message") and "not in a hurry" in r for r in v.reasons)


def test_a_type_nobody_registered_is_rejected_by_verification():
    d = run_batch(cfg_of(n_dialogues=2, injections=[1, 1], injection_types=["non_function_call"],
                         refinement_steps=0), [0])[0]
    d["meta"]["injections"][0]["type"] = "made_up"
    v = verify_dialogue(d)
    assert not v.passed and "injections: unknown injection type 'made_up'" in v.reasons


def test_mas_refuses_a_type_without_a_mas_hook_and_acts_out_one_with_it(toy):
    """MAS acts each type out through the type's own module (`mas_user`); a type without the hook is refused for
    method mas with a one-line reason, never skipped silently."""
    from toolace_mt.config import RecipeError
    from toolace_mt.generation.dialogue import WorkDialogue
    from toolace_mt.generation.plan import TaskPlan
    from toolace_mt.generation.pool import plan_for

    simulate = importlib.import_module("toolace_mt.generation.mas.simulate")

    with pytest.raises((RecipeError, ValueError), match="method mas cannot act out toy_hurry .*`mas_user` hook"):
        cfg_of(method="mas", injections=[1, 1], injection_types=["clarification", "toy_hurry"])
    assert cfg_of(method="mas", injections=[1, 1], injection_types=["clarification"]).method == "mas"

    # the same type with the hook (added in its module): MAS's user agent is told to act it out
    type(INJECTIONS.get("toy_hurry")).mas_user = lambda self, plan: {
        "user_instructions": [f"End your request for task 1 with: {toy.SUFFIX.strip()}"]}
    cfg = cfg_of(method="mas", injections=[1, 1], injection_types=["toy_hurry"])
    plan = plan_for(cfg, 0)
    plan = TaskPlan.from_dict(dict(plan.to_dict(), injections=["toy_hurry", "non_function_call"]))
    req = simulate.user_request(WorkDialogue(id="x", tools=[], messages=[]), plan)
    prompt = req.messages[-1]["content"]
    assert "End your request for task 1 with: Please hurry." in prompt
    assert "make small talk once" in prompt  # the built-in types still act through their own hooks
    assert req.payload["visible"]["user_instructions"] == ["End your request for task 1 with: Please hurry."]
