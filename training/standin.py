"""Stand-ins for models we cannot download: a byte-level BPE tokenizer trained here that carries a model family's
special tokens and chat template, and a randomly initialised Llama-3-architecture model.

Used by ``validate --deep`` (the tokenizer renders the real chat template of a model whose tokenizer is not on
disk) and by ``doctor`` (a ~1B Llama-3 model in bf16 for the GPU smoke run, a tiny one on CPU). Random weights:
what these models say is noise; they prove the mechanics (rendering, masks, engines, parsing, training steps).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Optional

# Special tokens per family, as the released tokenizers define them (the template refers to them by text).
FAMILIES: dict[str, dict[str, Any]] = {
    "llama": {  # Llama 3.1 (meta-llama/Llama-3.1-8B-Instruct tokenizer_config.json)
        "special": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                    "<|eot_id|>", "<|eom_id|>", "<|python_tag|>", "<|finetune_right_pad_id|>"],
        "plain": [],
        "bos": "<|begin_of_text|>", "eos": "<|eot_id|>", "pad": "<|finetune_right_pad_id|>",
    },
    "qwen2": {  # Qwen2.5: tool tags are ordinary added tokens, so skip_special_tokens keeps them
        "special": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        "plain": ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<tools>", "</tools>"],
        "bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>",
    },
}

PROBE_TOOLS = [{"type": "function", "function": {
    "name": "get_balance", "description": "Balance of an account.",
    "parameters": {"type": "object", "properties": {"account_id": {"type": "string"}}, "required": ["account_id"]}}}]
PROBE_MESSAGES = [
    {"role": "system", "content": "You are a careful banking assistant."},
    {"role": "user", "content": "What is the balance of my account ACC12345 please?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_balance", "arguments": {"account_id": "ACC12345"}}}]},
    {"role": "tool", "tool_call_id": "c1", "name": "get_balance", "content": '{"balance": 1520.75}'},
    {"role": "assistant", "content": "Your balance is 1520.75 USD."},
]


def family_of(model_type: str) -> str:
    if model_type in FAMILIES:
        return model_type
    if model_type.startswith("qwen"):
        return "qwen2"
    raise ValueError(f"no stand-in tokenizer for model_type {model_type!r} (known: {', '.join(FAMILIES)})")


def train_tokenizer(texts: Iterable[str], family: str, chat_template: Optional[str], vocab_size: int = 2048,
                    max_len: int = 131072):
    """A byte-level BPE `PreTrainedTokenizerFast` with `family`'s special tokens and `chat_template`."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    fam = FAMILIES[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=list(fam["special"]),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer)
    if fam["plain"]:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in fam["plain"]])
    kw = {k + "_token": fam[k] for k in ("bos", "eos", "pad") if fam[k]}
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_len, **kw)
    if chat_template:
        hf.chat_template = chat_template
    return hf


def corpus_texts(chat_template: str, family: str, rows: Iterable[dict] = ()) -> list[str]:
    """Training texts: conversations rendered with the template itself (so merges cover the wire format)."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    fam = FAMILIES[family]
    kw = {k + "_token": fam[k] for k in ("bos", "eos", "pad") if fam[k]}
    renderer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), **kw)
    renderer.chat_template = chat_template
    out = []
    for r in [{"messages": PROBE_MESSAGES, "tools": PROBE_TOOLS}, *rows]:
        tools = r.get("tools")
        tools = json.loads(tools) if isinstance(tools, str) else tools
        try:
            out.append(renderer.apply_chat_template(r["messages"], tools=tools or None, tokenize=False))
        except Exception:  # a row this template cannot render still contributes its raw text
            out.append(json.dumps(r["messages"], ensure_ascii=False))
    return out


def build_llama(out_dir: str | Path, tokenizer, hidden_size: int, intermediate_size: int, num_layers: int,
                num_heads: int, num_kv_heads: int, dtype: str = "bfloat16", max_position: int = 8192,
                seed: int = 0) -> Path:
    """A random-init Llama-3-architecture model (GQA, SwiGLU, RMSNorm, RoPE theta 5e5) saved with `tokenizer`."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    eos = tokenizer.convert_tokens_to_ids(["<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"])
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
                      num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
                      max_position_embeddings=max_position, rope_theta=500000.0, rms_norm_eps=1e-5,
                      tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=eos,
                      pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).to(getattr(torch, dtype))
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
                                               bos_token_id=tokenizer.bos_token_id)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
