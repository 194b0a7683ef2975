"""Argument helpers every package's command module uses (core, so the packages need not import the app)."""
from __future__ import annotations

import argparse
import json


def add_recipe_args(p: argparse.ArgumentParser, out: bool = True) -> None:
    """The arguments every recipe-driven command takes."""
    p.add_argument("recipe", help="recipe YAML")
    if out:
        p.add_argument("--out", help="run directory (default: runs/<task>/<recipe name>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe key (repeatable; value read as YAML)")


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))
