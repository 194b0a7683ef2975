"""Training on CPU with a tiny model: loss/accuracy move, adapters reload and merge, the merged model calls a
tool in the template's format, checks fail early and clearly, resume continues from the checkpoint."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402

from banking_data import write_banking_dataset  # noqa: E402

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

FAST = dict(per_device_train_batch_size=4, save_strategy="no", disable_tqdm=True, seed=0, report_to="none")


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    return {
        "multi": write_banking_dataset(root / "multi", n=12, turns=2),
        "single": write_banking_dataset(root / "single", n=6, turns=1, updates=False,
                                        tools=["list_accounts", "get_balance"]),
    }


@pytest.fixture(scope="session")
def tiny_base(data, tmp_path_factory):
    """The tiny model + tokenizer, built once per session on the multi-turn data."""
    from toolace_mt.training.data import dialogue_to_row, load_mixture
    from toolace_mt.training.template import project_template
    from toolace_mt.training.tiny import build_tiny_model, render_corpus

    rows = [dialogue_to_row(d) for _, d in load_mixture([{"path": str(data["multi"])}, {"path": str(data["single"])}])]
    out = tmp_path_factory.mktemp("tiny") / "base"
    return build_tiny_model(render_corpus(rows, project_template()), out, chat_template=project_template())


def recipe(**kw):
    from toolace_mt.training.config import parse_recipe

    return parse_recipe({"task": "train", "name": "t", **FAST, **kw})


@pytest.mark.slow
def test_lora_run_lowers_loss_and_raises_accuracy(data, tiny_base, tmp_path):
    from toolace_mt.training.train import run_training

    cfg = recipe(model_name_or_path=str(tiny_base), datasets=[{"path": str(data["multi"])}], max_steps=15,
                 learning_rate=3e-3, logging_steps=1, lora_dropout=0.0)
    s = run_training(cfg, tmp_path / "run")
    assert s["mode"] == "lora" and s["steps"] == 15
    assert s["train_loss_last"] < s["train_loss_first"]
    assert s["token_accuracy_last"] > s["token_accuracy_first"]
    assert 0 < s["trainable_params"] < s["total_params"] and s["tokens_per_s"] > 0
    for f in ("adapter/adapter_config.json", "loss_curve.png", "training_log.json", "data_report.json",
              "recipe.yaml", "template_report.json", "chat_template.jinja"):
        assert (tmp_path / "run" / f).is_file(), f
    rep = json.loads((tmp_path / "run" / "data_report.json").read_text())
    # one row per tool list: a dialogue with a tool update is two rows (see training/data.py)
    assert rep["dialogues_loaded"] == 12 and rep["rows_train"] == rep["rows"] >= 12
    assert rep["mask_check"]["rows_bad"] == 0 and rep["total_assistant_tokens"] > 0
    # a finished run returns its summary instead of training again
    assert run_training(cfg, tmp_path / "run")["wall_time_s"] == s["wall_time_s"]


@pytest.mark.slow
def test_chained_full_then_lora_merges_and_generates_tool_call(data, tiny_base, tmp_path):
    """Pretrain the base arm (full FT on single-turn calls), LoRA on top from that run dir, reload, merge, generate."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from toolace_mt.envs import get_env
    from toolace_mt.training.train import run_training

    pre = run_training(recipe(model_name_or_path=str(tiny_base), use_peft=False, turns="first",
                              datasets=[{"path": str(data["single"]), "weight": 6}], max_steps=80,
                              learning_rate=3e-3, logging_steps=10), tmp_path / "pre")
    assert pre["mode"] == "full" and pre["trainable_params"] == pre["total_params"]
    lora = run_training(recipe(model_name_or_path=str(tmp_path / "pre"), merge=True, lora_dropout=0.0,
                               datasets=[{"path": str(data["single"])}], max_steps=3, learning_rate=1e-4,
                               logging_steps=1), tmp_path / "lora")
    assert lora["start_model"].endswith("pre/model") and lora["merged"]

    tok = AutoTokenizer.from_pretrained(tmp_path / "lora" / "adapter")
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "pre" / "model", dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(tmp_path / "lora" / "adapter")).merge_and_unload()
    saved = AutoModelForCausalLM.from_pretrained(lora["merged"], dtype=torch.float32)
    tools = get_env("banking").tool_schemas(["list_accounts", "get_balance"])
    msgs = [{"role": "system", "content": "You are a helpful banking assistant."},
            {"role": "user", "content": "Can you list my bank accounts?"}]
    enc = tok.apply_chat_template(msgs, tools=tools, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        assert torch.allclose(merged(**enc).logits, saved(**enc).logits, atol=1e-4)
        out = saved.generate(**enc, max_new_tokens=40, do_sample=False)
    text = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    m = re.search(r"<tool_call>\n(.*?)\n</tool_call>", text, re.S)  # the template's exact format
    assert m, text
    call = json.loads(m.group(1))
    assert call["name"] in {"list_accounts", "get_balance"} and isinstance(call["arguments"], dict)


def test_mask_check_catches_template_without_markers(tiny_base, data, tmp_path):
    from transformers import AutoTokenizer

    from toolace_mt.training.template import TemplateCheckError, check_template, project_template, require_ok
    from toolace_mt.training.train import run_training

    tok = AutoTokenizer.from_pretrained(tiny_base)
    good = check_template(tok, project_template(), "project")
    assert good.problems == [] and good.mask_ok and good.prefix_preserving and good.stop_token_trained
    plain = re.sub(r"\{%-? *(end)?generation *-?%\}", "", project_template())
    bad = check_template(tok, plain, "file")
    assert not bad.generation_markers and not bad.mask_ok
    with pytest.raises(TemplateCheckError, match="generation"):
        require_ok(bad)
    # markers around the wrong text (the user turn) are caught by decoding the mask
    wrong = project_template().replace(
        "{{- '<|im_start|>user\\n' + (message.content or '') + '<|im_end|>\\n' }}",
        "{%- generation %}{{- '<|im_start|>user\\n' + (message.content or '') + '<|im_end|>\\n' }}{%- endgeneration %}")
    assert wrong != project_template()
    assert any("inside the assistant mask" in p or "span" in p for p in check_template(tok, wrong).problems)
    # and a run with such a template stops before training
    (tmp_path / "plain.jinja").write_text(plain)
    with pytest.raises(TemplateCheckError):
        run_training(recipe(model_name_or_path=str(tiny_base), chat_template=str(tmp_path / "plain.jinja"),
                            datasets=[{"path": str(data["multi"])}], max_steps=1), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_all_rows_longer_than_max_length_fail_clearly(tiny_base, data, tmp_path):
    from toolace_mt.app.cli import main
    from toolace_mt.training.data import DataError
    from toolace_mt.training.train import run_training

    cfg = recipe(model_name_or_path=str(tiny_base), datasets=[{"path": str(data["multi"])}], max_steps=1,
                 max_length=64)
    with pytest.raises(DataError, match=r"max_length=64.*raise max_length to at least"):
        run_training(cfg, tmp_path / "run")
    rep = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert rep["rows_dropped_by_max_length"] == rep["rows_truncated"] == rep["rows"] >= 12  # one row per tool list
    # the CLI turns it into an exit code and a message, not a traceback
    rec = tmp_path / "r.yaml"
    rec.write_text(f"task: train\nmodel_name_or_path: {tiny_base}\ndatasets: [{{path: {data['multi']}}}]\n"
                   "max_length: 64\nmax_steps: 1\n")
    assert main(["train", str(rec), "--out", str(tmp_path / "cli")]) == 2


@pytest.mark.slow
def test_resume_continues_from_checkpoint(tiny_base, data, tmp_path):
    from toolace_mt.training.train import run_training

    # model "tiny": built into run/base_model on the first attempt and reused (same weights) on resume
    kw = dict(model_name_or_path="tiny", tiny_hidden_size=64, tiny_intermediate_size=128,
              datasets=[{"path": str(data["multi"])}], max_steps=6,
              learning_rate=1e-3, logging_steps=1, save_strategy="steps", save_steps=3)
    first = run_training(recipe(**kw), tmp_path / "run")
    assert first["steps"] == 6 and first["resumed_from"] is None
    assert first["start_model"].endswith("run/base_model") and first["template_source"] == "model"
    weights = (tmp_path / "run" / "base_model" / "model.safetensors").read_bytes()
    # simulate a run killed after step 3
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "checkpoint-6")
    (tmp_path / "run" / "summary.json").unlink()
    again = run_training(recipe(**kw), tmp_path / "run")
    assert again["resumed_from"].endswith("checkpoint-3")
    assert again["steps"] == 6 and 0 < again["tokens_this_session"] < again["tokens_seen"]
    assert (tmp_path / "run" / "base_model" / "model.safetensors").read_bytes() == weights
    log = json.loads((tmp_path / "run" / "training_log.json").read_text())
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3, 4, 5, 6]  # steps 1-3 come from the checkpoint


