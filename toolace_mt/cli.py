"""`toolace-mt` entry point. Subcommands come from modules that expose ``register(subparsers)``.

Registration modules import only argparse-level code; heavy imports (torch, transformers, vllm) happen inside
the command handlers, so `toolace-mt --help` stays fast. Each handler returns an exit code.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys

# Each module registers its own subcommands; the CLI is the only place that knows all packages.
COMMAND_MODULES = [
    "toolace_mt.cli_core",            # envs, validate
    "toolace_mt.generation.cli",      # generate, verify, merge-shards, bench generation-rules
    "toolace_mt.generation.mas.cli",  # bench generation (ToolACE-MT vs MAS cost)
    "toolace_mt.training.cli",        # train, bench training
    "toolace_mt.evaluation.cli",      # evaluate, crosscheck, bench evaluation
    "toolace_mt.reproduce_cli",       # reproduce, report
    "toolace_mt.smoke",               # doctor (GPU / CPU smoke run)
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="toolace-mt", description="ToolACE-MT: generate multi-turn tool-use data, "
                                "fine-tune with LoRA, evaluate BFCL/tau/ACE-style.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    bench = None
    for modname in COMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name == modname:  # that part of the project is not built yet
                continue
            raise
        if bench is None:
            bench = sub.add_parser("bench", help="measure speed or cost; prints figures (no asserts)")
            bench_sub = bench.add_subparsers(dest="bench_command", metavar="WHAT")
        mod.register(sub, bench_sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from .config import RecipeError
    from .io import DataFileError
    from .runs import RecipeChanged

    parser = build_parser()
    args = parser.parse_args(argv)
    fn = getattr(args, "func", None)
    if fn is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(fn(args) or 0)
    except (RecipeError, RecipeChanged, DataFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def add_recipe_args(p: argparse.ArgumentParser, out: bool = True) -> None:
    """The arguments every recipe-driven command takes."""
    p.add_argument("recipe", help="recipe YAML")
    if out:
        p.add_argument("--out", help="run directory (default: runs/<task>/<recipe name>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe key (repeatable; value read as YAML)")


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


if __name__ == "__main__":
    sys.exit(main())
