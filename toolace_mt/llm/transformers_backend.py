"""`transformers` backend: a local checkpoint (+ optional PEFT adapter), batched `generate`, CPU or GPU.

Prompts are rendered per row with the tokenizer's chat template (per-row tools, ``add_generation_prompt``),
left-padded (decoder-only batch generation must pad on the left) and generated in batches of ``batch_size``. Rows are grouped by their sampling
params (one `generate` call cannot mix greedy and sampled rows, or two seeds) and sorted by prompt length
inside a group so batches waste little padding. Token usage is real token counts (prompt = non-pad prompt
tokens, completion = generated tokens up to and including the end-of-turn token). Tool calls written in the
text are parsed with `toolparse` (format ``tool_call_format``); a block that cannot be parsed stays text and
is reported in ``warnings``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

from .client import LLMConfig, register_backend
from .toolparse import parse_tool_calls
from .types import ChatRequest, ChatResponse, LLMFailure, Usage, map_tool_calls


def _hf_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat templates render arguments with `tojson`, so they expect dicts; wire-format strings are decoded when they parse."""
    def decoded(c: dict[str, Any], fn: dict[str, Any]) -> dict[str, Any]:
        if isinstance(fn.get("arguments"), str):
            try:
                fn["arguments"] = json.loads(fn["arguments"])
            except json.JSONDecodeError:
                pass
        return {**c, "function": fn}

    return [m if m.get("content") is not None else {**m, "content": ""}
            for m in map_tool_calls(messages, decoded)]


class TransformersBackend:
    name = "transformers"

    @staticmethod
    def ray_gpus(extra: dict[str, Any], device: str, gpus_in_cluster: Optional[float] = None) -> float:
        """One GPU unless the model runs on the CPU: ``device: cpu``, or ``auto`` on a cluster known to have no
        GPU (where a one-process run would use its CPU; asking for a GPU would leave the task unschedulable)."""
        auto_on_cpu = device == "auto" and gpus_in_cluster is not None and gpus_in_cluster <= 0
        return 0 if str(device).startswith("cpu") or auto_on_cpu else 1

    def __init__(self, cfg: LLMConfig):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not cfg.model:
            raise ValueError("llm.model is required for the transformers backend (a checkpoint path or hub id)")
        self.cfg = cfg
        self.torch = torch
        self.device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32"}.get(cfg.dtype, cfg.dtype)
        if dtype == "auto":
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        if dtype not in ("bfloat16", "float16", "float32"):
            raise ValueError(f"llm.dtype {cfg.dtype!r} is not one of auto, bfloat16, float16, float32")
        self.tok = AutoTokenizer.from_pretrained(cfg.model)
        if cfg.extra.get("chat_template"):
            self.tok.chat_template = Path(cfg.extra["chat_template"]).read_text(encoding="utf-8")
        self.tok.padding_side = "left"
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=getattr(torch, dtype))
        if cfg.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, cfg.adapter)
        self.model_obj = model.to(self.device).eval()
        self.model = cfg.model + (f"+{cfg.adapter}" if cfg.adapter else "")
        self.fingerprint = {"dtype": dtype, "tool_call_format": cfg.tool_call_format,
                            "chat_template": cfg.extra.get("chat_template")}
        eos = [self.tok.eos_token_id]
        gen_eos = getattr(getattr(self.model_obj, "generation_config", None), "eos_token_id", None)
        for e in (gen_eos if isinstance(gen_eos, list) else [gen_eos]):
            if e is not None and e not in eos:
                eos.append(e)
        self.eos_ids = [e for e in eos if e is not None]

    def render(self, req: ChatRequest) -> str:
        return self.tok.apply_chat_template(_hf_messages(req.messages), tools=req.tools or None,
                                            add_generation_prompt=True, tokenize=False)

    def _generate_batch(self, reqs: list[ChatRequest], prompts: list[str]) -> list[ChatResponse]:
        torch = self.torch
        sp = reqs[0].sampling  # a group shares its sampling params
        enc = self.tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        kw: dict[str, Any] = {"max_new_tokens": sp.max_tokens, "eos_token_id": self.eos_ids,
                              "pad_token_id": self.tok.pad_token_id}
        if sp.temperature > 0:
            kw.update(do_sample=True, temperature=sp.temperature, top_p=sp.top_p)
            if sp.seed is not None:
                torch.manual_seed(sp.seed)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self.model_obj.generate(**enc, **kw)
        latency = (time.perf_counter() - t0) / len(reqs)
        width = enc["input_ids"].shape[1]
        res = []
        for i, req in enumerate(reqs):
            gen = out[i, width:].tolist()
            n, hit_eos = 0, False
            for t in gen:
                n += 1
                if t in self.eos_ids:
                    hit_eos = True
                    break
                if t == self.tok.pad_token_id:  # padding after another row finished
                    n -= 1
                    break
            text = self.tok.decode(gen[:n], skip_special_tokens=True)
            finish = "stop" if hit_eos else ("length" if n >= sp.max_tokens else "stop")
            for s in sp.stop or []:
                j = text.find(s)
                if j >= 0:
                    text, finish = text[:j], "stop"
            usage = Usage(prompt_tokens=int(enc["attention_mask"][i].sum()), completion_tokens=n)
            resp = ChatResponse(text=text, finish_reason=finish, usage=usage, latency_s=latency)
            if req.tools and req.json_schema is None:
                content, calls, errors = parse_tool_calls(text, self.cfg.tool_call_format)
                if calls:
                    resp.raw_text, resp.text, resp.tool_calls = text, content, calls
                    resp.finish_reason = "tool_calls" if finish == "stop" else finish
                resp.warnings.extend(errors)
            res.append(resp)
        return res

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        import dataclasses

        defaults = self.cfg.sampling()  # requests from LLMClient are resolved already; direct calls may not be
        requests = [dataclasses.replace(r, sampling=r.sampling.resolved(defaults)) for r in requests]
        out: list[ChatResponse | None] = [None] * len(requests)
        prompts: list[str | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            try:
                prompts[i] = self.render(r)
            except Exception as e:  # a template that cannot render this row fails the row, not the batch
                out[i] = ChatResponse(finish_reason="error", error=LLMFailure(
                    "backend", f"chat template failed: {type(e).__name__}: {e}"))
                continue
            sp = r.sampling
            groups.setdefault(json.dumps([sp.temperature, sp.top_p, sp.max_tokens, sp.seed, sp.stop]), []).append(i)
        batches = []
        for idx in groups.values():
            idx.sort(key=lambda i: len(prompts[i]))
            bs = self.cfg.batch_size
            batches += [idx[k:k + bs] for k in range(0, len(idx), bs)]
        it = batches
        if len(batches) > 1:
            from tqdm.auto import tqdm

            it = tqdm(batches, desc=f"generate {Path(self.cfg.model).name}", leave=False)
        for b in it:
            for i, resp in zip(b, self._generate_batch([requests[i] for i in b], [prompts[i] for i in b])):
                out[i] = resp
        return out  # type: ignore[return-value]


register_backend("transformers", TransformersBackend)
