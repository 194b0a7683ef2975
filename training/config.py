"""Training recipes: a flat YAML whose keys are the fields of five dataclasses (alignment-handbook style).

* `ModelArguments`: which model (`model_name_or_path`: an HF path/id, ``tiny``, or a previous training run's
  directory), tiny-model sizes, dtype, attention implementation, chat template choice;
* `LoraArguments`: PEFT LoRA settings (TRL `ModelConfig` names: ``use_peft``, ``lora_r``, ``lora_alpha``, ...);
* `DataArguments`: datasets with mixing weights, which turns to train on, checks before training, eval split;
* `LaunchArguments`: how the run executes: how many devices (``num_devices``; with > 1 the run goes through
  ``accelerate launch``) and which loss code (``fused_loss``: TRL's fused log-softmax or the model's own);
* `WarmupArguments`: the copy warm-up of a from-scratch model (``copy_warmup_*``, `copy_warmup.py`);
* TRL's `SFTConfig` itself: any of its fields may be set in the recipe without new code here.

Keys that belong to none of them are rejected with a suggestion. Unset SFTConfig keys get CPU-safe defaults
at run time (`sft_kwargs`): bf16 only with CUDA, no gradient checkpointing for tiny models, packing off
on CPU, report_to none (no tracker is installed offline).
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from toolace_mt.config import (RECIPE_KINDS, RecipeError, _type_ok, bool_word_error, check_input,
                               dataclass_from_dict, looks_local, number_text_hint, to_plain, yaml_word)


@dataclass
class ModelArguments:
    model_name_or_path: str = "tiny"  # HF path/id | "tiny" | a previous `toolace-mt train` run directory
    # tiny model (built from a config, tokenizer trained locally on the data: no download)
    tiny_hidden_size: int = 128
    tiny_intermediate_size: int = 256
    tiny_num_layers: int = 2
    tiny_num_heads: int = 2
    tiny_num_kv_heads: int = 1
    tiny_vocab_size: int = 1024  # an upper bound: a small corpus yields fewer merges
    tiny_max_position: int = 4096
    # chosen default qwen2 / 1 (the original tiny model); the CPU tier uses llama / 3 (see training/tiny.py)
    tiny_arch: str = "qwen2"  # qwen2 | llama: the model type (decides which tokenizer class AutoTokenizer loads)
    tiny_digit_group: int = 1  # keep runs of up to this many digits in one pre-token (needs tiny_arch: llama)
    tiny_bare_words: bool = False  # words and ids are the same token wherever they stand (needs tiny_arch: llama)
    tiny_whole_ids: bool = False  # a short id (ACC35) is one pre-token, hence one token (needs tiny_bare_words)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    attn_implementation: Optional[str] = None  # e.g. sdpa | flash_attention_2 | eager (None: transformers' default)
    chat_template: str = "auto"  # auto | project | llama3_1 | compact | path to a .jinja file (see template.py)
    merge: bool = False  # also save base+adapter merged into one model (merged/)

    def __post_init__(self):
        from .template import BUILTIN_TEMPLATES
        from .tiny import check_tiny_tokenizer

        check_tiny_tokenizer(self.tiny_arch, self.tiny_digit_group, self.tiny_bare_words, self.tiny_whole_ids)

        if self.chat_template != "auto" and self.chat_template not in BUILTIN_TEMPLATES \
                and not self.chat_template.endswith((".jinja", ".j2")):
            raise ValueError(f"chat_template: {self.chat_template!r} is not auto, one of "
                             f"{', '.join(BUILTIN_TEMPLATES)}, or a .jinja path")

    @property
    def is_tiny(self) -> bool:
        return self.model_name_or_path == "tiny"


@dataclass
class LoraArguments:
    """Map onto `peft.LoraConfig` (names as in TRL's `ModelConfig`)."""

    use_peft: bool = True
    lora_r: int = 16  # paper §5 (r=16)
    lora_alpha: int = 32  # paper §5 (alpha=32)
    lora_dropout: float = 0.05  # chosen: PEFT/TRL examples' common value; paper silent
    lora_target_modules: Union[str, list[str]] = "all-linear"  # chosen: all projections, as TRL recommends
    lora_modules_to_save: Optional[list[str]] = None
    lora_bias: Literal["none", "all", "lora_only"] = "none"
    use_rslora: bool = False
    use_dora: bool = False

    def __post_init__(self):
        if self.lora_r < 1 or self.lora_alpha < 1:
            raise ValueError(f"lora_r and lora_alpha must be >= 1, got {self.lora_r} and {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout: {self.lora_dropout} must be in [0, 1)")

    def lora_config(self):
        from peft import LoraConfig

        return LoraConfig(r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                          target_modules=self.lora_target_modules, modules_to_save=self.lora_modules_to_save,
                          bias=self.lora_bias, use_rslora=self.use_rslora, use_dora=self.use_dora,
                          task_type="CAUSAL_LM")


@dataclass
class DataArguments:
    # [{path, weight}]: path = a generation run dir (train.jsonl) or a JSONL/Parquet file; weight = fraction of
    # its rows to use (alignment-handbook dataset_mixer semantics; >1 repeats rows)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    turns: Literal["all", "first"] = "all"  # first: keep only the first user turn (single-turn tool calling)
    eval_split: float = 0.0  # fraction of rows held out for eval (0 = none)
    on_unknown_tool: Literal["error", "drop"] = "error"  # a call to a tool missing from the row's tools
    min_train_rows: int = 1  # fail before training when fewer rows would be trained on
    mask_check_rows: int = 32  # rows whose assistant mask is decoded and compared with the messages
    max_rows: Optional[int] = None  # cap after mixing (quick runs)
    # domain: every row lists all tools of its dialogue's domain (in the env's order, tools that arrive by a tool
    # update left out until then), as the BFCL-style evaluation lists all tools of a task's domains
    tool_list: Literal["as_generated", "domain"] = "as_generated"
    # chosen: false -- an assistant message whose call the environment refused (a staged error of ToolACE-MT's
    # error simulation, or a MAS assistant's own slip) is shown but not trained on (weight 0, as OpenAI's chat
    # fine-tuning format marks it): the model learns the reflection and the corrected call, not to send the wrong
    # value. Same rule for every dataset, so neither method's rows teach mistakes. Needs assistant_only_loss
    # (with the loss on every token nothing is masked). Measured on the quickstart (recipes/reproduce/README.md).
    train_on_failed_calls: bool = False

    def __post_init__(self):
        for i, d in enumerate(self.datasets):
            if not isinstance(d, dict) or "path" not in d:
                raise ValueError(f"datasets[{i}]: expected a mapping with 'path' (and optional 'weight'), got {d!r}")
            extra = set(d) - {"path", "weight", "name"}
            if extra:
                raise ValueError(f"datasets[{i}]: unknown key(s) {sorted(extra)} (known: path, weight, name)")
            w = d.get("weight", 1.0)
            if not _type_ok(w, float) or w <= 0:
                raise ValueError(f"datasets[{i}].weight: {w!r} must be a positive number")
        if not 0.0 <= self.eval_split < 1.0:
            raise ValueError(f"eval_split: {self.eval_split} must be in [0, 1)")


DEFAULT_ACCELERATE_CONFIG = "configs/accelerate/ddp.yaml"


@dataclass
class LaunchArguments:
    """The devices a run trains on. Global batch = per_device_train_batch_size x gradient_accumulation_steps x
    num_devices (paper §5: 64). With num_devices > 1, `toolace-mt train` and `toolace-mt reproduce` start the run
    through ``accelerate launch --num_processes num_devices`` (one process per GPU) with `accelerate_config`;
    a run started by hand under ``accelerate launch`` must have that many processes."""

    num_devices: int = 1
    accelerate_config: Optional[str] = None  # None: configs/accelerate/ddp.yaml (DDP); fsdp / deepspeed_zero3 there
    # True: TRL's SFTTrainer loss (fused chunked log-softmax: less memory with a large vocabulary); False: the
    # model's own cross-entropy, the same loss (training/loss.py): 1.3x faster steps on the 2-core CPU tier
    fused_loss: bool = True

    def __post_init__(self):
        if self.num_devices < 1:
            raise ValueError(f"num_devices: {self.num_devices} must be >= 1")


@dataclass
class WarmupArguments:
    """Copy warm-up (`training/copy_warmup.py`): before the data, `copy_warmup_steps` steps on synthetic lines
    ``v1 .. vk | v1 .. vk`` built from the data's argument values (fresh digits), loss on the repeats. For a
    model trained from scratch: it teaches the copy that every argument needs (induction heads)."""

    copy_warmup_steps: int = 0  # 0: no warm-up
    copy_warmup_lr: float = 1.0e-3  # chosen: 3e-3 stays on the no-copy plateau (recipes/reproduce/README.md)
    copy_warmup_batch_size: int = 16
    copy_warmup_span: list[int] = field(default_factory=lambda: [3, 10])  # [lo, hi] values per line
    copy_warmup_length: int = 96  # tokens per row (lines are added until it is full)
    copy_warmup_rows: int = 4000  # distinct synthetic rows (drawn with the run's seed)
    # stop the phase once the copy probe (100 held-out 4-value lines, teacher-forced) reproduces this share
    # exactly; copy_warmup_steps is then the cap and the length of the cosine schedule. chosen: unset by default.
    # Why a target: the tier's tokenizer is trained on its data, and a fixed 1,500-step phase ended at 50/100 on
    # the probe on one data set and at 1/100 after one tool phrase changed the tokenizer (a 3,000-step schedule
    # on that data: 55 at step 1,500, 73 at 3,000; recipes/reproduce/README.md), so a fixed length is fragile
    copy_warmup_target: Optional[float] = None

    def __post_init__(self):
        if isinstance(self.copy_warmup_steps, bool) or self.copy_warmup_steps < 0:
            raise ValueError(f"copy_warmup_steps: {self.copy_warmup_steps} must be >= 0 (0: no warm-up)")
        if not self.copy_warmup_lr > 0:
            raise ValueError(f"copy_warmup_lr: {self.copy_warmup_lr} must be > 0")
        span = self.copy_warmup_span
        if (len(span) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in span)
                or not 1 <= span[0] <= span[1]):
            raise ValueError(f"copy_warmup_span: {span!r} must be [lo, hi] whole numbers with 1 <= lo <= hi")
        for key in ("copy_warmup_batch_size", "copy_warmup_rows"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: {getattr(self, key)} must be >= 1")
        if self.copy_warmup_length < 8:
            raise ValueError(f"copy_warmup_length: {self.copy_warmup_length} must be >= 8 tokens")
        t = self.copy_warmup_target
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 1):
            raise ValueError(f"copy_warmup_target: {t!r} must be a share in (0, 1] (or unset: run every step)")
        if t is not None and not self.copy_warmup_steps:
            raise ValueError("copy_warmup_target: needs copy_warmup_steps > 0 (the cap)")


