"""Subcommands `reproduce` (generate -> train -> evaluate for every arm) and `report` (rebuild from a run)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub, bench_sub) -> None:
    from ..cliargs import add_recipe_args

    p = sub.add_parser("reproduce", help="generate -> train -> evaluate for Base / MAS / ToolACE-MT, then report")
    add_recipe_args(p)
    p.add_argument("--restart", action="store_true", help="discard the run directory and start over")
    p.add_argument("--results", nargs="?", const="", default=None, metavar="DIR",
                   help="also write the report to DIR (no DIR: <results_dir>/<recipe name>, e.g. results/quickstart, "
                        "the committed copy); without --results it goes only to <run dir>/report/")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: every step in this process (default); ray: the steps of each phase as Ray tasks")
    p.add_argument("--address", help="ray: cluster to join (auto, host:6379, ray://host:10001); default: a local Ray")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("report", help="rebuild a reproduce report from a run directory's saved results")
    p.add_argument("run_dir")
    p.add_argument("--results", nargs="?", const="", default=None, metavar="DIR",
                   help="also write the report to DIR (no DIR: <results_dir>/<recipe name> of that run); "
                        "without --results it goes only to <run dir>/report/")
    p.set_defaults(func=cmd_report)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from ..config import RecipeError, load_recipe
    from .reproduce import run_reproduce

    if args.address and args.executor != "ray":
        raise RecipeError("--address needs --executor ray")
    _, cfg, _ = load_recipe(args.recipe, args.overrides, expect="reproduce")
    out = Path(args.out or Path(cfg.runs_dir) / cfg.name)
    results = results_dir(args.results, cfg.results_dir, cfg.name)
    if args.executor != "ray":  # a multi-GPU train step needs its GPUs here: refused before anything is made
        from ..training.launch import check_devices, needs_launch

        for _, ref, kind in cfg.step_refs():
            if kind == "train":
                tcfg = load_recipe(ref.recipe, ref.overrides(), expect="train")[1]
                if needs_launch(tcfg):
                    check_devices(tcfg)
    runner = None
    if args.executor == "ray":
        from .reproduce_ray import RaySteps

        runner = RaySteps(args.address)
    run_reproduce(cfg, out, restart=args.restart, results=results, run_steps=runner)
    return 0


def results_dir(flag: str | None, recipe_results_dir: str, name: str) -> Path | None:
    """``--results``: absent -> None (the report stays in the run directory); bare -> <results_dir>/<name>."""
    if flag is None:
        return None
    return Path(flag) if flag else Path(recipe_results_dir) / name


def cmd_report(args: argparse.Namespace) -> int:
    import yaml

    from .report import write_report

    run_dir = Path(args.run_dir)
    if not (run_dir / "recipe.yaml").is_file():
        print(f"error: {run_dir} is not a reproduce run directory (no recipe.yaml)", file=sys.stderr)
        return 2
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    if not isinstance(recipe, dict) or "arms" not in recipe or "name" not in recipe:  # keys of a reproduce recipe
        kind = recipe.get("task") if isinstance(recipe, dict) else None
        print(f"error: {run_dir} is not a reproduce run directory (its recipe.yaml is a {kind or 'different'} "
              f"recipe)", file=sys.stderr)
        return 2
    path = write_report(run_dir, run_dir / "report")
    print(f"report: {path}")
    results = results_dir(args.results, recipe.get("results_dir", "results"), recipe["name"])
    if results is not None:
        print(f"report: {write_report(run_dir, results)}")
    return 0
