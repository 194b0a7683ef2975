"""`validate --deep`: a paper-scale training recipe checked offline before it costs GPU time.

For a train recipe (or the ``arm_train`` recipe of a reproduce recipe, with its ``base_model``):
1. the model is built on the meta device from its ``config.json`` (accelerate's ``init_empty_weights``: no
   weights, no memory) and LoRA is applied to it with PEFT exactly as training will, so a target module that
   does not exist fails here;
2. the chat template training will use (chosen as ``train`` chooses it) renders a tool conversation and its
   ``{% generation %}`` mask covers exactly the assistant turns (the training template checks), with the
   model's own tokenizer when it is on disk, else a stand-in tokenizer trained here with the family's special
   tokens and the model's own template (``recipes/model_configs/<Name>/chat_template.jinja``);
3. the memory per GPU for the recipe's batch and sequence length is estimated (printed, never asserted).

The config comes from ``--model-config DIR``, else the model directory itself, else
``recipes/model_configs/<last part of the hub id>/`` (looked up next to the recipe and in the working
directory). Failures raise `DeepCheckError` with the reason; the CLI prints it and exits 2.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from ..config import RecipeError

MODEL_CONFIGS = "model_configs"
GiB = 1024 ** 3
CUDA_OVERHEAD_GIB = 1.5  # chosen: CUDA context + NCCL + allocator slack, typical on an 80 GB card


class DeepCheckError(RecipeError):
    pass


def find_model_config(model: str, recipe_path: Optional[Path] = None, explicit: Optional[str] = None) -> Path:
    """The directory holding the architecture's config.json (see module docstring for the order)."""
    cands: list[Path] = []
    if explicit:
        p = Path(explicit)
        cands.append(p.parent if p.name == "config.json" else p)
    else:
        cands.append(Path(model))
        name = Path(model).name
        roots = []
        if recipe_path is not None:
            roots += [q / MODEL_CONFIGS for q in Path(recipe_path).resolve().parents]
        roots += [Path.cwd() / "recipes" / MODEL_CONFIGS]
        cands += [r / name for r in roots]
    for c in cands:
        if (c / "config.json").is_file():
            return c
    raise DeepCheckError(f"no config.json for model {model!r}: pass --model-config DIR, or add "
                         f"recipes/{MODEL_CONFIGS}/{Path(model).name}/config.json (tried {', '.join(map(str, cands))})")


def meta_model(config_dir: Path, dtype: str = "bfloat16"):
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(config_dir)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, dtype if dtype != "auto" else "bfloat16"))
    return cfg, model


def missing_lora_targets(model, targets) -> list[str]:
    """Target names (PEFT semantics: a module-name suffix, or a regex matched against full names) with no
    module in `model`; 'all-linear' needs at least one Linear besides the output layer."""
    import torch.nn as nn

    names = [n for n, _ in model.named_modules() if n]
    if targets == "all-linear":
        out = model.get_output_embeddings()
        lin = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and m is not out]
        return [] if lin else ["all-linear (no Linear layer besides the output layer)"]
    if isinstance(targets, str):
        return [] if any(re.fullmatch(targets, n) for n in names) else [targets]
    return [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]


def memory_estimate(n_params: int, n_trainable: int, cfg, batch: int, seq: int, checkpointing: bool,
                    weight_bytes: int = 2, world: int = 1, zero3: bool = False) -> dict[str, float]:
    """GiB per GPU, first order (data parallel: every GPU holds the weights; ZeRO-3/FSDP: 1/world of them).

    weights in `weight_bytes`; trainable (LoRA) parameters in fp32 with fp32 grads and two AdamW moments
    (16 bytes each); activations with flash/SDPA attention (no seq^2 term): with checkpointing one hidden state
    per layer plus one layer recomputed, else every layer's saved tensors (~(10 h + 4 i) values per token);
    logits in bf16 plus their fp32 copy for the loss and its gradient (10 bytes per vocab entry per token)."""
    h, i, L, V = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.vocab_size
    tokens = batch * seq
    # chosen: bf16 tensors a decoder layer keeps for backward per token -- inputs of q/k/v/o, attention output,
    # the two norms and residuals (~10 h) and gate/up/act/down of the MLP (~4 i); first order, no seq^2 term
    per_layer = tokens * (10 * h + 4 * i) * 2
    acts = (tokens * h * 2 * L + per_layer) if checkpointing else per_layer * L
    est = {
        "weights": n_params * weight_bytes / (world if zero3 else 1) / GiB,
        "lora_params_grads_adam": n_trainable * 16 / (world if zero3 else 1) / GiB,
        "activations": acts / GiB,
        "logits": tokens * V * 10 / GiB,  # chosen: bf16 logits (2) + fp32 copy for the loss (4) + its grad (4)
        "cuda_overhead": CUDA_OVERHEAD_GIB,
    }
    est["total"] = sum(est.values())
    return {k: round(v, 2) for k, v in est.items()}


def _template_check(model_name: str, config_dir: Path, cfg, choice: str) -> dict[str, Any]:
    from toolace_mt.training.template import check_template, select_template

    from ..training.standin import corpus_texts, family_of, train_tokenizer

    tok, tok_source = None, "model"
    for d in (Path(model_name), config_dir):
        if (d / "tokenizer_config.json").is_file() or (d / "tokenizer.json").is_file():
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(d)
            break
    if tok is None:
        fam = family_of(cfg.model_type)
        tmpl_file = config_dir / "chat_template.jinja"
        own = tmpl_file.read_text(encoding="utf-8") if tmpl_file.is_file() else None
        tok = train_tokenizer(corpus_texts(own or _fallback_template(), fam), fam, own, vocab_size=1024)
        tok_source = f"stand-in ({fam} special tokens, {'own template' if own else 'no own template'})"
    template, source = select_template(tok, choice)
    rep = check_template(tok, template, source)
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], tools=[{
        "type": "function", "function": {"name": "probe_tool_xyz", "description": "d",
                                         "parameters": {"type": "object", "properties": {}}}}],
        chat_template=template, tokenize=False, add_generation_prompt=True)
    out = rep.to_dict()
    out["tools_rendered"] = "probe_tool_xyz" in rendered
    if not out["tools_rendered"]:
        out["problems"] = list(out["problems"]) + ["the template does not render the tools it is given"]
    out["tokenizer"] = tok_source
    return out


