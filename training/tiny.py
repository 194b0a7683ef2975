"""A tiny Qwen2 or Llama model and a BPE tokenizer trained locally on the data (no download).

The tokenizer uses Qwen2's normalizer and pre-tokenizer pipeline. With ``arch="qwen2"`` it must be exactly
Qwen2's, because `AutoTokenizer` rebuilds them from `model_type=qwen2` and ignores the ones in tokenizer.json
(P1) -- and Qwen2's regex splits every digit, so an id like ``ACC27131`` costs 6 tokens that a tiny model must
copy one by one. With ``arch="llama"`` (same decoder block family: RMSNorm, rotary, SwiGLU, grouped KV heads)
`AutoTokenizer` keeps the saved tokenizer.json as is, so ``digit_group=k`` can keep runs of up to k digits
together (Unicode digit class widened from one to k repeats in the same regex, like GPT-4's cl100k), and
``bare_words=True`` replaces the regex by three classes (letters, digit runs, everything else), so a word or an
id is one and the same token after a space, a quote or a bracket. ``whole_ids=True`` adds one class before those three: capitals
followed by a digit run (``ACC35``, ``C38``) stay one pre-token, so BPE makes each short id one token (533 of the
534 ids of the CPU tier's data at 4096 merges) and copying an id is copying one token, not a prefix and then the
number that follows the right one of several equal prefixes. Why: Qwen2's regex glues a leading space or
quote to a word, so ``ACC35`` in the user's text is `` ACC`` ``35`` but ``ACC`` ``35`` inside the JSON call;
a model trained from scratch must then learn that two different tokens match before it can copy a value,
while a copy of identical tokens is the first thing small transformers learn (induction heads). The tool tags are added as
NON-special tokens, as in Qwen2.5, so decoding with ``skip_special_tokens=True`` keeps them (P6). The saved
directory loads with `AutoModelForCausalLM` / `AutoTokenizer` (and vLLM). Same texts + same seed -> same
model and tokenizer.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TOOL_TAGS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<tools>", "</tools>"]


@dataclass
class TinySpec:
    hidden_size: int = 128
    intermediate_size: int = 256
    num_layers: int = 2
    num_heads: int = 2
    num_kv_heads: int = 1
    vocab_size: int = 1024
    max_position: int = 4096
    seed: int = 0
    arch: str = "qwen2"  # qwen2 | llama
    digit_group: int = 1  # >1 needs arch llama (see module doc)
    bare_words: bool = False  # words never carry a leading space or quote (needs arch llama; see module doc)
    whole_ids: bool = False  # capitals + digits (ACC35) is one pre-token (needs bare_words; see module doc)

    def __post_init__(self):
        check_tiny_tokenizer(self.arch, self.digit_group, self.bare_words, self.whole_ids)


ARCHS = ("qwen2", "llama")


def check_tiny_tokenizer(arch: str, digit_group: int, bare_words: bool = False, whole_ids: bool = False) -> None:
    if arch not in ARCHS:
        raise ValueError(f"tiny_arch: {arch!r} is not one of {', '.join(ARCHS)}")
    if not 1 <= int(digit_group) <= 9:
        raise ValueError(f"tiny_digit_group: {digit_group} is not between 1 and 9")
    if arch == "qwen2" and digit_group != 1:
        raise ValueError("tiny_digit_group > 1 needs tiny_arch: llama (AutoTokenizer rebuilds Qwen2's pre-tokenizer, "
                         "which splits every digit, and would ignore the grouping)")
    if whole_ids and not bare_words:
        raise ValueError("tiny_whole_ids needs tiny_bare_words: true (it adds one class to the bare-words regex)")
    if arch == "qwen2" and bare_words:
        raise ValueError("tiny_bare_words needs tiny_arch: llama (AutoTokenizer rebuilds Qwen2's pre-tokenizer and "
                         "would ignore it)")


def pretokenize_regex(digit_group: int = 1, bare_words: bool = False, whole_ids: bool = False) -> str:
    """Qwen2's pre-tokenizer regex, with runs of up to `digit_group` digits kept together; with `bare_words`,
    runs of letters, runs of up to `digit_group` digits, and runs of everything else are separate pre-tokens;
    `whole_ids` first keeps capitals followed by up to `digit_group` digits (``ACC35``, ``C38``) together."""
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    if bare_words:
        ids = r"\p{Lu}+\p{N}{1,%d}|" % int(digit_group) if whole_ids else ""
        return ids + r"\p{L}+|\p{N}{1,%d}|[^\p{L}\p{N}]+" % int(digit_group)
    if digit_group == 1:
        return PRETOKENIZE_REGEX
    single = r"|\p{N}|"
    if single not in PRETOKENIZE_REGEX:  # a transformers release changed the regex: fail loudly, never silently
        raise RuntimeError("Qwen2's PRETOKENIZE_REGEX has no single-digit alternative to widen")
    return PRETOKENIZE_REGEX.replace(single, r"|\p{N}{1,%d}|" % int(digit_group), 1)


def _fast_tokenizer(tok, chat_template: str | None, max_len: int):
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                 model_max_length=max_len)
    if chat_template:
        hf.chat_template = chat_template
    return hf


def render_corpus(rows: Iterable[dict], chat_template: str) -> list[str]:
    """The training texts as the template renders them (so merges cover the wire format too)."""
    import json

    from tokenizers import Tokenizer, models

    hf = _fast_tokenizer(Tokenizer(models.BPE()), chat_template, 1 << 20)
    out = []
    for r in rows:
        tools = r.get("tools")
        tools = json.loads(tools) if isinstance(tools, str) else tools
        out.append(hf.apply_chat_template(r["messages"], tools=tools or None, tokenize=False))
    return out


def train_tokenizer(texts: list[str], vocab_size: int, max_len: int, chat_template: str | None,
                    digit_group: int = 1, bare_words: bool = False, whole_ids: bool = False):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()  # P1: what Qwen2Tokenizer rebuilds on load
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pretokenize_regex(digit_group, bare_words, whole_ids)), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TAGS])  # P6
    return _fast_tokenizer(tok, chat_template, max_len)


def build_tiny_model(texts: list[str], out_dir: str | Path, spec: TinySpec | None = None,
                     chat_template: str | None = None) -> Path:
    """Train the tokenizer on `texts`, build a randomly initialised Qwen2 / Llama model, save both to `out_dir`."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    spec = spec or TinySpec()
    if not texts:
        raise ValueError("tiny model: no text to train the tokenizer on")
    out_dir = Path(out_dir)
    hf = train_tokenizer(texts, spec.vocab_size, spec.max_position, chat_template, spec.digit_group,
                         spec.bare_words, spec.whole_ids)
    config_cls, model_cls = (Qwen2Config, Qwen2ForCausalLM) if spec.arch == "qwen2" else (LlamaConfig, LlamaForCausalLM)
    cfg = config_cls(vocab_size=len(hf), hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
                      num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads,
                      num_key_value_heads=spec.num_kv_heads, tie_word_embeddings=True,
                      max_position_embeddings=spec.max_position, eos_token_id=hf.eos_token_id,
                      pad_token_id=hf.pad_token_id, bos_token_id=hf.convert_tokens_to_ids("<|endoftext|>"))
    torch.manual_seed(spec.seed)
    model = model_cls(cfg)
    model.generation_config = GenerationConfig(eos_token_id=hf.eos_token_id, pad_token_id=hf.pad_token_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    hf.save_pretrained(out_dir)
    return out_dir
