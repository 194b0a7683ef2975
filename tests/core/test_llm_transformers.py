"""`transformers` backend on the tiny offline Qwen2 model (CPU): batching, per-row tools, usage, cache, seeds."""
from __future__ import annotations

import pytest

from toolace_mt.llm import ChatRequest, LLMConfig, SamplingParams, make_client

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def client(tiny_model_dir):
    cfg = LLMConfig(backend="transformers", model=str(tiny_model_dir), max_tokens=12, batch_size=3, device="cpu")
    return make_client(cfg)


def _rows():
    from tiny_model import TOOLS

    return [
        ChatRequest(messages=[{"role": "user", "content": "What is the weather in Oslo?"}], tools=TOOLS),
        ChatRequest(messages=[{"role": "user", "content": "Hi"}]),
        ChatRequest(messages=[{"role": "system", "content": "Be short."},
                              {"role": "user", "content": "Send 5 to Ann and tell me the weather in Rome please."}],
                    tools=TOOLS[:1]),
        ChatRequest(messages=[{"role": "user", "content": "Tokyo?"}], tools=TOOLS[1:]),
    ]


def test_batched_generation_matches_single_rows_and_counts_tokens(client):
    backend = client.backend
    rows = _rows()
    batch = client.chat(rows)
    assert len(batch) == 4 and all(r.ok for r in batch)
    for req, resp in zip(rows, batch):
        # prompt tokens are the real token count of the per-row rendered prompt (tools included)
        ids = backend.tok(backend.render(req), add_special_tokens=False)["input_ids"]
        assert resp.usage.prompt_tokens == len(ids)
        assert 1 <= resp.usage.completion_tokens <= 12
        assert resp.finish_reason in ("stop", "length", "tool_calls")
    # per-row tools: the rendered prompts differ by their tools
    assert "send_money" not in backend.render(rows[2]) and "get_weather" in backend.render(rows[2])
    assert "<tools>" not in backend.render(rows[1])
    # left padding + batching does not change greedy answers: each row alone gives the same text
    single = [backend.generate([r])[0] for r in rows]
    assert [s.text for s in single] == [(b.raw_text or b.text) if b.tool_calls else b.text for b in batch]
    assert [s.usage.completion_tokens for s in single] == [b.usage.completion_tokens for b in batch]
    tot = client.ledger.summary()["total"]
    assert tot["prompt_tokens"] == sum(r.usage.prompt_tokens for r in batch)


def test_max_tokens_length_finish_and_sampling_seed(client):
    msgs = [{"role": "user", "content": "Hi"}]
    # a request sent straight to the backend (unset fields) is resolved against the config's defaults
    r = client.backend.generate([ChatRequest(messages=msgs, sampling=SamplingParams(max_tokens=3))])[0]
    assert 1 <= r.usage.completion_tokens <= 3
    if r.usage.completion_tokens == 3 and r.finish_reason != "stop":
        assert r.finish_reason == "length"
    sp = SamplingParams(temperature=1.0, max_tokens=8, seed=7)
    a = client.backend.generate([ChatRequest(messages=msgs, sampling=sp)])[0]
    b = client.backend.generate([ChatRequest(messages=msgs, sampling=sp)])[0]
    assert a.text == b.text and a.usage == b.usage  # same seed, same sample
    c = client.backend.generate([ChatRequest(messages=msgs, sampling=SamplingParams(temperature=1.0, max_tokens=8,
                                                                                    seed=8))])[0]
    assert c.text != a.text  # the seed matters (near-uniform logits of a random model: a clash is ~impossible)


def test_cache_second_run_makes_no_generate_call(tiny_model_dir, tmp_path):
    cfg = LLMConfig(backend="transformers", model=str(tiny_model_dir), max_tokens=6, device="cpu")
    c1 = make_client(cfg, cache_dir=tmp_path)
    first = c1.chat(_rows())
    c2 = make_client(cfg, cache_dir=tmp_path)
    calls = []
    c2.backend.generate = lambda reqs: calls.append(reqs) or []
    second = c2.chat(_rows())
    assert calls == [] and all(r.cached for r in second)
    assert [r.text for r in second] == [r.text for r in first]
    assert c2.ledger.summary()["total"]["cached"] == 4 and c2.ledger.summary()["total"]["calls"] == 0


def test_hermes_tool_calls_are_parsed_from_generated_text(client, monkeypatch):
    """The model is random, so feed the decoder a known completion and check the backend's parsing path."""
    from tiny_model import TOOLS

    backend = client.backend
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    ids = backend.tok(text, add_special_tokens=False)["input_ids"] + [backend.tok.eos_token_id]
    import torch

    def fake_generate(input_ids, attention_mask, **kw):
        gen = torch.tensor([ids] * input_ids.shape[0])
        return torch.cat([input_ids, gen], dim=1)

    monkeypatch.setattr(backend.model_obj, "generate", fake_generate)
    r = backend.generate([ChatRequest(messages=[{"role": "user", "content": "Oslo?"}], tools=TOOLS,
                                      sampling=SamplingParams(temperature=0.0, top_p=1.0, max_tokens=64))])[0]
    assert r.tool_calls == [{"id": "call_0", "type": "function",
                             "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]
    assert r.finish_reason == "tool_calls" and r.text == "" and r.raw_text == text
    assert r.usage.completion_tokens == len(ids)


def test_peft_adapter_is_loaded_and_keys_the_cache(tiny_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    # init_lora_weights=False: random A and B, so the adapter visibly changes the logits
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"],
                                                 init_lora_weights=False, task_type="CAUSAL_LM"))
    peft_model.save_pretrained(tmp_path / "adapter")
    req = [ChatRequest(messages=[{"role": "user", "content": "What is the weather in Oslo?"}])]
    plain = make_client(LLMConfig(backend="transformers", model=str(tiny_model_dir), max_tokens=8, device="cpu"),
                        cache_dir=tmp_path / "cache")
    tuned = make_client(LLMConfig(backend="transformers", model=str(tiny_model_dir), adapter=str(tmp_path / "adapter"),
                                  max_tokens=8, device="cpu"), cache_dir=tmp_path / "cache")
    a, b = plain.chat(req)[0], tuned.chat(req)[0]
    assert type(tuned.backend.model_obj).__name__.startswith("Peft")
    assert not b.cached and tuned.backend_calls == 1  # the adapter is part of the cache key
    assert a.text != b.text
