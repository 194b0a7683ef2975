"""Tiny-model tokenizer: digit runs kept together with a Llama tiny model, as saved and as AutoTokenizer loads it."""
from __future__ import annotations

import pytest


def test_llama_tiny_keeps_digit_runs_after_reload(tmp_path):
    from transformers import AutoTokenizer

    from toolace_mt.training.template import project_template
    from toolace_mt.training.tiny import TinySpec, build_tiny_model

    texts = [f"account ACC{n:05d} sent {n * 37 % 1000} to IBAN DE{n * 7919:012d}" for n in range(400)]
    spec = TinySpec(hidden_size=32, intermediate_size=64, vocab_size=600, arch="llama", digit_group=3)
    d = build_tiny_model(texts, tmp_path / "m", spec, chat_template=project_template())
    tok = AutoTokenizer.from_pretrained(d)
    pre = [w for w, _ in tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str("ACC27131")]
    assert pre == ["ACC", "271", "31"]
    from tokenizers import Tokenizer

    saved = Tokenizer.from_file(str(d / "tokenizer.json"))
    for t in texts[:50]:
        assert tok(t, add_special_tokens=False)["input_ids"] == saved.encode(t, add_special_tokens=False).ids
    n = len(tok("ACC27131 DE001234567890", add_special_tokens=False)["input_ids"])
    assert n < 5 + 12 + 2  # per-digit splitting needs 5 + 12 tokens for the digits alone, plus ACC and DE
    assert "Qwen2" not in type(tok).__name__  # the saved pipeline is the one that runs
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(d).config.model_type == "llama"


def test_digit_grouping_needs_llama():
    from toolace_mt.training.config import ModelArguments
    from toolace_mt.training.tiny import TinySpec, pretokenize_regex

    with pytest.raises(ValueError, match="tiny_arch: llama"):
        TinySpec(digit_group=3)
    with pytest.raises(ValueError, match="tiny_arch: llama"):
        ModelArguments(tiny_digit_group=2)
    assert "{1,3}" in pretokenize_regex(3) and "{1," not in pretokenize_regex(1)


def test_bare_words_make_a_value_the_same_tokens_in_text_and_json(tmp_path):
    """With bare words an id or a name is the same token sequence after a space as inside a JSON string (Qwen2's
    regex glues the space to the word, so the user's `` ACC35`` and the call's ``"ACC35"`` share no token);
    the setting survives a reload and needs the Llama tiny model."""
    from transformers import AutoTokenizer

    from toolace_mt.training.config import ModelArguments
    from toolace_mt.training.template import project_template
    from toolace_mt.training.tiny import TinySpec, build_tiny_model

    texts = [f'Send {n} from ACC{n % 90 + 10} to Omar. {{"account": "ACC{n % 90 + 10}", "name": "Omar"}}'
             for n in range(300)]

    def value_tokens(tok, text, value):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        want = tok(value, add_special_tokens=False)["input_ids"]
        return any(ids[i:i + len(want)] == want for i in range(len(ids)))

    for bare in (False, True):
        spec = TinySpec(hidden_size=32, intermediate_size=64, vocab_size=500, arch="llama", digit_group=3,
                        bare_words=bare)
        tok = AutoTokenizer.from_pretrained(build_tiny_model(texts, tmp_path / str(bare), spec,
                                                             chat_template=project_template()))
        found = [value_tokens(tok, t, v) for t in ("pay ACC35 now", '{"account": "ACC35"}', "ask Omar",
                                                    '{"name": "Omar"}') for v in ("ACC35", "Omar") if v in t]
        assert all(found) is bare, (bare, found)
    with pytest.raises(ValueError, match="tiny_arch: llama"):
        ModelArguments(tiny_bare_words=True)


def test_whole_ids_make_a_short_id_one_token_in_text_and_json(tmp_path):
    """With whole ids a short id (capitals + digits) is ONE token after a space and inside a JSON string, while a
    plain word and a bare number are tokenized as with bare words; the setting survives a reload."""
    from transformers import AutoTokenizer

    from toolace_mt.training.config import ModelArguments
    from toolace_mt.training.template import project_template
    from toolace_mt.training.tiny import TinySpec, build_tiny_model

    texts = [f'Send {n} from ACC{n % 90 + 10} to Omar. {{"account": "ACC{n % 90 + 10}", "name": "Omar"}}'
             for n in range(300)]
    spec = TinySpec(hidden_size=32, intermediate_size=64, vocab_size=700, arch="llama", digit_group=3,
                    bare_words=True, whole_ids=True)
    tok = AutoTokenizer.from_pretrained(build_tiny_model(texts, tmp_path / "m", spec, chat_template=project_template()))
    for text in ("pay ACC35 now", '{"account": "ACC35"}'):
        toks = tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])
        assert "ACC35" in toks, toks
    # a lower-case word next to a number is not an id: letters and digits stay apart
    toks = tok.convert_ids_to_tokens(tok("Send 35 from x35", add_special_tokens=False)["input_ids"])
    assert not [t for t in toks if any(c.isalpha() for c in t) and any(c.isdigit() for c in t)], toks
    with pytest.raises(ValueError, match="tiny_bare_words"):
        ModelArguments(tiny_arch="llama", tiny_whole_ids=True)
