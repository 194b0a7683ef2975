"""LLMClient around the scripted backend: batching, cache, ledger sums, JSON retries, config, registry."""
from __future__ import annotations

import json

import pytest

from toolace_mt.config import RecipeError, dataclass_from_dict
from toolace_mt.llm import ChatRequest, LLMConfig, SamplingParams, UsageLedger, make_client, register_backend
from toolace_mt.llm.testing import ScriptedBackend, make_scripted_client

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def _req(text, **kw):
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


def test_batch_goes_to_backend_in_one_call_and_in_order():
    c = make_scripted_client(lambda r: "echo " + r.messages[-1]["content"])
    out = c.chat([_req(f"q{i}") for i in range(5)])
    assert [r.text for r in out] == [f"echo q{i}" for i in range(5)]
    assert c.backend.calls == 1 and len(c.backend.seen) == 5
    assert c.chat([]) == [] and c.backend.calls == 1


def test_cache_key_ignores_labels_but_not_inputs(tmp_path):
    c = make_scripted_client(lambda r: "a", cache_dir=tmp_path)
    c.chat([_req("x", stage="s1", method="m1", payload={"p": 1})])
    c2 = make_scripted_client(lambda r: '{"b": 1}', cache_dir=tmp_path)
    hit = c2.chat([_req("x", stage="s2", method="m2", payload={"p": 2})])[0]
    assert hit.cached and hit.text == "a" and c2.backend.calls == 0
    # anything the model sees changes the key: messages, tools, sampling (incl. seed), schema, model
    variants = [_req("y"), _req("x", tools=[{"type": "function", "function": {"name": "f"}}]),
                _req("x", sampling=SamplingParams(seed=1)), _req("x", sampling=SamplingParams(max_tokens=5)),
                _req("x", json_schema={"type": "object"})]
    out = c2.chat(variants)
    assert c2.backend.calls == 1 and not any(r.cached for r in out)
    c3 = make_scripted_client(lambda r: "c", cache_dir=tmp_path, model="other-model")
    assert not c3.chat([_req("x")])[0].cached


def test_second_run_makes_zero_backend_calls(tmp_path):
    reqs = [_req(f"q{i}", sampling=SamplingParams(temperature=0.8, seed=i)) for i in range(4)]
    c1 = make_scripted_client(lambda r: "ans " + r.messages[-1]["content"], cache_dir=tmp_path)
    first = c1.chat(reqs)
    c2 = make_scripted_client(lambda r: pytest.fail("backend must not be called"), cache_dir=tmp_path)
    second = c2.chat(reqs)
    assert c2.backend.calls == 0 and [r.text for r in second] == [r.text for r in first]
    s = c2.ledger.summary()["total"]
    assert s["cached"] == 4 and s["calls"] == 0 and s["prompt_tokens"] == 0 and s["cached_prompt_tokens"] == 4


def test_identical_greedy_requests_are_asked_once_sampled_ones_not():
    c = make_scripted_client(lambda r: "z")
    c.chat([_req("same"), _req("same"), _req("same", sampling=SamplingParams(temperature=1.0))])
    assert len(c.backend.seen) == 2


def test_ledger_sums_by_stage_and_method(tmp_path):
    led = UsageLedger()
    c = make_scripted_client(lambda r: "one two three", ledger=led)
    c.chat([_req("a b", stage="plan", method="toolace_mt"), _req("a b c d", stage="plan", method="mas"),
            _req("x", stage="refine", method="toolace_mt")])
    s = led.summary()
    assert s["total"]["requests"] == 3 and s["total"]["calls"] == 3
    assert s["total"]["prompt_tokens"] == 2 + 4 + 1 and s["total"]["completion_tokens"] == 9
    assert s["by_stage"]["plan"]["prompt_tokens"] == 6 and s["by_stage"]["refine"]["calls"] == 1
    assert s["by_method"]["toolace_mt"]["prompt_tokens"] == 3 and s["by_method"]["mas"]["completion_tokens"] == 3
    assert s["by_stage_method"]["plan/mas"]["prompt_tokens"] == 4
    assert s["total"]["total_tokens"] == 16
    p = led.save(tmp_path / "usage.json")
    assert json.loads(p.read_text()) == s
    again = UsageLedger.load(p)
    c2 = make_scripted_client(lambda r: "w", ledger=again)
    c2.chat([_req("q", stage="plan", method="mas")])
    assert again.summary()["by_stage_method"]["plan/mas"]["calls"] == 2  # resumed sums keep adding


