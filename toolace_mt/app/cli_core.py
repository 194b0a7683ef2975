"""Core subcommands: `envs` (domains, tools, schemas) and `validate` (check a recipe without running it)."""
from __future__ import annotations

import argparse


def register(sub, bench_sub) -> None:
    p = sub.add_parser("envs", help="list tool environments, their tools and schemas")
    p.add_argument("--json", action="store_true", help="print domains, tools and JSON schemas as JSON")
    p.add_argument("--domain", help="only this domain")
    p.set_defaults(func=cmd_envs)

    p = sub.add_parser("validate", help="check recipes as one pipeline (keys, types, values, input paths, "
                       "optional packages, sub-recipes) without running them")
    p.add_argument("recipes", nargs="+", help="recipe YAML files")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--deep", action="store_true", help="also build the model on the meta device from its config: "
                   "LoRA targets, chat template, memory per GPU (offline; exit 2 on a failed deep check)")
    p.add_argument("--model-config", help="--deep: directory with the architecture's config.json "
                   "(default: the model dir, else recipes/model_configs/<Name>)")
    p.set_defaults(func=cmd_validate)


def envs_listing(domain: str | None = None) -> list[dict]:
    from ..envs import all_envs

    out = []
    for name, cls in all_envs().items():
        if domain and name != domain:
            continue
        tools = []
        for spec in cls.tool_specs().values():
            tools.append({"name": spec.name, "writes": spec.writes, "consumes": spec.consumes,
                          "produces": spec.produces, "schema": spec.schema})
        out.append({"domain": name, "description": cls.description, "tools": tools})
    return out


def cmd_envs(args: argparse.Namespace) -> int:
    from ..cliargs import print_json

    listing = envs_listing(args.domain)
    if args.domain and not listing:
        from .cli import UsageError

        raise UsageError(f"--domain {args.domain}: no such domain")
    if args.json:
        print_json({"domains": listing, "n_domains": len(listing), "n_tools": sum(len(d["tools"]) for d in listing)})
        return 0
    import sys

    rows = []
    for d in listing:
        for tl in d["tools"]:
            params = tl["schema"]["function"]["parameters"]
            req = set(params.get("required", []))
            ps = ", ".join(k + ("" if k in req else "?") for k in params.get("properties", {}))
            rows.append((d["domain"], tl["name"], "w" if tl["writes"] else "r", ps))
    if not sys.stdout.isatty():  # piped: whole names, one tool per line, tab-separated (rich would cut to 80 columns)
        for r in rows:
            print("\t".join(r))
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{len(listing)} domains, {sum(len(d['tools']) for d in listing)} tools")
    t.add_column("domain", no_wrap=True)
    t.add_column("tool", no_wrap=True)  # names whole; the parameters column wraps instead
    t.add_column("rw")
    t.add_column("parameters", overflow="fold")
    for r in rows:
        t.add_row(*r)
    Console().print(t)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .validate import validate

    return validate(args.recipes, args.overrides, getattr(args, "deep", False), args.model_config)