@dataclass
class TrainConfig:
    name: str
    model: ModelArguments
    lora: LoraArguments
    data: DataArguments
    sft: dict[str, Any]  # SFTConfig keys set in the recipe (defaults are filled in by `sft_kwargs`)
    launch: LaunchArguments = field(default_factory=LaunchArguments)
    warmup: WarmupArguments = field(default_factory=WarmupArguments)

    def resolved(self) -> dict[str, Any]:
        """The flat recipe as it runs (what `recipe.yaml` of the run directory holds)."""
        out = {"task": "train", "name": self.name}
        for part in (self.model, self.lora, self.data):
            out.update(to_plain(part))
        # chosen: launch keys only when set, so run directories made before they existed still resume
        out.update({k: v for k, v in to_plain(self.launch).items()
                    if v != getattr(LaunchArguments(), k)})
        if self.warmup.copy_warmup_steps:  # chosen: without a warm-up, recipe.yaml of earlier runs stays the same
            out.update({k: v for k, v in to_plain(self.warmup).items()
                        if v is not None or k != "copy_warmup_target"})  # unset: earlier runs resume as they were
        out.update(to_plain(self.sft))
        return out

    def global_batch(self) -> dict[str, int]:
        """Per-device batch, accumulation, devices and their product (the SFTConfig defaults where unset)."""
        fields = _sft_fields()
        per = self.sft.get("per_device_train_batch_size", fields["per_device_train_batch_size"].default)
        acc = self.sft.get("gradient_accumulation_steps", fields["gradient_accumulation_steps"].default)
        n = self.launch.num_devices
        return {"per_device": int(per), "accumulation": int(acc), "devices": n, "global": int(per) * int(acc) * n}

    def accelerate_config(self) -> str:
        return self.launch.accelerate_config or DEFAULT_ACCELERATE_CONFIG

    def check(self) -> None:
        """Deeper checks for `toolace-mt validate`: dataset files exist, SFTConfig accepts the values."""
        if not self.data.datasets:
            raise RecipeError("datasets: no dataset given")
        src = Path(self.model.model_name_or_path)
        if not self.model.is_tiny and src.is_file():  # from_pretrained reads a directory (or a hub id), never a file
            raise RecipeError(f"model_name_or_path: {src} is a file; give a model directory (with config.json), a "
                              "previous `toolace-mt train` run directory, a hub id, or tiny")
        tmpl = self.model.chat_template
        if tmpl.endswith((".jinja", ".j2")) and not Path(tmpl).is_file():
            raise RecipeError(f"chat_template: {tmpl} is " + ("a directory" if Path(tmpl).is_dir() else "not there")
                              + "; give a .jinja file")
        if not self.model.is_tiny and looks_local(self.model.model_name_or_path):
            check_input("model_name_or_path", src)  # a run directory or checkpoint: there, or an earlier step's
        for d in self.data.datasets:
            p = Path(d["path"])
            if not check_input("datasets", p):
                continue  # written by an earlier step of the same pipeline (generate), not there yet
            if not (p.is_file() or (p / "train.jsonl").is_file()):
                raise RecipeError(f"datasets: {p} is neither a file nor a directory holding train.jsonl")
        if self.launch.num_devices > 1:
            check_input("accelerate_config", self.accelerate_config())
        _check_report_to(self.sft.get("report_to"))
        import tempfile

        build_sft_config(self, Path(tempfile.gettempdir()) / "toolace-mt-validate")

    def sft_kwargs(self, output_dir: str | Path) -> dict[str, Any]:
        import torch

        cuda = torch.cuda.is_available()
        kw: dict[str, Any] = {
            # P3: the TRL default True fails on CPU; a recipe asking for fp16 gets no bf16 next to it
            "bf16": bool(cuda and torch.cuda.is_bf16_supported() and not self.sft.get("fp16")),
            "packing": False,  # chosen: 2x slower on CPU (P8); worth it on GPU only with flash-attn varlen
            "report_to": "none",
            "assistant_only_loss": True,  # loss on assistant tokens only (tool calls and replies)
            "logging_steps": 5,
            "include_num_input_tokens_seen": "non_padding",
            "dataset_num_proc": None,  # chosen: worker processes cost more than they save on 2 cores
        }
        if not ({"gradient_checkpointing", "activation_checkpointing"} & set(self.sft)):
            # P3: 20 % slower and useless for tiny / CPU models; on GPU keep TRL's default (on) under its new name
            kw["activation_checkpointing"] = bool(cuda and not self.model.is_tiny)
        if not cuda:
            kw["dataloader_pin_memory"] = False  # nothing to pin to without an accelerator
        kw.update(self.sft)
        kw["output_dir"] = str(output_dir)
        return kw


