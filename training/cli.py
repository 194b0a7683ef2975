"""`toolace-mt train RECIPE` and `toolace-mt bench training RECIPE` (heavy imports inside the handlers)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def register(sub, bench_sub) -> None:
    from toolace_mt.cliargs import add_recipe_args

    p = sub.add_parser("train", help="LoRA (or full) SFT with TRL on generated dialogues; resumes")
    add_recipe_args(p)
    p.add_argument("--restart", action="store_true", help="discard the run directory and start over")
    p.set_defaults(func=cmd_train)

    b = bench_sub.add_parser("training", help="tokens/s of `toolace-mt train` vs a plain TRL script, overhead %%")
    add_recipe_args(b)
    b.add_argument("--repeats", type=int, default=2, help="runs of each, alternating (median reported)")
    b.set_defaults(func=cmd_bench)

    c = bench_sub.add_parser("copy", help="copy probe: share of held-out 4-id lines `v1 v2 v3 v4 |` a model "
                                          "repeats exactly (greedy), ids drawn in the shapes of a dataset's values")
    c.add_argument("model", help="a model directory, or a `toolace-mt train` run directory")
    c.add_argument("--data", required=True, help="the dataset whose call arguments give the id shapes")
    c.add_argument("--lines", type=int, default=100, help="probe lines (default 100)")
    c.set_defaults(func=cmd_bench_copy)


def _load(args):
    from toolace_mt.config import load_recipe

    kind, cfg, raw = load_recipe(args.recipe, args.overrides, expect="train")
    out = Path(args.out) if getattr(args, "out", None) else Path("runs") / "train" / cfg.name
    return cfg, out


def cmd_train(args: argparse.Namespace) -> int:
    from toolace_mt.cliargs import print_json

    from .data import DataError
    from .template import TemplateCheckError
    from .train import run_training

    from .launch import launch_training, needs_launch

    cfg, out = _load(args)
    try:
        if needs_launch(cfg):  # num_devices > 1: one process per GPU through accelerate launch
            summary = launch_training(args.recipe, args.overrides, out, cfg, restart=args.restart)
        else:
            summary = run_training(cfg, out, restart=args.restart)
    except (DataError, TemplateCheckError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_json({k: v for k, v in summary.items() if k != "machine"})
    print(f"run directory: {out}", file=sys.stderr)
    return 0


def _run_json(cmd: list[str], env: dict) -> dict:
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


def cmd_bench(args: argparse.Namespace) -> int:
    """Alternate our command and a plain TRL script on the same model, rows and settings; print tokens/s."""
    from toolace_mt.runs import atomic_write_jsonl

    from .data import load_rows

    cfg, _ = _load(args)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # chosen: on a shared 2-core machine, thread contention slows torch ~10x
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-training-"))
    work.mkdir(parents=True, exist_ok=True)
    no_save = ["--set", "save_strategy=no", "--set", "disable_tqdm=true"]
    ours_cmd = lambda i: [sys.executable, "-m", "toolace_mt.app.cli", "train", args.recipe, "--out", str(work / f"ours{i}"),  # noqa: E731
                          "--restart", *sum((["--set", o] for o in args.overrides), []), *no_save]

    ours, plain = [], []
    _run_json(ours_cmd(0), env)
    first = json.loads((work / "ours0" / "summary.json").read_text())
    ours.append(first)
    model = first["start_model"]
    # the plain script gets the same rows (same mixing seed) and the same SFT / LoRA settings
    rows, _ = load_rows(cfg.data, int(cfg.sft.get("seed", 42)))
    atomic_write_jsonl(work / "rows.jsonl", [{"messages": r["messages"], "tools": r["tools"]} for r in rows])
    sft = cfg.sft_kwargs(work / "plain_ckpt")
    sft.update(save_strategy="no", disable_tqdm=True)
    lora = None
    if cfg.lora.use_peft:
        lc = cfg.lora
        lora = dict(r=lc.lora_r, lora_alpha=lc.lora_alpha, lora_dropout=lc.lora_dropout,
                    target_modules=lc.lora_target_modules, bias=lc.lora_bias, task_type="CAUSAL_LM")
    spec = work / "plain_spec.json"
    spec.write_text(json.dumps({"model": model, "rows": str(work / "rows.jsonl"), "sft": sft, "lora": lora}))
    def run_plain():
        r = _run_json([sys.executable, "-m", "toolace_mt.training.plain_trl", str(spec)], env)
        plain.append(json.loads(r.stdout.strip().splitlines()[-1]))

    def run_ours(i):
        _run_json(ours_cmd(i), env)
        ours.append(json.loads((work / f"ours{i}" / "summary.json").read_text()))

    # ABBA order (ours, plain, plain, ours, ...) so a drift in the machine's load favours neither side
    run_plain()
    for i in range(1, args.repeats):
        if i % 2:
            run_plain()
            run_ours(i)
        else:
            run_ours(i)
            run_plain()

    med = lambda xs: statistics.median(xs)  # noqa: E731
    o_tps, p_tps = med([s["tokens_per_s"] for s in ours]), med([s["tokens_per_s"] for s in plain])
    o_wall, p_wall = med([s["wall_time_s"] for s in ours]), med([s["wall_time_s"] for s in plain])
    overhead = 100.0 * (p_tps - o_tps) / p_tps
    o_cpu, p_cpu = med([s["tokens_per_cpu_s"] for s in ours]), med([s["tokens_per_cpu_s"] for s in plain])
    overhead_cpu = 100.0 * (p_cpu - o_cpu) / p_cpu
    result = {
        "recipe": args.recipe, "repeats": args.repeats, "tokens_per_run": ours[0]["tokens_seen"],
        "ours_tokens_per_s": [round(s["tokens_per_s"], 1) for s in ours],
        "plain_trl_tokens_per_s": [round(s["tokens_per_s"], 1) for s in plain],
        "ours_tokens_per_s_median": round(o_tps, 1), "plain_trl_tokens_per_s_median": round(p_tps, 1),
        "overhead_pct_train_loop": round(overhead, 2),
        "ours_tokens_per_cpu_s_median": round(o_cpu, 1), "plain_trl_tokens_per_cpu_s_median": round(p_cpu, 1),
        "overhead_pct_cpu_time": round(overhead_cpu, 2),  # steadier than wall time when the box is shared
        "ours_wall_s_median": round(o_wall, 2), "plain_trl_wall_s_median": round(p_wall, 2),
        "note": "ours wall includes the checks, the tiny-model build and the run directory; "
                "plain wall includes model load and TRL dataset preparation (both in-process times)",
        "within_5pct": overhead <= 5.0,
    }
    from toolace_mt.cliargs import print_json

    print_json(result)
    (work / "bench.json").write_text(json.dumps(result, indent=2))
    print(f"throughput: ours {o_tps:.0f} tok/s, plain TRL {p_tps:.0f} tok/s, overhead {overhead:+.1f}% "
          f"(per CPU-second: {o_cpu:.0f} vs {p_cpu:.0f}, {overhead_cpu:+.1f}%; target within 5%)", file=sys.stderr)
    return 0


def cmd_bench_copy(args: argparse.Namespace) -> int:
    """Print the copy probe (`copy_warmup.copy_exact`) of one model; bad paths get one error line and exit 2."""
    from toolace_mt.cliargs import print_json

    from .config import DataArguments
    from .copy_warmup import copy_exact, load_probe, value_shapes
    from .data import DataError, load_rows
    from .train import find_run_model

    model_dir = Path(args.model)
    found = find_run_model(model_dir) if model_dir.is_dir() else None
    if found is not None:
        if found[0] == "adapter":
            print(f"error: {model_dir} holds a LoRA adapter; give a full model (or a run with merged/)", file=sys.stderr)
            return 2
        model_dir = found[1]
    if not (model_dir / "config.json").is_file():
        print(f"error: {args.model}: no model here (config.json) and no `toolace-mt train` run directory",
              file=sys.stderr)
        return 2
    if args.lines < 1:
        print(f"error: --lines {args.lines} must be >= 1", file=sys.stderr)
        return 2
    try:
        rows, _ = load_rows(DataArguments(datasets=[{"path": args.data}]), 0)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not value_shapes(rows):
        print(f"error: {args.data}: its tool calls carry no argument value to draw ids from", file=sys.stderr)
        return 2
    model, tok, lines = load_probe(model_dir, rows, args.lines)
    res = copy_exact(model, tok, lines)
    print_json({"model": str(model_dir), "example": lines[0][0] + lines[0][1].rstrip("\n"), **res})
    return 0
