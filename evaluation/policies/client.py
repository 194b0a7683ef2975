"""`transformers`, `openai` and `vllm` policies: any `toolace_mt.llm` backend behind `LLMClient.chat(requests)`.

One LLM path for evaluation and generation alike (same backends, token counts, cleaning of model text).
With ``tool_call_format: native`` the tools go to the server's tool-call API and its parsed calls are used.
``transformers`` renders the tools with the checkpoint's own chat template (the way the model was trained;
``extra.prompted_tools: true`` describes them in a system prompt instead) and the model's full text is parsed
here with `toolace_mt.llm.toolparse`; otherwise (openai/vllm, not native) the tools are described in a system
prompt and the text is parsed the same way.
One `chat` call per batch, so a vLLM backend gets the whole batch at once. ``policy.extra.backend`` routes
the policy to another registered `toolace_mt.llm` backend (``scripted`` in tests); other ``extra`` keys go
to the backend.
"""
from __future__ import annotations

import json

from ..policy import PolicyInput, PolicyOutput
from . import PolicyConfig, register_policy
from .prompting import chat_messages, text_to_output, tool_prompt


@register_policy("transformers", "openai", "vllm")
class ClientPolicy:
    @staticmethod
    def check_config(cfg: PolicyConfig) -> None:
        if not cfg.model:
            raise ValueError(f"model is required for policy kind {cfg.kind!r}")

    @staticmethod
    def native_tool_calls(cfg: PolicyConfig) -> bool:
        """A served model (openai, vllm) can take the tools through the server's tool-call API."""
        return cfg.kind != "transformers"

    def __init__(self, cfg: PolicyConfig):
        from toolace_mt.llm.client import LLMConfig, make_client

        self.cfg = cfg
        self.name = cfg.label
        self.native = cfg.tool_call_format == "native"
        extra = dict(cfg.extra)
        # transformers: tools rendered by the chat template itself unless the recipe asks for a prompted list
        self.template_tools = cfg.kind == "transformers" and not extra.pop("prompted_tools", False)
        backend = extra.pop("backend", cfg.kind)  # e.g. "scripted" in tests; default: the policy kind
        self.client = make_client(LLMConfig(backend=backend, model=cfg.model, base_url=cfg.base_url,
                                            api_key_env=cfg.api_key_env, temperature=cfg.temperature,
                                            max_tokens=cfg.max_new_tokens, adapter=cfg.adapter, dtype=cfg.dtype,
                                            device=cfg.device, batch_size=cfg.batch_size, extra=extra,
                                            timeout_s=cfg.timeout_s, max_retries=cfg.max_retries,
                                            tool_call_format=cfg.tool_call_format
                                            if cfg.tool_call_format != "native" else "auto"))

    def request(self, inp: PolicyInput):
        from toolace_mt.llm.types import ChatRequest, SamplingParams

        sys_prompt = self.cfg.system_prompt
        if not self.native and not self.template_tools and inp.tools:
            sys_prompt = tool_prompt(inp.tools, self.cfg.tool_call_format) + ("\n\n" + sys_prompt if sys_prompt else "")
        return ChatRequest(messages=chat_messages(inp.messages, sys_prompt),
                           tools=(inp.tools or None) if self.native or self.template_tools else None,
                           sampling=SamplingParams(temperature=self.cfg.temperature, max_tokens=self.cfg.max_new_tokens),
                           stage="evaluate", method=self.name)

    def act(self, batch: list[PolicyInput]) -> list[PolicyOutput]:
        resps = self.client.chat([self.request(inp) for inp in batch])
        outs = []
        for r in resps:
            if r.error is not None:
                outs.append(PolicyOutput(content=r.error.raw or "", raw=r.error.raw or "",
                                         parse_errors=[f"{r.error.kind}: {r.error.message}"]))
                continue
            if self.template_tools:  # the whole text, as the model wrote it, parsed here like every prompted policy
                outs.append(text_to_output(r.raw_text or r.text, self.cfg.tool_call_format, r.usage.prompt_tokens,
                                           r.usage.completion_tokens))
            elif self.native:
                calls, errors = [], []
                for c in r.tool_calls:
                    fn = c.get("function", c)
                    args = fn.get("arguments") or {}
                    if isinstance(args, str):
                        try:
                            args = json.loads(args)
                        except json.JSONDecodeError as e:
                            errors.append(f"{fn.get('name')}: arguments are not JSON: {e}")
                            continue
                    calls.append({"name": fn.get("name", ""), "arguments": args})
                outs.append(PolicyOutput(content=r.text, tool_calls=calls, raw=r.text, parse_errors=errors,
                                         prompt_tokens=r.usage.prompt_tokens, completion_tokens=r.usage.completion_tokens))
            else:
                outs.append(text_to_output(r.text, self.cfg.tool_call_format, r.usage.prompt_tokens, r.usage.completion_tokens))
        return outs
