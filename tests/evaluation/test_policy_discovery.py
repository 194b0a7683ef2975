"""Policy kinds are discovered like domains: a new kind is one new file in `evaluation/policies/`."""
from __future__ import annotations

import sys

import pytest

import toolace_mt.evaluation.policies as policies
from toolace_mt.config import RecipeError
from toolace_mt.evaluation.policy import PolicyInput
from toolace_mt.registry import Registry, RegistryError

TOY = '''
"""A toy policy kind in its own file: it always calls the first tool it is shown, with no arguments."""
from toolace_mt.evaluation.policies import PolicyConfig, register_policy
from toolace_mt.evaluation.policy import PolicyOutput


@register_policy("toy_first_tool")
class FirstToolPolicy:
    @staticmethod
    def check_config(cfg: PolicyConfig) -> None:
        if cfg.temperature != 0:
            raise ValueError("toy_first_tool is greedy: temperature must be 0")

    def __init__(self, cfg: PolicyConfig):
        self.name = cfg.label

    def act(self, batch):
        return [PolicyOutput(tool_calls=[{"name": i.tools[0]["function"]["name"], "arguments": {}}] if i.tools else [])
                for i in batch]
'''


@pytest.fixture
def toy_folder(tmp_path, monkeypatch):
    """The policies folder with one new file in it (an extra search path of the package) and a fresh registry."""
    (tmp_path / "toy_first_tool.py").write_text(TOY)
    policies.POLICIES.names()  # the built-ins register into the real registry first (a module is imported once)
    monkeypatch.setattr(policies, "__path__", [*policies.__path__, str(tmp_path)])
    monkeypatch.setattr(policies, "POLICIES", Registry("policy kind", discover=policies._discover))
    yield
    sys.modules.pop(f"{policies.__name__}.toy_first_tool", None)


def test_a_new_policy_kind_is_one_new_file(toy_folder):
    tool = {"type": "function", "function": {"name": "get_balance", "parameters": {"type": "object"}}}
    pol = policies.make_policy({"kind": "toy_first_tool"})
    out = pol.act([PolicyInput(messages=[{"role": "user", "content": "hi"}], tools=[tool])])
    assert out[0].tool_calls == [{"name": "get_balance", "arguments": {}}]
    with pytest.raises(ValueError, match="temperature must be 0"):  # the kind's own check runs on the recipe block
        policies.make_policy({"kind": "toy_first_tool", "temperature": 0.5})
    with pytest.raises(ValueError, match="tool_call_format 'native' needs .*not kind 'toy_first_tool'"):
        policies.make_policy({"kind": "toy_first_tool", "tool_call_format": "native"})


def test_kind_is_checked_against_the_registry():
    assert {"oracle", "null", "transformers", "openai", "vllm", "replay"} <= set(policies.POLICIES.names())
    assert not any(isinstance(e, str) for e in policies.POLICIES._entries.values())  # registered once, no lazy copy
    with pytest.raises((RecipeError, ValueError), match="unknown policy kind 'orcale'.*did you mean 'oracle'"):
        policies.make_policy({"kind": "orcale"})


def test_a_taken_kind_cannot_be_registered_again():
    with pytest.raises(RegistryError, match="policy kind 'oracle' is registered twice"):
        policies.register_policy("oracle")(type("Other", (), {}))
    assert policies.POLICIES.get("oracle").__name__ == "OraclePolicy"