def _check_report_to(report_to: Any) -> None:
    """`report_to` names trackers transformers knows (SFTConfig accepts any text; the Trainer refuses it later)."""
    if report_to is None:
        return
    try:
        from transformers.integrations.integration_utils import get_reporting_integration_callbacks
    except ImportError:  # chosen: a transformers without this helper: the Trainer still checks at run time
        return
    try:
        get_reporting_integration_callbacks(report_to)
    except ValueError as e:
        raise RecipeError(f"report_to: {report_to!r}: {e} (or none: no tracker)") from None


def _sft_fields() -> dict[str, Any]:
    from trl import SFTConfig

    return {f.name: f for f in dataclasses.fields(SFTConfig) if f.init}


def build_sft_config(cfg: TrainConfig, output_dir: str | Path):
    from trl import SFTConfig

    try:
        return SFTConfig(**cfg.sft_kwargs(output_dir))
    except (ValueError, TypeError) as e:
        raise RecipeError(f"SFTConfig rejects the recipe: {e}") from None


_OURS = (ModelArguments, LoraArguments, DataArguments, LaunchArguments, WarmupArguments)
_STRATEGY_KEYS = ("save_strategy", "eval_strategy", "logging_strategy", "hub_strategy")


# SFTConfig keys that must be >= 1 when set; max_steps: -1 (the default) means "train num_train_epochs"
_POSITIVE_SFT = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                 "max_length", "save_total_limit")