def _fallback_template() -> str:
    from toolace_mt.training.template import project_template

    return project_template()


def deep_check_train(tcfg, recipe_path: Optional[Path], model_config: Optional[str] = None,
                     world: int = 8) -> dict[str, Any]:
    """All deep checks of a parsed train recipe; raises DeepCheckError on the first failing one."""
    m = tcfg.model
    if m.is_tiny:
        return {"model": "tiny", "note": "built at run time from the data; nothing to preflight"}
    config_dir = find_model_config(m.model_name_or_path, recipe_path, model_config)
    cfg, model = meta_model(config_dir, m.dtype)
    n_params = sum(p.numel() for p in model.parameters())
    res: dict[str, Any] = {"model": m.model_name_or_path, "config": str(config_dir), "model_type": cfg.model_type,
                           "params_b": round(n_params / 1e9, 3)}
    n_trainable = n_params
    if tcfg.lora.use_peft:
        missing = missing_lora_targets(model, tcfg.lora.lora_target_modules)
        if missing:
            leaves = sorted({n.rsplit(".", 1)[-1] for n, mod in model.named_modules()
                             if n and not list(mod.children())})
            raise DeepCheckError(f"lora_target_modules {missing} match no module of {m.model_name_or_path} "
                                 f"({cfg.model_type}); its leaf modules are: {', '.join(leaves)}")
        from peft import get_peft_model

        peft_model = get_peft_model(model, tcfg.lora.lora_config(), low_cpu_mem_usage=True)
        n_trainable, _ = peft_model.get_nb_trainable_parameters()
        res["lora_trainable_m"] = round(n_trainable / 1e6, 2)
    tmpl = _template_check(m.model_name_or_path, config_dir, cfg, m.chat_template)
    res["template"] = tmpl
    if tmpl["problems"]:
        raise DeepCheckError(f"chat template ({tmpl['source']}) of {m.model_name_or_path}: "
                             + "; ".join(tmpl["problems"][:5]))
    sft = tcfg.sft
    batch = int(sft.get("per_device_train_batch_size", 8))  # 8: TRL's SFTConfig default
    seq = int(sft.get("max_length", 1024))  # 1024: TRL's SFTConfig default
    ckpt = bool(sft.get("activation_checkpointing", sft.get("gradient_checkpointing", True)))
    wbytes = 4 if m.dtype == "float32" else 2
    res["memory_gib_per_gpu"] = {
        "batch": batch, "seq": seq, "activation_checkpointing": ckpt,
        "ddp": memory_estimate(n_params, n_trainable, cfg, batch, seq, ckpt, wbytes),
        f"zero3_{world}gpu": memory_estimate(n_params, n_trainable, cfg, batch, seq, ckpt, wbytes, world, True),
    }
    return res


def deep_check(kind: str, cfg, recipe_path: Path, model_config: Optional[str] = None) -> dict[str, Any]:
    """Deep checks for any recipe kind: train recipes directly, reproduce recipes through arm_train."""
    if kind == "train":
        return deep_check_train(cfg, recipe_path, model_config)
    if kind == "reproduce":
        from ..config import load_recipe

        arm = cfg.arm_train
        if arm is None:
            return {"note": "no arm_train recipe: no model is trained"}
        if cfg.base_train is not None:
            return {"note": "the base model is trained by base_train at run time; nothing to build beforehand"}
        over = arm.overrides({"model_name_or_path": cfg.base_model})
        _, tcfg, _ = load_recipe(arm.recipe, over, expect="train")
        return deep_check_train(tcfg, Path(arm.recipe), model_config)
    return {"note": f"{kind} recipe: no model is trained, nothing to build (deep checks apply to train and "
                    "reproduce recipes)"}


def format_report(res: dict[str, Any]) -> str:
    if "memory_gib_per_gpu" not in res:
        return "      " + res.get("note", "")
    t = res["template"]
    mem = res["memory_gib_per_gpu"]
    lines = [f"      model {res['model']} ({res['model_type']}, {res['params_b']} B params, meta device; "
             f"config {res['config']})"]
    if "lora_trainable_m" in res:
        lines.append(f"      LoRA targets found; {res['lora_trainable_m']} M trainable parameters")
    lines.append(f"      chat template {t['source']} ({t['tokenizer']} tokenizer): tools rendered, assistant "
                 f"mask ok, prefix-preserving, end-of-turn trained")
    lines.append(f"      memory per GPU (GiB, estimate) at batch {mem['batch']} x seq {mem['seq']}, "
                 f"checkpointing {'on' if mem['activation_checkpointing'] else 'off'}:")
    for k in ("ddp", *[k for k in mem if k.startswith("zero3")]):
        e = mem[k]
        lines.append(f"        {k:12s} total {e['total']:6.1f} = weights {e['weights']:.1f} + LoRA/Adam "
                     f"{e['lora_params_grads_adam']:.1f} + activations {e['activations']:.1f} + logits "
                     f"{e['logits']:.1f} + CUDA {e['cuda_overhead']:.1f}")
    return "\n".join(lines)
