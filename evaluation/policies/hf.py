"""`transformers` policy: a local checkpoint (+ optional PEFT adapter), batched greedy generation.

Each row is rendered with the tokenizer's own chat template *with that row's tools* (tools differ per task and
may change mid-conversation), rows are left-padded into batches of ``batch_size`` (sorted by length so padding
stays small), and the generated text is parsed with `toolace_mt.llm.toolparse`.
"""
from __future__ import annotations

from ..policy import PolicyInput, PolicyOutput
from . import PolicyConfig, register_policy
from .prompting import chat_messages, text_to_output, tool_prompt


class TransformersPolicy:
    def __init__(self, cfg: PolicyConfig):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg = cfg
        self.name = cfg.label
        self.tok = AutoTokenizer.from_pretrained(cfg.model)
        if self.tok.chat_template is None:
            raise ValueError(f"tokenizer of {cfg.model} has no chat template; the transformers policy needs one")
        self.tok.padding_side = "left"
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        dtype = cfg.dtype if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
        model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=dtype)
        if cfg.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, cfg.adapter)
        device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(device).eval()
        self.device = device
        self.prompted = bool(cfg.extra.get("prompted_tools", False))  # tools in the system prompt, not the template

    def render(self, inp: PolicyInput) -> str:
        sys_prompt = self.cfg.system_prompt
        tools = inp.tools or None
        if self.prompted and inp.tools:
            sys_prompt = tool_prompt(inp.tools, self.cfg.tool_call_format) + ("\n\n" + sys_prompt if sys_prompt else "")
            tools = None
        msgs = chat_messages(inp.messages, sys_prompt)
        return self.tok.apply_chat_template(msgs, tools=tools, add_generation_prompt=True, tokenize=False)

    def act(self, batch: list[PolicyInput]) -> list[PolicyOutput]:
        import torch

        prompts = [self.render(inp) for inp in batch]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        outs: list[PolicyOutput | None] = [None] * len(batch)
        bs = self.cfg.batch_size
        for s in range(0, len(order), bs):
            idx = order[s:s + bs]
            enc = self.tok([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(self.device) for k, v in enc.items()}
            with torch.no_grad():
                gen = self.model.generate(**enc, max_new_tokens=self.cfg.max_new_tokens, do_sample=False,
                                          pad_token_id=self.tok.pad_token_id)
            n_in = enc["input_ids"].shape[1]
            for j, i in enumerate(idx):
                new = gen[j, n_in:]
                text = self.tok.decode(new, skip_special_tokens=True)
                outs[i] = text_to_output(text, self.cfg.tool_call_format,
                                         prompt_tokens=int(enc["attention_mask"][j].sum()),
                                         completion_tokens=int((new != self.tok.pad_token_id).sum()))
        return outs  # type: ignore[return-value]


register_policy("transformers")(TransformersPolicy)