def test_tiny_model_is_deterministic(tmp_path):
    from toolace_mt.training.tiny import TinySpec, build_tiny_model

    texts = ["<|im_start|>user\nhello there, list my accounts<|im_end|>"] * 3 + ["<tool_call>\n{\"name\": \"x\"}"] * 3
    a = build_tiny_model(texts, tmp_path / "a", TinySpec(hidden_size=32, intermediate_size=64, seed=3))
    b = build_tiny_model(texts, tmp_path / "b", TinySpec(hidden_size=32, intermediate_size=64, seed=3))
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(a)
    ids = tok.encode("<tool_call>\n{}", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True).startswith("<tool_call>")  # P6: tags are not special


def test_llama31_template_masks_calls_and_is_chosen_for_llama(tiny_base):
    """The project's Llama 3.1 training template passes the same checks (with Llama's special tokens added)."""
    from transformers import AutoTokenizer

    from banking_data import banking_dialogue
    from toolace_mt.training.data import dialogue_to_row
    from toolace_mt.training.template import builtin_template, check_template, select_template

    tok = AutoTokenizer.from_pretrained(tiny_base)
    tok.add_special_tokens({"additional_special_tokens": ["<|begin_of_text|>", "<|start_header_id|>",
                                                         "<|end_header_id|>", "<|eot_id|>"]})
    tok.bos_token = "<|begin_of_text|>"
    row = dialogue_to_row(banking_dialogue(3, tool_update=True))
    rep = check_template(tok, builtin_template("llama3_1"), "llama3_1",
                         samples=[(row["messages"], json.loads(row["tools"]))])
    assert rep.problems == [], rep.problems
    text = tok.apply_chat_template(row["messages"], tools=json.loads(row["tools"]),
                                   chat_template=builtin_template("llama3_1"), tokenize=False)
    assert '{"name": "list_payees", "parameters": {}}<|eot_id|>' in text and "list_payees" in text
    import trl  # TRL can patch Llama 3.0's template but not 3.1's: auto falls back to ours

    tok.chat_template = (Path(trl.__file__).parent / "chat_templates" / "llama3_1.jinja").read_text()
    assert select_template(tok)[1] == "llama3_1"
    tok.chat_template = (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text()
    assert select_template(tok)[1] == "trl"


def test_compact_template_lists_signatures_masks_calls_and_is_shorter(tiny_base):
    """The compact template passes the mask checks, lists each tool as one signature line (required vs optional
    arguments, enum values, the description), lists a mid-dialogue tool update the same way, keeps the
    project's call wire format, and renders the same row in far fewer tokens than the JSON-schema listing."""
    from transformers import AutoTokenizer

    from banking_data import banking_dialogue
    from toolace_mt.training.data import dialogue_to_row
    from toolace_mt.training.template import builtin_template, check_template, project_template

    tok = AutoTokenizer.from_pretrained(tiny_base)
    row = dialogue_to_row(banking_dialogue(3, tool_update=True))
    msgs, tools = row["messages"], json.loads(row["tools"])
    compact = builtin_template("compact")
    rep = check_template(tok, compact, "compact", samples=[(msgs, tools)])
    assert rep.problems == [], rep.problems
    text = tok.apply_chat_template(msgs, tools=tools, chat_template=compact, tokenize=False)
    schema = {"name": "pay", "description": "Pay someone.", "parameters": {"type": "object", "properties": {
        "payee_id": {"type": "string"}, "mode": {"type": "string", "enum": ["now", "later"]},
        "amount": {"type": ["number", "null"]}}, "required": ["payee_id", "mode"]}}
    line = tok.apply_chat_template([{"role": "user", "content": "x"}], tools=[{"type": "function", "function": schema}],
                                   chat_template=compact, tokenize=False)
    assert '\npay(payee_id: string, mode: string one of ["now", "later"], amount?: number|null): Pay someone.\n' \
        in line
    assert '<tool_call>\n{"name": "list_payees", "arguments": {}}\n</tool_call>' in text
    updates = [m for m in msgs if m["role"] == "system" and m.get("tools")]
    if updates:  # a tool update as a system message is listed with the same signature lines
        name = updates[0]["tools"][0]["function"]["name"]
        assert "New tools:\n<tools>\n" + name + "(" in text
    full = tok.apply_chat_template(msgs, tools=tools, chat_template=project_template(), tokenize=True,
                                  return_dict=True)["input_ids"]
    short = tok.apply_chat_template(msgs, tools=tools, chat_template=compact, tokenize=True,
                                   return_dict=True)["input_ids"]
    assert len(short) < 0.8 * len(full)


@pytest.mark.slow
def test_model_loss_trains_as_trl_fused_loss(data, tiny_base, tmp_path):
    """`fused_loss: false` (the model's own cross-entropy, training/loss.py) is the same loss as TRL's fused
    log-softmax: the same steps on the same batches log the same losses and token accuracies (assistant tokens
    only, LoRA), and the recipe written to the run directory says which ran."""
    from toolace_mt.training.train import run_training

    logs = {}
    for fused in (True, False):
        cfg = recipe(model_name_or_path=str(tiny_base), datasets=[{"path": str(data["multi"])}], max_steps=4,
                     learning_rate=3e-3, logging_steps=1, lora_dropout=0.0, fused_loss=fused)
        run = tmp_path / f"fused_{fused}"
        run_training(cfg, run)
        logs[fused] = [e for e in json.loads((run / "training_log.json").read_text()) if "loss" in e]
        assert ("fused_loss: false" in (run / "recipe.yaml").read_text()) is (not fused)
    assert len(logs[True]) == len(logs[False]) == 4
    for a, b in zip(logs[True], logs[False]):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-4)
        assert float(a["mean_token_accuracy"]) == pytest.approx(float(b["mean_token_accuracy"]), abs=1e-6)
    assert float(logs[True][-1]["loss"]) < float(logs[True][0]["loss"])  # it trained: the comparison is not vacuous
