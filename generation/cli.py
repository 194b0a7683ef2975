"""Subcommands: `generate`, `verify`, `merge-shards`, `bench generation-rules`.

(`bench generation`, the ToolACE-MT vs MAS cost comparison, is registered by the MAS baseline's module.)
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub, bench_sub) -> None:
    from toolace_mt.cli import add_recipe_args

    p = sub.add_parser("generate", help="generate a multi-turn tool-use dataset (ToolACE-MT or MAS) from a recipe")
    add_recipe_args(p)
    p.add_argument("--restart", action="store_true", help="discard an existing run directory with another recipe")
    p.add_argument("--shard", help="i/N: run only this shard's chunks (join with `toolace-mt merge-shards`)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("verify", help="re-verify a dataset in our format and write it back annotated")
    p.add_argument("data", help="dataset directory (train.jsonl), .jsonl or .parquet")
    p.add_argument("--out", help="output directory (default: <data>-verified)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("merge-shards", help="merge the run directories of `generate --shard i/N` into one dataset")
    p.add_argument("shards", nargs="+", help="shard run directories")
    p.add_argument("--out", required=True, help="merged run directory")
    p.set_defaults(func=cmd_merge)

    if bench_sub is not None:
        b = bench_sub.add_parser("generation-rules", help="rules-engine throughput (kept dialogues/s, one process)")
        b.add_argument("--n", type=int, default=2000, help="dialogues to generate (default 2000)")
        b.add_argument("--domains", default="all", help="comma-separated domains or 'all'")
        b.add_argument("--batch-size", type=int, default=64)
        b.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
        b.set_defaults(func=cmd_bench_rules)


def cmd_generate(args: argparse.Namespace) -> int:
    from toolace_mt.cli import print_json
    from toolace_mt.config import load_recipe

    from .run import run_generation

    _, cfg, _ = load_recipe(args.recipe, args.overrides, expect="generate")
    shard = args.shard or cfg.shard
    out = args.out or f"runs/generate/{cfg.name}" + (f"-shard{shard.replace('/', 'of')}" if shard else "")
    summary = run_generation(cfg, Path(out), restart=args.restart, shard=shard)
    print_json(summary)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from toolace_mt.cli import print_json

    from .run import verify_dataset

    data = Path(args.data)
    out = Path(args.out) if args.out else data.with_name(data.stem + "-verified")
    print_json(verify_dataset(data, out))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from toolace_mt.cli import print_json

    from .run import merge_shards

    print_json(merge_shards([Path(s) for s in args.shards], Path(args.out)))
    return 0


def cmd_bench_rules(args: argparse.Namespace) -> int:
    from .bench import bench_rules

    bench_rules(args.n, args.domains, args.batch_size, args.overrides)
    return 0