def check_sft_values(sft: dict[str, Any], fields: dict[str, Any]) -> None:
    """Types and ranges of the SFTConfig keys a recipe sets, checked before anything runs (SFTConfig itself
    accepts ``max_steps: many`` or a zero batch size and fails deep inside training)."""
    import typing

    for key, value in sft.items():
        tp = fields[key].type
        if isinstance(tp, str):
            continue  # postponed annotation we cannot resolve cheaply: SFTConfig checks it
        base = {int: int, float: float, bool: bool}.get(tp)
        if base is None:
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            base = args[0] if len(args) == 1 and args[0] in (int, float, bool) else None
        if base is not None and value is not None and not _type_ok(value, base):
            raise RecipeError(f"key {key!r}: {value!r} is not of type {base.__name__}{number_text_hint(value, base)}")
        if key in _POSITIVE_SFT and isinstance(value, (int, float)) and not isinstance(value, bool) and value < 1:
            raise RecipeError(f"key {key!r}: must be >= 1, got {value}")
        if key == "max_steps" and isinstance(value, int) and value != -1 and value < 1:
            raise RecipeError(f"key 'max_steps': {value} must be >= 1 (or -1: train num_train_epochs)")
        if key in ("num_train_epochs", "learning_rate", "save_steps", "eval_steps", "logging_steps") and isinstance(value, (int, float)) and value <= 0:
            raise RecipeError(f"key {key!r}: must be > 0, got {value}")


