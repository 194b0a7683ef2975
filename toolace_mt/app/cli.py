"""`toolace-mt` entry point. Subcommands come from modules that expose ``register(subparsers)``.

Registration modules import only argparse-level code; heavy imports (torch, transformers, vllm) happen inside
the command handlers, so `toolace-mt --help` stays fast. Each handler returns an exit code.
"""
from __future__ import annotations

import argparse
import sys

from ..registry import Registry

# Each entry is a module's ``register(sub, bench_sub)``; the app is the only layer that knows all packages.
# Registration modules import only argparse-level code, so building the parser stays fast.
COMMANDS: Registry = Registry("command module")
COMMANDS.register("core", "toolace_mt.app.cli_core:register")              # envs, validate
COMMANDS.register("generation", "toolace_mt.generation.cli:register")      # generate, verify, merge-shards, bench
COMMANDS.register("mas", "toolace_mt.generation.mas.cli:register")         # bench generation (ToolACE-MT vs MAS)
COMMANDS.register("training", "toolace_mt.training.cli:register")          # train, bench training
COMMANDS.register("evaluation", "toolace_mt.evaluation.cli:register")      # evaluate, rescore, crosscheck, bench
COMMANDS.register("reproduce", "toolace_mt.app.reproduce_cli:register")    # reproduce, report
COMMANDS.register("doctor", "toolace_mt.app.smoke:register")               # doctor (GPU / CPU smoke run)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="toolace-mt", description="ToolACE-MT: generate multi-turn tool-use data, "
                                "fine-tune with LoRA, evaluate BFCL/tau/ACE-style.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    bench = sub.add_parser("bench", help="measure speed or cost; prints figures (no asserts)")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="WHAT")
    for name in COMMANDS.names():
        COMMANDS.get(name)(sub, bench_sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from ..config import RecipeError
    from ..io import DataFileError
    from ..runs import RecipeChanged

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


if __name__ == "__main__":
    sys.exit(main())
