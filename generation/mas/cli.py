"""`toolace-mt bench generation`: the ToolACE-MT vs MAS generation cost comparison (see `bench.py`)."""
from __future__ import annotations

import argparse
from pathlib import Path


def _subtasks(s: str) -> tuple[int, ...]:
    try:
        ms = tuple(int(x) for x in s.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--subtasks {s!r}: expected comma-separated integers, e.g. 2,3,4,5") from None
    if not ms or any(m < 1 for m in ms):
        raise argparse.ArgumentTypeError(f"--subtasks {s!r}: need integers >= 1")
    return ms


def register(sub, bench_sub) -> None:
    if bench_sub is None:
        return
    b = bench_sub.add_parser("generation", help="ToolACE-MT vs MAS: LLM calls, tokens, wall time and pass rate per "
                                                "kept dialogue by dialogue length (simulated backend)")
    b.add_argument("--n", type=int, default=50, help="dialogues per method and length (default 50)")
    b.add_argument("--subtasks", type=_subtasks, default=(2, 3, 4, 5), help="dialogue lengths m (default 2,3,4,5)")
    b.add_argument("--out", default="runs/bench/generation", help="run directory (default runs/bench/generation)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of both methods' generate recipes")
    b.set_defaults(func=cmd_bench_generation)


def cmd_bench_generation(args: argparse.Namespace) -> int:
    from .bench import bench_generation

    if args.n < 1:
        print("error: --n must be >= 1")
        return 2
    bench_generation(args.n, args.subtasks, Path(args.out), args.seed, args.overrides)
    return 0