def parse_recipe(raw: dict[str, Any]) -> TrainConfig:
    """Split a flat recipe among the dataclasses; everything else must be an SFTConfig field."""
    raw = dict(raw)
    task = raw.pop("task", "train")
    if task != "train":
        raise RecipeError(f"task {task!r}: this parser reads 'train' recipes")
    name = str(raw.pop("name", "train"))
    parts: list[dict[str, Any]] = [{} for _ in _OURS]
    own_names = [{f.name for f in dataclasses.fields(c)} for c in _OURS]
    sft_fields = _sft_fields()
    sft: dict[str, Any] = {}
    for key, value in raw.items():
        for i, names in enumerate(own_names):
            if key in names:
                parts[i][key] = value
                break
        else:
            if key in sft_fields:
                if key == "output_dir":
                    raise RecipeError("output_dir: set the run directory with --out; checkpoints go to <out>/checkpoints")
                if value is False and key in _STRATEGY_KEYS:
                    value = "no"  # YAML 1.1 reads a bare `no` as false: `save_strategy: no` means "no"
                word_error = bool_word_error(key, value, sft_fields[key].type)
                if word_error:  # e.g. `report_to: off`: False, which SFTConfig accepts and training then fails on
                    if key == "report_to" and value is False:  # quoting gives "off", not a tracker either
                        word_error = (f"key 'report_to': {yaml_word(key)} is a boolean in YAML 1.1 (it reads as "
                                      "false), not a tracker; for no tracker write report_to: none")
                    raise RecipeError(word_error)
                sft[key] = value
                continue
            known = sorted(set().union(*own_names) | set(sft_fields))
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RecipeError(f"unknown key {key!r}{hint}: not a model, LoRA, data, copy warm-up or TRL SFTConfig field")
    check_sft_values(sft, sft_fields)
    model = dataclass_from_dict(ModelArguments, parts[0])
    lora = dataclass_from_dict(LoraArguments, parts[1])
    data = dataclass_from_dict(DataArguments, parts[2])
    launch = dataclass_from_dict(LaunchArguments, parts[3])
    warmup = dataclass_from_dict(WarmupArguments, parts[4])
    if warmup.copy_warmup_steps and not model.is_tiny:
        raise RecipeError("copy_warmup_steps: the copy warm-up is for a model trained from scratch "
                          "(model_name_or_path: tiny); a pretrained model already copies")
    return TrainConfig(name=name, model=model, lora=lora, data=data, sft=sft, launch=launch, warmup=warmup)


RECIPE_KINDS.register("train", parse_recipe)
