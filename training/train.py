"""`run_training`: a thin layer over TRL's SFTTrainer (+ PEFT LoRA, or a full fine-tune).

What this layer adds to a plain TRL script, and nothing more: the model to start from (an HF path, a tiny
model built on the data, or a previous run's output so runs chain), the chat template choice and its checks,
the data checks before training (`data.py`), resume from the last checkpoint, and the run directory:

    recipe.yaml            resolved recipe (`prepare_run_dir`: a changed recipe is refused with a diff)
    base_model/            tiny model + tokenizer (tiny runs), or the merged start model (chained LoRA runs)
    copy_warmup/           the copy warm-up's model/ and summary.json (copy probe curve; ``copy_warmup_steps``)
    data_report.json       token lengths, truncated / dropped rows, mask and tool checks
    template_report.json   which template and the checks it passed
    checkpoints/           Trainer checkpoints (resume)
    adapter/ | model/      LoRA adapter (+ tokenizer and template) | full fine-tuned model
    merged/                base + adapter merged (``merge: true``)
    training_log.json      Trainer log_history;  loss_curve.png
    summary.json           steps, tokens, loss / token accuracy first and last, wall time, tokens/s, machine
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

from toolace_mt.runs import atomic_write_json, atomic_write_text, machine_info, prepare_run_dir

from .config import TrainConfig, build_sft_config
from .data import DataError, check_rows, load_rows, to_hf
from .template import check_template, require_ok, select_template


# ------------------------------------------------------------------------------------------------ model
def find_run_model(path: Path) -> Optional[tuple[str, Path]]:
    """If `path` is a `toolace-mt train` run directory, (kind, dir) of its model: merged | model | adapter."""
    if not (path / "summary.json").is_file():
        return None
    for kind in ("merged", "model", "adapter"):
        if (path / kind / "config.json").is_file() or (path / kind / "adapter_config.json").is_file():
            return kind, path / kind
    return None


def _torch_dtype(name: str):
    import torch

    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return getattr(torch, name)


def resolve_start_model(cfg: TrainConfig, out: Path, rows: list[dict[str, Any]], seed: int) -> Path:
    """The directory to load the start model and tokenizer from (building / merging it into out/base_model)."""
    from .template import project_template

    m = cfg.model
    base_dir = out / "base_model"
    if (base_dir / "config.json").is_file():
        return base_dir  # built by an earlier attempt of this run: resume with the very same weights
    if m.is_tiny:
        from .tiny import TinySpec, build_tiny_model, render_corpus

        from .template import BUILTIN_TEMPLATES, builtin_template

        tmpl = (project_template() if m.chat_template == "auto" else builtin_template(m.chat_template)
                if m.chat_template in BUILTIN_TEMPLATES else Path(m.chat_template).read_text())
        spec = TinySpec(m.tiny_hidden_size, m.tiny_intermediate_size, m.tiny_num_layers, m.tiny_num_heads,
                        m.tiny_num_kv_heads, m.tiny_vocab_size, m.tiny_max_position, seed, m.tiny_arch, m.tiny_digit_group,
                        m.tiny_bare_words, m.tiny_whole_ids)
        return build_tiny_model(render_corpus(rows, tmpl), base_dir, spec, chat_template=tmpl)
    src = Path(m.model_name_or_path)
    found = find_run_model(src) if src.is_dir() else None
    if found is None and (src / "adapter_config.json").is_file() and not (src / "config.json").is_file():
        found = ("adapter", src)  # an adapter directory itself
    if found is None:
        return src if src.exists() else Path(m.model_name_or_path)  # an HF hub id is passed through
    kind, d = found
    if kind != "adapter":
        return d
    # a previous LoRA run without a merged model: merge it once into base_model/, so this run's adapter has a
    # real base directory to point at (adapter_config.json base_model_name_or_path)
    return merge_adapter(d, base_dir, m.dtype)


def load_model_and_tokenizer(path: Path | str, cfg: TrainConfig):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw: dict[str, Any] = {"dtype": _torch_dtype(cfg.model.dtype)}
    if cfg.model.attn_implementation:
        kw["attn_implementation"] = cfg.model.attn_implementation
    if cfg.sft.get("trust_remote_code"):
        kw["trust_remote_code"] = True
    model = AutoModelForCausalLM.from_pretrained(str(path), **kw)
    tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=bool(cfg.sft.get("trust_remote_code")))
    if tok.pad_token is None:  # Llama 3 has none; TRL needs one for batching
        tok.pad_token = tok.eos_token
    return model, tok


def merge_adapter(adapter_dir: Path, out_dir: Path, dtype: str = "auto") -> Path:
    """Reload base + saved adapter and merge them (from the files, so it also works after FSDP / ZeRO-3)."""
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    model = AutoPeftModelForCausalLM.from_pretrained(str(adapter_dir), dtype=_torch_dtype(dtype))
    model.merge_and_unload().save_pretrained(str(out_dir))
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(str(out_dir))
    return out_dir


def copy_warmup(cfg: TrainConfig, out: Path, model, tok, rows: list[dict[str, Any]], seed: int):
    """(model, warm-up summary): the copy warm-up (`copy_warmup.py`) run into out/copy_warmup, or its saved
    model when an earlier attempt of this run finished it (a resumed run does not warm up twice)."""
    from accelerate import PartialState

    from .copy_warmup import WarmupSpec, run_copy_warmup

    w, wdir = cfg.warmup, out / "copy_warmup"
    if (wdir / "summary.json").is_file() and (wdir / "model" / "config.json").is_file():
        return load_model_and_tokenizer(wdir / "model", cfg)[0], json.loads((wdir / "summary.json").read_text())
    if PartialState().num_processes > 1:  # chosen: a tiny model's warm-up is seconds to minutes on one device
        raise DataError("copy_warmup_steps: the copy warm-up runs in one process; run it without a launcher")
    spec = WarmupSpec(steps=w.copy_warmup_steps, lr=w.copy_warmup_lr, batch_size=w.copy_warmup_batch_size,
                      span=(w.copy_warmup_span[0], w.copy_warmup_span[1]), length=w.copy_warmup_length,
                      rows=w.copy_warmup_rows, seed=seed, target=w.copy_warmup_target)
    try:
        summary = run_copy_warmup(model, tok, rows, spec, wdir)
    except ValueError as e:  # no argument value in the data to build copy lines from
        raise DataError(str(e)) from None
    return model, summary


# ------------------------------------------------------------------------------------------------ outputs
def _series(log: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    return [(int(e.get("step", 0)), float(e[key])) for e in log if key in e and isinstance(e[key], (int, float))]


def plot_curves(log: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, style in (("loss", "-"), ("eval_loss", "--")):
        s = _series(log, key)
        if s:
            ax.plot([x for x, _ in s], [y for _, y in s], style, label=key)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    acc = _series(log, "mean_token_accuracy")
    if acc:
        ax2 = ax.twinx()
        ax2.plot([x for x, _ in acc], [y for _, y in acc], ":", color="tab:green", label="token accuracy")
        ax2.set_ylabel("token accuracy")
        ax2.set_ylim(0, 1.05)
        ax2.legend(loc="center right")
    if ax.get_lines():
        ax.legend(loc="upper center")
    else:  # fewer steps than logging_steps: nothing was logged
        ax.text(0.5, 0.5, "no loss logged (fewer steps than logging_steps)", ha="center", transform=ax.transAxes)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _first_last(log, key):
    s = _series(log, key)
    return (s[0][1], s[-1][1]) if s else (None, None)


# ------------------------------------------------------------------------------------------------ run
def run_training(cfg: TrainConfig, out_dir: Path, restart: bool = False) -> dict[str, Any]:
    """Train as the recipe says, into `out_dir`; resume from its last checkpoint; return the summary."""
    t0 = time.time()
    seed = int(cfg.sft.get("seed", 42))
    from .launch import check_world

    check_world(cfg)  # a launched run has the processes the recipe's global batch was computed with
    # before the run directory exists: bad data leaves nothing behind
    rows, report = load_rows(cfg.data, seed, assistant_only=bool(cfg.sft.get("assistant_only_loss", True)))
    if cfg.warmup.copy_warmup_steps:
        from .copy_warmup import value_shapes

        if not value_shapes(rows):
            raise DataError("copy_warmup_steps: the data's tool calls carry no argument value to build copy lines "
                            "from; set copy_warmup_steps: 0")
    out = prepare_run_dir(out_dir, cfg.resolved(), restart=restart).resolve()
    done = out / "summary.json"
    if done.is_file():
        return json.loads(done.read_text())
    args = build_sft_config(cfg, out / "checkpoints")
    from accelerate import PartialState

    with PartialState().main_process_first():  # multi-GPU: rank 0 builds / merges the start model, others reuse it
        start = resolve_start_model(cfg, out, rows, seed)
    model, tok = load_model_and_tokenizer(start, cfg)
    template, source = select_template(tok, cfg.model.chat_template)
    tok.chat_template = template
    samples = [(r["messages"], json.loads(r["tools"]) or None) for r in rows[:4]]
    trep = check_template(tok, template, source, samples=samples)
    atomic_write_json(out / "template_report.json", trep.to_dict())
    if args.assistant_only_loss:
        require_ok(trep)
    data = check_rows(rows, report, cfg.data, tok, template, args.max_length, out_dir=out,
                      assistant_only=bool(args.assistant_only_loss))
    # after the data checks (a row that cannot be trained on fails before minutes of warm-up), before the SFT
    warm = copy_warmup(cfg, out, model, tok, rows, seed) if cfg.warmup.copy_warmup_steps else None
    if warm is not None:
        model = warm[0]

    from toolace_mt.runs import last_complete_checkpoint

    if cfg.launch.fused_loss:
        from trl import SFTTrainer
    else:
        from .loss import model_loss_trainer_class

        SFTTrainer = model_loss_trainer_class()

    peft_config = cfg.lora.lora_config() if cfg.lora.use_peft else None
    trainer = SFTTrainer(model=model, args=args, train_dataset=to_hf(data["train"]),
                         eval_dataset=to_hf(data["eval"]) if data["eval"] else None,
                         processing_class=tok, peft_config=peft_config)
    from .progress import use_loss_bar

    use_loss_bar(trainer, f"train {out.name}")  # one bar, loss in its postfix, no raw log dicts
    ckpt_root = Path(args.output_dir)
    last = last_complete_checkpoint(ckpt_root)  # a checkpoint cut by a kill mid-save is skipped
    tokens_before = steps_before = 0
    if last:
        state = json.loads((Path(last) / "trainer_state.json").read_text())
        tokens_before = int(state.get("num_input_tokens_seen") or 0)
        steps_before = int(state.get("global_step") or 0)
    cpu0 = time.process_time()
    result = trainer.train(resume_from_checkpoint=last)
    train_cpu = time.process_time() - cpu0  # CPU seconds: steadier than wall time on a shared machine

    # ---- outputs (save_model gathers sharded weights on every rank; the rest is written by rank 0 only)
    final_dir = out / ("adapter" if cfg.lora.use_peft else "model")
    trainer.save_model(str(final_dir))  # weights + tokenizer (with the training template)
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return {}
    tok.save_pretrained(str(final_dir))
    atomic_write_text(out / "chat_template.jinja", template)
    if cfg.lora.use_peft and cfg.model.merge:
        merge_adapter(final_dir, out / "merged", cfg.model.dtype)
    log = trainer.state.log_history
    atomic_write_json(out / "training_log.json", log)
    # the run directory's name in the title: the arms of a reproduce run share one recipe (and its name)
    plot_curves(log, out / "loss_curve.png", f"{out.name} ({cfg.name}): {'LoRA' if cfg.lora.use_peft else 'full'} "
                f"SFT, {int(trainer.state.global_step)} steps")

    tokens = int(trainer.state.num_input_tokens_seen or 0)
    runtime = float(result.metrics.get("train_runtime") or 0.0)
    l0, l1 = _first_last(log, "loss")
    a0, a1 = _first_last(log, "mean_token_accuracy")
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    summary = {
        "name": cfg.name, "mode": "lora" if cfg.lora.use_peft else "full", "start_model": str(start),
        "template_source": source, "output": str(final_dir), "merged": str(out / "merged") if (out / "merged").is_dir() else None,
        "steps": int(trainer.state.global_step), "epochs": trainer.state.epoch,
        "resumed_from": last, "rows_train": len(data["train"]), "rows_eval": len(data["eval"]),
        "tokens_seen": tokens, "tokens_this_session": tokens - tokens_before,
        "train_loss_first": l0, "train_loss_last": l1, "token_accuracy_first": a0, "token_accuracy_last": a1,
        "train_runtime_s": round(runtime, 3), "wall_time_s": round(time.time() - t0, 3),
        "tokens_per_s": round((tokens - tokens_before) / runtime, 1) if runtime > 0 else None,
        "train_cpu_s": round(train_cpu, 3),
        "tokens_per_cpu_s": round((tokens - tokens_before) / train_cpu, 1) if train_cpu > 0 else None,
        "trainable_params": int(trainable), "total_params": int(total),
        "rows_truncated": data["report"]["rows_truncated"],
        "rows_truncated_share": data["report"].get("rows_truncated_share"),
        "max_length": data["report"].get("max_length"),
        "s_per_step": round(runtime / max(1, int(trainer.state.global_step) - int(steps_before)), 4)
        if runtime > 0 else None,
        "rows_dropped_by_max_length": data["report"]["rows_dropped_by_max_length"],
        # the batch each optimizer step saw (paper §5: 64): per device x accumulation x processes
        "global_batch": int(args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size),
        "batch": {"per_device": args.per_device_train_batch_size, "accumulation": args.gradient_accumulation_steps,
                  "devices": args.world_size},
        "machine": machine_info(),
    }
    if warm is not None:
        w = warm[1]
        summary["copy_warmup"] = {"steps": w["steps"], "copy_exact_rate": w["copy_exact_rate"],
                                  "s_per_step": w["s_per_step"], "wall_time_s": w["wall_time_s"],
                                  **{k: w[k] for k in ("target", "steps_run", "target_reached") if k in w}}
    atomic_write_json(done, summary)
    return summary


__all__ = ["run_training", "DataError", "find_run_model", "resolve_start_model", "load_model_and_tokenizer"]