def test_json_retry_then_success():
    answers = iter(["Sure! here it is: n = 3", '{"n": "three"}', '```json\n{"n": 3,}\n```'])
    c = make_scripted_client(lambda r: next(answers), json_retries=2)
    r = c.chat([_req("give n", json_schema=SCHEMA, stage="verify")])[0]
    assert r.ok and r.parsed == {"n": 3} and r.attempts == 3
    assert any("json repaired" in w for w in r.warnings)
    # the re-asks carry the bad answer and the error
    last = c.backend.seen[-1].messages
    assert [m["role"] for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert last[1]["content"] == "Sure! here it is: n = 3" and last[3]["content"] == '{"n": "three"}'
    assert "not valid JSON" in last[2]["content"] and "'three' is not of type 'integer'" in last[4]["content"]
    s = c.ledger.summary()["by_stage"]["verify"]
    assert s["requests"] == 3 and s["json_retries"] == 2 and s["failures"] == 0


def test_json_retries_exhausted_give_typed_failure_with_raw():
    c = make_scripted_client(lambda r: "no json, sorry", json_retries=1)
    good = make_scripted_client(lambda r: '{"n": 1}')
    r = c.chat([_req("n?", json_schema=SCHEMA)])[0]
    assert not r.ok and r.error.kind == "invalid_json" and r.error.raw == "no json, sorry" and r.error.attempts == 2
    assert c.backend.calls == 2  # the first answer + one batched re-ask
    assert c.ledger.summary()["failure_kinds"] == {"invalid_json": 1}
    assert good.chat([_req("n?", json_schema=SCHEMA)])[0].parsed == {"n": 1}
    mism = make_scripted_client(lambda r: '{"m": 1}', json_retries=0).chat([_req("n?", json_schema=SCHEMA)])[0]
    assert mism.error.kind == "schema_mismatch" and mism.error.attempts == 1


def test_json_retries_are_batched_and_only_for_failures():
    def fn(r):
        q = r.messages[0]["content"]
        return '{"n": 1}' if q == "good" or len(r.messages) > 1 else "bad"
    c = make_scripted_client(fn)
    out = c.chat([_req("good", json_schema=SCHEMA), _req("bad1", json_schema=SCHEMA), _req("bad2", json_schema=SCHEMA),
                  _req("plain")])
    assert [r.ok for r in out] == [True, True, True, True] and [r.attempts for r in out] == [1, 2, 2, 1]
    assert c.backend.calls == 2 and len(c.backend.seen) == 6
    assert out[3].parsed is None and out[3].text == "bad"


def test_bad_schema_raises_before_any_call():
    import jsonschema

    c = make_scripted_client(lambda r: "{}")
    with pytest.raises(jsonschema.SchemaError):
        c.chat([_req("x", json_schema={"type": 12})])
    assert c.backend.calls == 0


def test_scripted_canned_replies_tool_calls_and_running_out():
    b = ScriptedBackend(["hi", {"text": "", "tool_calls": [{"name": "f", "arguments": {"a": 1}}]}])
    out = b.generate([_req("1"), _req("2"), _req("3")])
    assert out[0].text == "hi" and out[1].finish_reason == "tool_calls"
    assert out[1].tool_calls == [{"id": "call_0", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]
    assert out[2].error.kind == "bad_response"


def test_config_defaults_apply_to_unset_sampling_fields():
    seen = []
    register_backend("recorder", lambda cfg: ScriptedBackend(lambda r: seen.append(r.sampling) or "ok"))
    c = make_client(LLMConfig(backend="recorder", temperature=0.5, max_tokens=77, seed=9))
    c.chat([_req("a"), _req("b", sampling=SamplingParams(temperature=0.0, max_tokens=3))])
    assert (seen[0].temperature, seen[0].max_tokens, seen[0].seed, seen[0].top_p) == (0.5, 77, 9, 1.0)
    assert (seen[1].temperature, seen[1].max_tokens, seen[1].seed) == (0.0, 3, 9)


def test_llm_config_parses_from_recipe_block_strictly():
    cfg = dataclass_from_dict(LLMConfig, {"backend": "transformers", "model": "m", "temperature": 0.2,
                                          "json_retries": 0, "extra": {"k": 1}}, where="llm.")
    assert cfg.backend == "transformers" and cfg.json_retries == 0 and cfg.extra == {"k": 1}
    with pytest.raises(RecipeError, match="max_token"):
        dataclass_from_dict(LLMConfig, {"max_token": 5}, where="llm.")
    with pytest.raises(RecipeError, match="max_concurrency"):
        dataclass_from_dict(LLMConfig, {"max_concurrency": 0}, where="llm.")
    with pytest.raises(RecipeError, match="tool_call_format"):
        dataclass_from_dict(LLMConfig, {"tool_call_format": "xml"}, where="llm.")


def test_backend_registry_errors_and_scripted_from_recipe():
    with pytest.raises(ValueError, match="unknown LLM backend 'nope'"):
        make_client(LLMConfig(backend="nope"))
    c = make_client(LLMConfig(backend="scripted", extra={"replies": ["first", "second"]}))
    assert [r.text for r in c.chat([_req("a"), _req("b")])] == ["first", "second"]
    with pytest.raises(ValueError, match="replies"):
        make_client(LLMConfig(backend="scripted"))


def test_builtin_backends_are_discovered_once_and_a_name_is_not_taken_twice():
    """Every built-in backend registers itself from its own module (found by discovery, no list kept here);
    a second factory under a taken name is an error, not a silent replacement."""
    from toolace_mt.llm import client as client_mod
    from toolace_mt.registry import RegistryError

    assert {"openai", "transformers", "vllm", "simulated", "scripted"} <= set(client_mod.known_backends())
    assert client_mod.BACKENDS.get("simulated").__module__ == "toolace_mt.llm.simulated"
    assert not any(isinstance(e, str) for e in client_mod.BACKENDS._entries.values())  # no lazy copies
    with pytest.raises(RegistryError, match="LLM backend 'simulated' is registered twice"):
        register_backend("simulated", lambda cfg: ScriptedBackend(lambda r: "x"))
    assert client_mod.BACKENDS.get("simulated").__module__ == "toolace_mt.llm.simulated"


TOY_BACKEND = '''
"""A toy backend in its own file: it answers every request with the request's last message, reversed."""
from toolace_mt.llm.client import register_backend
from toolace_mt.llm.types import ChatResponse


class ReverseBackend:
    name = "toy_reverse"

    def __init__(self, cfg):
        self.model = cfg.model or "rev"

    @staticmethod
    def ray_gpus(extra, device, gpus_in_cluster=None):
        return int(extra.get("toy_gpus", 3))

    def generate(self, requests):
        return [ChatResponse(text=r.messages[-1]["content"][::-1]) for r in requests]


register_backend("toy_reverse", ReverseBackend)
'''


def test_a_new_backend_is_one_new_file(tmp_path, monkeypatch):
    """A module dropped into the backends' folder is found by discovery and usable by name everywhere (client,
    Ray resources); nothing else is edited."""
    import sys

    import toolace_mt.llm as llm_pkg
    from toolace_mt.executor import shard_resources
    from toolace_mt.llm import client as client_mod
    from toolace_mt.registry import Registry

    (tmp_path / "toy_reverse_backend.py").write_text(TOY_BACKEND)
    client_mod.known_backends()  # the built-ins register into the real registry first (a module is imported once)
    monkeypatch.setattr(llm_pkg, "__path__", [*llm_pkg.__path__, str(tmp_path)])  # "the folder" holds the new file
    monkeypatch.setattr(client_mod, "BACKENDS", Registry("LLM backend", discover=client_mod._discover))
    try:
        assert "toy_reverse" in client_mod.known_backends()
        r = make_client(LLMConfig(backend="toy_reverse")).chat([_req("hello")])[0]
        assert r.text == "olleh"
        assert shard_resources(LLMConfig(backend="toy_reverse", model="m"), "llm")["num_gpus"] == 3
    finally:
        sys.modules.pop("toolace_mt.llm.toy_reverse_backend", None)


def test_import_is_cheap():
    import subprocess
    import sys

    code = ("import sys, toolace_mt.llm; "
            "print(sorted(m for m in ('torch', 'openai', 'transformers', 'vllm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
