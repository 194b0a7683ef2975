"""`toolace-mt validate RECIPE...`: check recipes as one pipeline before any of it runs.

Each recipe is parsed strictly and then checked (`cfg.check()`): every input path it reads exists, or is written
by an earlier step (a reproduce recipe's own steps, in order) or by another recipe of the same call (its default
output directory ``runs/<kind>/<name>``: `validate recipes/generate/debug.yaml recipes/train/tiny_cpu.yaml` passes
before either ran); the optional packages it needs (bfcl-eval, vLLM, Ray) are installed, else the message gives
the install line; a reproduce recipe's sub-recipes pass their own checks with the wiring reproduce gives them.
YAML that is not a recipe (an accelerate config) is skipped and said so. Exit 2 when any recipe fails.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

# default output directory of each kind's command (`toolace-mt <kind> RECIPE` without --out)
DEFAULT_OUT = {"generate": "runs/generate/{name}", "train": "runs/train/{name}", "evaluate": "runs/evaluate/{name}"}
# top-level keys of an accelerate config file (`accelerate config` writes them); never keys of a recipe
ACCELERATE_KEYS = frozenset({"compute_environment", "distributed_type", "num_processes", "mixed_precision"})


def not_a_recipe(path: str) -> Optional[str]:
    """Why the YAML at `path` is no recipe (an accelerate config), else None."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return None  # load_recipe reports it
    if isinstance(raw, dict) and "task" not in raw and len(ACCELERATE_KEYS & set(raw)) >= 2:
        return "an accelerate config (for `accelerate launch --config_file`), not a recipe"
    return None


def default_out(kind: str, cfg: Any, raw: dict) -> Optional[Path]:
    if kind == "reproduce":
        return Path(cfg.runs_dir) / cfg.name
    pattern = DEFAULT_OUT.get(kind)
    return Path(pattern.format(name=raw.get("name") or getattr(cfg, "name", ""))) if pattern else None


def validate(paths: list[str], overrides: list[str], deep: bool = False, model_config: Optional[str] = None) -> int:
    from ..config import RecipeError, load_recipe, produced_paths
    from .cli import recipe_path_hint

    parsed: list[tuple[str, str, Any, Optional[Path]]] = []
    bad, n, deep_bad = 0, 0, False
    for path in paths:
        why = not_a_recipe(path)
        if why:
            print(f"skip  {path}: {why}")
            continue
        n += 1
        try:
            kind, cfg, raw = load_recipe(path, overrides)
            parsed.append((path, kind, cfg, default_out(kind, cfg, raw)))
        except (RecipeError, OSError, ValueError) as e:
            bad += 1
            print(f"FAIL  {path}: {e}{recipe_path_hint(path) if not Path(path).is_file() else ''}")
    for path, kind, cfg, out in parsed:
        others = [o for p, _, _, o in parsed if o is not None and p != path]
        try:
            check = getattr(cfg, "check", None)
            if callable(check):
                with produced_paths(others):
                    check()  # input paths, optional dependencies, sub-recipes
            print(f"ok    {path} ({kind})")
        except (RecipeError, OSError, ValueError) as e:
            bad += 1
            print(f"FAIL  {path}: {e}")
            continue
        if deep:
            from .preflight import DeepCheckError, deep_check, format_report

            try:
                print(format_report(deep_check(kind, cfg, Path(path), model_config)))
            except DeepCheckError as e:
                print(f"error: {path}: {e}", file=sys.stderr)
                deep_bad = True
    if bad:  # exit 2 like every other usage error (the FAIL lines above say which recipe and why)
        print(f"error: {bad} of {n} recipe(s) failed validation", file=sys.stderr)
    return 2 if bad or deep_bad else 0
