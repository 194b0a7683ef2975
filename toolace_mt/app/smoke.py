"""`toolace-mt doctor --gpu | --cpu`: does the paper-scale path run on this machine? No download, minutes.

Steps (each timed, PASS/FAIL with its reason, tokens/s where tokens are counted):
1. build: a byte-level BPE tokenizer trained here with the Llama-3.1 special tokens and the project's Llama 3.1
   chat template (JSON tool calls, generation markers), on rules-engine dialogues; a random-initialised
   Llama-3-architecture model (GPU: ~1B parameters in bf16, Llama-3.2-1B's shape; CPU: a tiny one in fp32);
2. generate: the llm engine of ToolACE-MT and of the MAS baseline with that model, through in-process vLLM
   (tool calls parsed from its text in the llama3 format); on CPU through the transformers backend when vLLM
   is not importable (the table says so);
3. train: LoRA SFT with the paper's hyperparameters (r 16, alpha 32, lr 1e-4, cosine, warmup 0.1; a few steps)
   through ``accelerate launch`` (bf16 on GPU) on rules-engine dialogues (a random model's own dialogues fail
   verification, so they cannot be trained on);
4. evaluate: BFCL-style (our task set) and tau-style (scripted user) with the policy on the trained adapter.

A random model's answers are noise: the smoke run proves the mechanics (engines start, prompts render, answers
parse or fail typed, training steps, the adapter loads), never quality. The table is printed and written to
``<out>/doctor.json``; the exit code is 1 when a step failed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

# ~1B parameters with a small local vocabulary: Llama-3.2-1B's body (hidden 2048, 16 layers, 32 heads, 8 KV heads,
# MLP 8192), the 128k embedding replaced by the local tokenizer's (~8k) -> 0.99 B parameters
GPU_SHAPE = dict(hidden_size=2048, intermediate_size=8192, num_layers=16, num_heads=32, num_kv_heads=8)
CPU_SHAPE = dict(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2)  # chosen: seconds
PAPER_LORA = dict(use_peft=True, lora_r=16, lora_alpha=32, lora_dropout=0.05, lora_target_modules="all-linear",
                  learning_rate=1.0e-4, lr_scheduler_type="cosine", warmup_steps=0.1)  # paper §5


@dataclass
class Step:
    step: str
    ok: bool = False
    seconds: float = 0.0
    tokens_per_s: Optional[float] = None
    detail: str = ""
    warn: Optional[str] = None  # the step ran, but what it made is empty (e.g. generation kept 0 dialogues)

    @property
    def result(self) -> str:
        return "FAIL" if not self.ok else "WARN" if self.warn else "PASS"


@dataclass
class Plan:
    mode: str  # gpu | cpu
    n_dialogues: int
    max_tokens: int
    train_steps: int
    train_batch: int
    max_length: int
    eval_limit: int
    vocab: int
    dtype: str


PLANS = {
    # chosen: sized to finish in < 8 min on one H100/H200 including the vLLM engine start-ups (~1 min each)
    "gpu": Plan("gpu", n_dialogues=16, max_tokens=256, train_steps=20, train_batch=4, max_length=4096,
                eval_limit=5, vocab=8192, dtype="bfloat16"),
    # chosen: the least that still exercises every step, so the test stays short on 2 shared cores
    "cpu": Plan("cpu", n_dialogues=1, max_tokens=12, train_steps=3, train_batch=2, max_length=8192,
                eval_limit=1, vocab=1000, dtype="float32"),
}


def vllm_importable() -> bool:
    try:
        import vllm  # noqa: F401
    except Exception:  # ImportError, or a broken CUDA build: either way in-process vLLM is not usable
        return False
    return True


def _free_accelerator() -> None:
    """Release a finished step's inference engine before the next one starts (vLLM holds its GPU share until
    its LLM object is collected)."""
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _timed(rows: list[Step], name: str, fn: Callable[[], tuple]) -> bool:
    """Run one step. `fn` returns (detail, tokens counted or None[, tokens/s measured by the step itself[, a
    warning: the step ran but made nothing usable]])."""
    st = Step(name)
    t0 = time.perf_counter()
    rate = None
    try:
        got = fn()
        st.detail, tokens = got[0], got[1]
        rate = got[2] if len(got) > 2 else None
        st.warn = got[3] if len(got) > 3 else None
        st.ok = True
    except Exception as e:  # the table records the failure and the run goes on to the independent steps
        st.detail = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"[:300]
        tokens = None
        traceback.print_exc()
    _free_accelerator()
    st.seconds = round(time.perf_counter() - t0, 2)
    if rate is not None:
        st.tokens_per_s = float(rate)
    elif tokens and st.seconds > 0:
        st.tokens_per_s = round(tokens / st.seconds, 1)
    rows.append(st)
    print(f"[doctor] {name}: {st.result} in {st.seconds:.1f}s {st.detail}"
          + (f" ({st.warn})" if st.warn else ""), file=sys.stderr)
    return st.ok


def _completion_tokens(obj: Any) -> int:
    if isinstance(obj, dict):
        n = obj.get("completion_tokens")
        return int(n) if isinstance(n, int) else sum(_completion_tokens(v) for v in obj.values())
    if isinstance(obj, list):
        return sum(_completion_tokens(v) for v in obj)
    return 0


def build_model(plan: Plan, out: Path) -> tuple[Path, Path]:
    """(model dir, rules-engine dataset dir): the stand-in Llama-3 model and the data its tokenizer learnt from."""
    from toolace_mt.generation.config import parse_recipe
    from toolace_mt.generation.run import run_generation
    from toolace_mt.runs import read_jsonl
    from toolace_mt.training.template import builtin_template

    from ..training.standin import build_llama, corpus_texts, train_tokenizer

    data = out / "rules_data"
    run_generation(parse_recipe({"name": "doctor_rules", "domains": ["banking", "travel_booking"] if plan.mode == "gpu"
                                 else ["banking"], "n_dialogues": 64 if plan.mode == "gpu" else 6, "seed": 0,
                                 "batch_size": 32, "refinement_steps": 1, "progress": False}), data)
    template = builtin_template("llama3_1")
    rows = read_jsonl(data / "dataset" / "train.jsonl")
    tok = train_tokenizer(corpus_texts(template, "llama", rows), "llama", template, vocab_size=plan.vocab)
    shape = GPU_SHAPE if plan.mode == "gpu" else CPU_SHAPE
    model_dir = build_llama(out / "model", tok, dtype=plan.dtype, max_position=8192, **shape)
    return model_dir, data / "dataset"


def _llm_block(plan: Plan, model: Path, backend: str) -> dict[str, Any]:
    llm: dict[str, Any] = {"backend": backend, "model": str(model), "temperature": 0.7, "seed": 0,
                           "max_tokens": plan.max_tokens, "tool_call_format": "llama3", "json_retries": 0}
    if backend == "vllm":
        # chosen: enforce_eager skips CUDA-graph capture (each engine starts ~30 s sooner; a smoke run starts four);
        # 0.3 of the GPU per engine leaves room for the next step while a finished engine is being torn down
        llm["extra"] = {"max_model_len": 8192, "gpu_memory_utilization": 0.3, "enforce_eager": True,
                        "json_disable_whitespace": True}
    else:
        llm.update(dtype=plan.dtype, device="cpu" if plan.mode == "cpu" else "auto", batch_size=8)
    return llm


def generate_step(plan: Plan, model: Path, backend: str, method: str, out: Path) -> tuple[str, Optional[float]]:
    from toolace_mt.generation.config import parse_recipe
    from toolace_mt.generation.run import run_generation

    cfg = parse_recipe({"name": f"doctor_{method}", "method": method, "engine": "llm",
                        "llm": _llm_block(plan, model, backend), "domains": ["banking"],
                        "n_dialogues": plan.n_dialogues, "seed": 0, "refinement_steps": 1, "subtasks": [2, 2],
                        "steps": [1, 2], "batch_size": plan.n_dialogues, "progress": False})
    s = run_generation(cfg, out / f"gen_{method}", restart=True)
    ledger = json.loads((out / f"gen_{method}" / "llm_ledger.json").read_text())
    tot = ledger.get("total", {})
    toks = tot.get("completion_tokens")
    c = s["counts"]
    warn = (f"kept 0 of {c.get('generated', 0)} dialogues: the path ran, but no dialogue passed verification"
            if not c.get("kept") else None)
    return (f"{backend}: {c} ; {tot.get('requests', '?')} requests, {toks} completion tokens, "
            f"failures {ledger.get('failure_kinds', {})}"), toks, None, warn


def train_step(plan: Plan, model: Path, data: Path, out: Path) -> tuple[str, Optional[float]]:
    import yaml

    recipe = {"task": "train", "name": "doctor_lora", "model_name_or_path": str(model), "chat_template": "llama3_1",
              "dtype": plan.dtype, "datasets": [{"path": str(data)}], **PAPER_LORA,
              "per_device_train_batch_size": plan.train_batch, "gradient_accumulation_steps": 1,
              "max_steps": plan.train_steps, "max_length": plan.max_length, "logging_steps": 1,
              "save_strategy": "no", "activation_checkpointing": False, "seed": 0}
    rf = out / "train_recipe.yaml"
    rf.write_text(yaml.safe_dump(recipe, sort_keys=False))
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
              "--dynamo_backend", "no"]
    launch += ["--mixed_precision", "bf16"] if plan.mode == "gpu" else ["--cpu", "--mixed_precision", "no"]
    cmd = [*launch, "-m", "toolace_mt.app.cli", "train", str(rf), "--out", str(out / "train"), "--restart"]
    print("[doctor] " + " ".join(cmd), file=sys.stderr)
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if r.returncode != 0:
        raise RuntimeError(f"accelerate launch exited {r.returncode}: {r.stderr.strip()[-1500:]}")
    s = json.loads((out / "train" / "summary.json").read_text())
    return (f"accelerate launch ({'bf16' if plan.mode == 'gpu' else 'cpu fp32'}): {s['steps']} steps, "
            f"loss {s['train_loss_first']:.4f} -> {s['train_loss_last']:.4f}, {s['trainable_params']} LoRA params, "
            f"tokens/s measured by the trainer"), None, s["tokens_per_s"]


def eval_step(plan: Plan, suite: str, model: Path, adapter: Path, backend: str, out: Path) -> tuple[str, Optional[float]]:
    from toolace_mt.config import dataclass_from_dict
    from toolace_mt.evaluation.config import EvaluateConfig
    from toolace_mt.evaluation.run import run_evaluation
    from toolace_mt.runs import read_jsonl

    policy = {"kind": backend, "model": str(model), "adapter": str(adapter), "tool_call_format": "llama3",
              "max_new_tokens": plan.max_tokens, "batch_size": 16}
    if backend == "vllm":  # same engine settings as generation (see _llm_block)
        policy["extra"] = {"max_model_len": 8192, "gpu_memory_utilization": 0.3, "max_lora_rank": 16,
                           "enforce_eager": True}
    else:
        policy.update(dtype=plan.dtype, device="cpu" if plan.mode == "cpu" else "auto")
    raw: dict[str, Any] = {"suite": suite, "source": "own", "policy": policy, "limit": plan.eval_limit,
                           "progress": False, "max_steps": 4 if plan.mode == "cpu" else 8}
    if suite == "bfcl":
        raw.update(tasks=str(out / "bfcl_tasks"), categories=["base"],
                   options={"build": {"per_category": plan.eval_limit, "seed": 0}})
    else:
        raw.update(categories=["retail"], options={"user": "scripted"})
    cfg = dataclass_from_dict(EvaluateConfig, raw)
    d = out / f"eval_{suite}"
    s = run_evaluation(cfg, d, restart=True)
    toks = _completion_tokens(read_jsonl(d / "trajectories.jsonl"))
    return f"{backend} + LoRA adapter: {s['n_tasks']} tasks, overall {s['overall']:.3f}", toks or None


def run_doctor(mode: str, out: Path, backend: Optional[str] = None) -> dict[str, Any]:
    """Run every step; return {"mode", "backend", "steps": [...], "ok"} (also written to out/doctor.json)."""
    from toolace_mt.runs import atomic_write_json, machine_info

    plan = PLANS[mode]
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if backend is None:
        backend = "vllm" if (mode == "gpu" or vllm_importable()) else "transformers"
    note = "" if backend == "vllm" else "vLLM not importable here: transformers backend instead of in-process vLLM"
    rows: list[Step] = []
    built: dict[str, Path] = {}

    def build():
        m, d = build_model(plan, out)
        built.update(model=m, data=d)
        from transformers import AutoConfig

        c = AutoConfig.from_pretrained(m)
        n = (c.vocab_size * c.hidden_size + c.num_hidden_layers * (
            2 * c.hidden_size ** 2 + 2 * c.hidden_size * c.num_key_value_heads * (c.hidden_size // c.num_attention_heads)
            + 3 * c.hidden_size * c.intermediate_size))
        return f"Llama-3 arch, {n / 1e6:.1f} M params ({plan.dtype}), vocab {c.vocab_size}, Llama-3.1 special tokens + template", None

    if _timed(rows, "build model + tokenizer", build):
        model = built["model"]
        _timed(rows, "generate ToolACE-MT (llm engine)", lambda: generate_step(plan, model, backend, "toolace_mt", out))
        _timed(rows, "generate MAS (llm engine)", lambda: generate_step(plan, model, backend, "mas", out))
        if _timed(rows, "LoRA SFT (accelerate launch)", lambda: train_step(plan, model, built["data"], out)):
            adapter = out / "train" / "adapter"
            _timed(rows, "evaluate BFCL-style", lambda: eval_step(plan, "bfcl", model, adapter, backend, out))
            _timed(rows, "evaluate tau-style", lambda: eval_step(plan, "tau", model, adapter, backend, out))
    res = {"mode": mode, "backend": backend, "note": note, "ok": all(r.ok for r in rows) and len(rows) == 6,
           "warnings": [f"{r.step}: {r.warn}" for r in rows if r.warn],
           "total_s": round(sum(r.seconds for r in rows), 1), "steps": [asdict(r) for r in rows],
           "machine": machine_info()}
    atomic_write_json(out / "doctor.json", res)
    return res


def print_table(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"toolace-mt doctor --{res['mode']} (backend {res['backend']}; total {res['total_s']} s)",
              caption=res["note"] or None)
    for c in ("step", "result", "seconds", "tokens/s", "detail"):
        t.add_column(c, overflow="fold")
    for r in res["steps"]:
        result = "FAIL" if not r["ok"] else "WARN" if r.get("warn") else "PASS"
        t.add_row(r["step"], result, f"{r['seconds']:.1f}",
                  "-" if r["tokens_per_s"] is None else f"{r['tokens_per_s']:.1f}",
                  r["detail"] + (f" -- {r['warn']}" if r.get("warn") else ""))
    Console(width=200).print(t)


# ------------------------------------------------------------------------------------------------ CLI
def register(sub, bench_sub) -> None:
    p = sub.add_parser("doctor", help="smoke-run generation (vLLM), LoRA SFT (accelerate) and evaluation on a "
                                      "random stand-in model: --gpu (~1B, bf16, < 8 min) or --cpu (tiny)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--gpu", action="store_true", help="one GPU: ~1B Llama-3 model in bf16, in-process vLLM")
    g.add_argument("--cpu", action="store_true", help="tiny model in fp32 (transformers where vLLM is missing)")
    p.add_argument("--out", help="work directory (default: runs/doctor/<gpu|cpu>); the table goes to doctor.json")
    p.add_argument("--backend", choices=("vllm", "transformers"), help="force the inference backend")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args) -> int:
    mode = "gpu" if args.gpu else "cpu"
    if mode == "gpu":
        import torch

        if not torch.cuda.is_available():
            print("error: doctor --gpu needs a CUDA GPU (torch.cuda.is_available() is False); try --cpu",
                  file=sys.stderr)
            return 2
        if args.backend != "transformers" and not vllm_importable():
            print("error: doctor --gpu needs vLLM: pip install 'toolace-mt[vllm]'", file=sys.stderr)
            return 2
    elif args.backend == "vllm" and not vllm_importable():
        # chosen: refused up front like --gpu (a forced backend that cannot import failed 43 s later, after the
        # model was built, and left its directory); without --backend, --cpu falls back to transformers
        print("error: doctor --backend vllm needs vLLM, which is not importable here: pip install 'toolace-mt[vllm]' "
              "(or leave --backend out: --cpu then uses transformers)", file=sys.stderr)
        return 2
    res = run_doctor(mode, Path(args.out or f"runs/doctor/{mode}"), args.backend)
    print_table(res)
    print(f"table: {Path(args.out or f'runs/doctor/{mode}').resolve() / 'doctor.json'}")
    return 0 if res["ok"] else 1


if __name__ == "__main__":  # vLLM spawns its engine process: entry points need this guard
    from toolace_mt.app.cli import main

    sys.exit(main(["doctor", *sys.argv[1:]]))
