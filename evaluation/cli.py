"""Evaluation subcommands: evaluate, rescore, crosscheck, compare, bfcl-tasks, data acebench, `bench evaluation`.

Heavy imports happen inside the handlers so `toolace-mt --help` stays fast.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub, bench_sub) -> None:
    from toolace_mt.cliargs import add_recipe_args

    p = sub.add_parser("evaluate", help="run a policy on a suite (BFCL/tau/ACE-style) and score it")
    add_recipe_args(p)
    p.add_argument("--restart", action="store_true", help="discard an existing run directory")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: chunks of tasks as Ray tasks, scored together in --out")
    p.add_argument("--address", help="ray: cluster to join (auto, host:6379, ray://host:10001); default: a local Ray")
    p.add_argument("--shards", type=int, help="ray: number of task chunks (default 2)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("rescore", help="re-score a finished evaluation run from its saved trajectories")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_rescore)

    p = sub.add_parser("crosscheck", help="score the same BFCL trajectories with our checker and the official one")
    p.add_argument("--run", dest="run_dir", help="an evaluation run dir on source=official (default: fresh oracle "
                   "+ perturbed trajectories)")
    p.add_argument("--categories", nargs="*", default=None, help="BFCL multi-turn categories (default: all four)")
    p.add_argument("--limit", type=int, default=None, help="entries per category")
    p.add_argument("--perturb", type=float, default=0.5, help="fraction of entries perturbed (fresh mode)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write per-entry agreement JSONL here")
    p.add_argument("--raw", action="store_true", help="raw-text mode: both sides decode each step's text (ours: "
                   "official decoder, our port, lenient); fresh mode adds text-level edits")
    p.set_defaults(func=cmd_crosscheck)

    p = sub.add_parser("bfcl-tasks", help="build a BFCL-layout multi-turn task set from our environments")
    p.add_argument("--out", required=True, help="output directory (tasks.jsonl + manifest.json)")
    p.add_argument("--per-category", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--domains", nargs="*", default=None, help="domains to use (default: all)")
    p.add_argument("--heldout-domains", nargs="*", default=None, help="domains recorded as held out")
    p.add_argument("--distractors", type=int, default=40, help="distractor records per env for long_context")
    p.set_defaults(func=cmd_bfcl_tasks)

    p = sub.add_parser("compare", help="paired test of two evaluation runs on their shared tasks (exact McNemar)")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON (difference = B - A)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("data", help="download official benchmark data (pinned commit, sha256-checked)")
    data_sub = p.add_subparsers(dest="data_command", metavar="WHAT", required=True)
    p = data_sub.add_parser("acebench", help="the official ACEBench English data and the source its agent items "
                            "import, one pinned commit (default dest: data/acebench)")
    p.add_argument("--dest", default=None, help="target directory (default: data/acebench)")
    p.add_argument("--base-url", default=None, help="mirror of raw.githubusercontent.com/<repo>/<commit>/ "
                   "(default: $TOOLACE_ACEBENCH_URL or GitHub)")
    p.add_argument("--force", action="store_true", help="fetch again even files whose checksum already matches")
    p.set_defaults(func=cmd_data_acebench)
    p = data_sub.add_parser("bfcl", help="BFCL data of another version (v3: the paper-era files of bfcl-eval "
                            "2025.8.6.2, from the package index; default dest: data/bfcl/v3)")
    p.add_argument("--version", choices=("v3",), default="v3", help="data version (v4 is the installed package's)")
    p.add_argument("--dest", default=None, help="target directory (default: $TOOLACE_BFCL_V3_DIR or data/bfcl/v3)")
    p.add_argument("--wheel", default=None, help="a downloaded bfcl-eval wheel to unpack instead of pip download "
                   "(sha256-checked the same way)")
    p.add_argument("--force", action="store_true", help="unpack again even when the manifest matches")
    p.set_defaults(func=cmd_data_bfcl)

    if bench_sub is not None:
        p = bench_sub.add_parser("evaluation", help="time BFCL scoring of the official entries with the oracle")
        p.add_argument("--n", type=int, default=800, help="entries (spread over the four categories)")
        p.add_argument("--official-checker", action="store_true", help="also time the official checker")
        p.add_argument("--full", action="store_true", help="every official entry, single-turn and multi-turn")
        p.add_argument("--data-version", choices=("v3", "v4"), default="v4", help="with --full: the data version")
        p.set_defaults(func=cmd_bench)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from toolace_mt.cliargs import print_json
    from toolace_mt.config import load_recipe

    from .run import run_evaluation

    _, cfg, raw = load_recipe(args.recipe, args.overrides, expect="evaluate")
    out = Path(args.out or f"runs/evaluate/{raw['name']}")
    if getattr(args, "executor", "local") == "ray":
        from .distributed import evaluate_on_ray

        # chosen: 2 = one chunk per GPU of a small box; an explicit --shards 0 is refused by cli.check_args
        summary = evaluate_on_ray(cfg, out, shards=2 if args.shards is None else args.shards,
                                  address=args.address, restart=args.restart)
    elif getattr(args, "address", None) or getattr(args, "shards", None) is not None:
        from toolace_mt.config import RecipeError

        raise RecipeError("--address/--shards need --executor ray")
    else:
        summary = run_evaluation(cfg, out, restart=args.restart)
    print((out / "report.md").read_text())
    print_json({"out": str(out), "overall": summary["overall"], "categories": summary["categories"]})
    if summary.get("llm_all_failed"):  # scores of a model that never answered are not a result
        import sys

        print(f"error: {summary['llm_all_failed']}; the run is saved in {out}", file=sys.stderr)
        return 1
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from toolace_mt.cliargs import print_json

    from .compare import compare_runs

    rep = compare_runs(args.run_a, args.run_b)
    rep["difference_is"] = "accuracy_b - accuracy_a"
    if args.json:
        print_json(rep)
    else:
        print(compare_table(rep))
    return 0


def compare_table(rep: dict) -> str:
    """The comparison as a table a person reads: accuracies, B − A in points, the discordant pairs, p."""
    a, b = rep["a"], rep["b"]
    lines = [f"A: {a['run']} ({a['policy']})", f"B: {b['run']} ({b['policy']})",
             f"suite {rep['suite']} ({rep['source']}); {rep['test']}; B − A in percentage points", ""]
    head = f"{'category':<20} {'n':>5} {'A':>7} {'B':>7} {'B − A':>8} {'only A':>7} {'only B':>7} {'p':>9}"
    lines += [head, "-" * len(head)]
    rows = [("overall", rep["overall"])] + sorted((rep.get("categories") or {}).items())
    for name, r in rows:
        if not r.get("n"):
            lines.append(f"{name:<20} {0:>5}  (no shared tasks)")
            continue
        lines.append(f"{name:<20} {r['n']:>5} {100 * r['accuracy_a']:>6.1f}% {100 * r['accuracy_b']:>6.1f}% "
                     f"{100 * r['difference']:>+8.1f} {r['only_a']:>7} {r['only_b']:>7} {r['mcnemar_exact_p']:>9.2g}")
    if rep.get("only_in_a") or rep.get("only_in_b"):
        lines.append(f"(tasks in one run only, not compared: A {rep.get('only_in_a', 0)}, B {rep.get('only_in_b', 0)})")
    return "\n".join(lines)


def cmd_data_acebench(args: argparse.Namespace) -> int:
    from toolace_mt.cliargs import print_json

    from .ace.data import DEFAULT_DEST, download

    dest = Path(args.dest) if args.dest else DEFAULT_DEST
    print_json({"dest": str(dest), **download(dest, base_url=args.base_url, force=args.force)})
    return 0


def cmd_data_bfcl(args: argparse.Namespace) -> int:
    from toolace_mt.cliargs import print_json

    from .bfcl.data import fetch_v3

    print_json(fetch_v3(Path(args.dest) if args.dest else None, wheel=Path(args.wheel) if args.wheel else None,
                        force=args.force))
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from .run import REPORT, rescore

    rescore(Path(args.run_dir))
    print((Path(args.run_dir) / REPORT).read_text())
    return 0


def cmd_crosscheck(args: argparse.Namespace) -> int:
    from toolace_mt.cliargs import print_json

    from .bfcl.crosscheck import crosscheck

    rep = crosscheck(run_dir=args.run_dir, categories=args.categories, limit=args.limit,
                     perturb=args.perturb, seed=args.seed, out=args.out, raw=args.raw)
    print_json({k: v for k, v in rep.items() if k != "entries"})
    return 0 if rep["disagreements"] == 0 else 1


def cmd_bfcl_tasks(args: argparse.Namespace) -> int:
    from toolace_mt.cliargs import print_json

    from .bfcl.build import build_task_set

    manifest = build_task_set(Path(args.out), per_category=args.per_category, seed=args.seed, domains=args.domains,
                              heldout_domains=args.heldout_domains, n_distractors=args.distractors)
    print_json(manifest)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from toolace_mt.cliargs import print_json

    from .bfcl.bench import bench_full, bench_oracle

    if args.full:
        print_json(bench_full(args.data_version))
        return 0
    print_json(bench_oracle(n=args.n, official=args.official_checker))
    return 0
