"""Subcommands: `generate`, `verify`, `merge-shards`, `bench generation-rules`.

`verify DATA` runs the rule checks; with `--recipe R` (a generate recipe's `llm:` block and model_verifiers)
or `--llm-backend B [--model M] [--base-url U] [--verifiers a,b]` the model-based specialists judge the rows
that pass the rules too.

(`bench generation`, the ToolACE-MT vs MAS cost comparison, is registered by the MAS baseline's module.)
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub, bench_sub) -> None:
    from toolace_mt.cliargs import add_recipe_args

    p = sub.add_parser("generate", help="generate a multi-turn tool-use dataset (ToolACE-MT or MAS) from a recipe")
    add_recipe_args(p)
    p.add_argument("--restart", action="store_true", help="discard an existing run directory with another recipe")
    p.add_argument("--shard", help="i/N: run only this shard's chunks (join with `toolace-mt merge-shards`)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: every shard as a Ray task, merged into --out")
    p.add_argument("--address", help="ray: cluster to join (auto, host:6379, ray://host:10001); default: a local Ray")
    p.add_argument("--shards", type=int, help="ray: number of shards (default: llm.extra.data_parallel_size, else 1)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("verify", help="re-verify a dataset in our format and write it back annotated")
    p.add_argument("data", help="dataset directory (train.jsonl), .jsonl or .parquet")
    p.add_argument("--out", help="output directory (default: <data>-verified)")
    p.add_argument("--recipe", help="a generate recipe: its llm: block (and model_verifiers) run the model-based "
                                    "specialists after the rule checks")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of --recipe (e.g. llm.model=...)")
    p.add_argument("--llm-backend", help="run the model-based specialists with this backend (openai, vllm, "
                                         "transformers, simulated, ...); overrides the recipe's")
    p.add_argument("--model", help="model for --llm-backend (served name, checkpoint or hub id)")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint for --llm-backend openai")
    p.add_argument("--verifiers", help="comma-separated specialists (default: the recipe's model_verifiers, else all "
                                       "of argument_grounding,cross_turn_consistency,task_completion,naturalness)")
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
    from toolace_mt.cliargs import print_json
    from toolace_mt.config import load_recipe

    from .run import run_generation

    _, cfg, _ = load_recipe(args.recipe, args.overrides, expect="generate")
    if args.executor == "ray":
        from .distributed import generate_on_ray

        if args.shard:
            from toolace_mt.config import RecipeError

            raise RecipeError("--shard and --executor ray exclude each other (ray runs all shards; see --shards)")
        print_json(generate_on_ray(cfg, Path(args.out or f"runs/generate/{cfg.name}"), shards=args.shards,
                                   address=args.address, restart=args.restart))
        return 0
    if args.address or args.shards is not None:
        from toolace_mt.config import RecipeError

        raise RecipeError("--address/--shards need --executor ray")
    shard = args.shard or cfg.shard
    out = args.out or f"runs/generate/{cfg.name}" + (f"-shard{shard.replace('/', 'of')}" if shard else "")
    summary = run_generation(cfg, Path(out), restart=args.restart, shard=shard)
    print_json(summary)
    return _exit_if_all_failed(Path(out) / "llm_ledger.json",
                               f"the rejected dialogues and their reasons are in {out}/rejected.jsonl")


def _exit_if_all_failed(ledger: Path, where: str) -> int:
    """1 with the reason on stderr when every LLM request the saved ledger counts failed (a dead endpoint, a bad
    key, a model that never answers in the asked format: the run decided nothing), else 0. The run is kept."""
    if not ledger.is_file():
        return 0
    import json
    import sys

    from toolace_mt.llm.ledger import all_failed_reason

    reason = all_failed_reason(json.loads(ledger.read_text()))
    if reason:
        print(f"error: {reason} ({where})", file=sys.stderr)
        return 1
    return 0


def verify_llm(args: argparse.Namespace):
    """(LLMConfig, specialists, batch size) from `verify`'s --recipe/--llm-backend options; None = rules only."""
    from toolace_mt.config import RecipeError, dataclass_from_dict, load_recipe, to_plain
    from toolace_mt.llm.client import LLMConfig

    from .config import MODEL_VERIFIERS

    recipe = getattr(args, "recipe", None)
    if recipe is None and getattr(args, "overrides", None):
        raise RecipeError("--set needs --recipe")
    if recipe is None and not args.llm_backend:
        if args.model or args.base_url or args.verifiers:
            raise RecipeError("--model/--base-url/--verifiers need --llm-backend or --recipe")
        return None
    if recipe is not None:
        _, cfg, _ = load_recipe(recipe, args.overrides, expect="generate")
        llm = cfg.llm
        names = list(cfg.model_verifiers) if cfg.model_verifiers is not None else list(MODEL_VERIFIERS)
        batch = cfg.batch_size
    else:
        llm, names, batch = LLMConfig(), list(MODEL_VERIFIERS), 64
    plain = to_plain(llm)
    if args.llm_backend:
        plain["backend"] = args.llm_backend
    if args.model:
        plain["model"] = args.model
    if args.base_url:
        plain["base_url"] = args.base_url
    llm = dataclass_from_dict(LLMConfig, plain)
    if args.verifiers:
        names = [v.strip() for v in args.verifiers.split(",") if v.strip()]
        bad = [v for v in names if v not in MODEL_VERIFIERS]
        if bad:
            raise RecipeError(f"--verifiers: {bad} not among {', '.join(MODEL_VERIFIERS)}")
    return llm, names, batch


def cmd_verify(args: argparse.Namespace) -> int:
    from toolace_mt.cliargs import print_json

    from .run import verify_dataset

    data = Path(args.data)
    out = Path(args.out) if args.out else data.with_name(data.stem + "-verified")
    spec = verify_llm(args)
    if spec is None:
        print_json(verify_dataset(data, out))
        return 0
    from toolace_mt.llm.client import make_client

    llm, names, batch = spec
    try:
        client = make_client(llm, cache_dir=out / "llm_cache")  # chosen: a rerun re-asks nothing already answered
    except ValueError as e:  # unknown / unavailable backend, bad backend settings: a usage error, not a crash
        from toolace_mt.config import RecipeError

        raise RecipeError(f"verify: {e}") from None
    res = verify_dataset(data, out, names, client, llm, batch_size=batch)
    print_json(res)
    return _exit_if_all_failed(out / "usage.json", f"the verdicts and their reasons are in {out}/train.jsonl")


def cmd_merge(args: argparse.Namespace) -> int:
    from toolace_mt.cliargs import print_json

    from .run import merge_shards

    print_json(merge_shards([Path(s) for s in args.shards], Path(args.out)))
    return 0


def cmd_bench_rules(args: argparse.Namespace) -> int:
    from .bench import bench_rules

    bench_rules(args.n, args.domains, args.batch_size, args.overrides)
    return 0
