"""`toolace-mt` entry point. Subcommands come from modules that expose ``register(subparsers)``.

Registration modules import only argparse-level code; heavy imports (torch, transformers, vllm) happen inside
the command handlers, so `toolace-mt --help` stays fast. Each handler returns an exit code.

Errors are handled here, once, for every subcommand: `check_args` validates paths, counts, shard specs and
domains before a handler runs (so nothing is created for a command that cannot run), and `main` turns what a
handler raises into one line ``error: ...`` on stderr: a usage or input problem (bad recipe, bad data file,
OSError such as a missing file or a full disk, JSON/YAML errors, bad values, a locked run directory) exits 2;
anything else is a bug and exits 1, still without a traceback unless ``TOOLACE_MT_DEBUG=1``.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sys
from pathlib import Path

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


# subcommand -> the recipe kind its RECIPE argument must be (checked by `check_args`)
RECIPE_OF = {"generate": "generate", "train": "train", "evaluate": "evaluate", "reproduce": "reproduce",
             "verify": "generate", "bench training": "train"}
# subcommands whose --out names a file (all others: a directory)
FILE_OUT_COMMANDS = frozenset({"crosscheck"})
# integer options by dest: the smallest value that makes sense (None is always allowed: "use the default")
MIN_INT = {"limit": 1, "per_category": 1, "n": 1, "batch_size": 1, "distractors": 0, "repeats": 1,
           "shards": 1}  # generate / evaluate --shards (a count); merge-shards' shards is a list, not checked here
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class UsageError(ValueError):
    """A command line that cannot run; printed as ``error: ...`` with exit 2."""


def _nearest_existing(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_out_path(out: str, is_file: bool = False) -> None:
    """``--out`` must be creatable and writable, and a directory unless ``is_file`` (then a file)."""
    p = Path(out)
    if p.exists():
        if is_file and p.is_dir():
            raise UsageError(f"--out {out}: is a directory, expected a file path")
        if not is_file and not p.is_dir():
            raise UsageError(f"--out {out}: exists and is not a directory")
    base = _nearest_existing(p if not is_file or p.exists() else p.parent)
    if not base.is_dir():
        raise UsageError(f"--out {out}: {base} is a file, so it cannot hold a run directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: {base} is not writable")


def parse_shard_spec(spec: str) -> tuple[int, int]:
    m = _SHARD.match(str(spec))
    if not m:
        raise UsageError(f"--shard {spec!r}: expected i/N with integers, e.g. 0/4")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or i >= n:
        raise UsageError(f"--shard {spec!r}: need 0 <= i < N and N >= 1")
    return i, n


def _check_domains(flag: str, value) -> None:
    if value is None:
        return
    names = value if isinstance(value, list) else [x.strip() for x in str(value).split(",") if x.strip()]
    if names == ["all"]:
        return
    if not names:
        raise UsageError(f"{flag}: no domain given")
    from ..envs import all_envs

    known = sorted(all_envs())
    bad = [d for d in names if d not in known]
    if bad:
        raise UsageError(f"{flag}: unknown domain(s) {', '.join(bad)}; known: {', '.join(known)}")


def _check_executor(args: argparse.Namespace) -> None:
    """``--executor``/``--address``/``--shards``, the same for every command that has them (generate, evaluate,
    reproduce): the Ray flags need ``--executor ray``; with it, Ray must be importable and the address answer
    within a bounded time (`toolace_mt.executor.check_address`), all before anything is created."""
    executor = getattr(args, "executor", None)
    if executor is None:
        return
    address = getattr(args, "address", None)
    counted = hasattr(args, "shards") and not isinstance(getattr(args, "shards"), list)
    if executor != "ray" and (address or (counted and args.shards is not None)):
        flags = ["--address"] + (["--shards"] if counted else [])
        raise UsageError(f"{'/'.join(flags)} need{'s' if len(flags) == 1 else ''} --executor ray")
    if executor == "ray":
        from ..executor import check_address, import_ray

        import_ray()  # the install hint, up front
        check_address(address)


def recipe_path_hint(recipe: str) -> str:
    """A hint for a recipe path that does not resolve from the working directory: recipes (and the paths inside
    them) are relative to the repository root."""
    p = Path(recipe)
    if p.is_absolute():
        return ""
    import toolace_mt

    root = Path(toolace_mt.__file__).resolve().parents[1]  # the checkout of an editable install
    if (root / p).is_file() and Path.cwd().resolve() != root:
        return (f" here ({Path.cwd()}); recipes and the paths inside them are relative to the repository root: "
                f"cd {root}")
    return ""


def check_args(args: argparse.Namespace) -> None:
    """Validate the command line before the handler touches anything (see the module docstring)."""
    cmd = getattr(args, "command", None)
    for dest, lo in MIN_INT.items():
        v = getattr(args, dest, None)
        if isinstance(v, int) and not isinstance(v, bool) and v < lo:
            raise UsageError(f"--{dest.replace('_', '-')} must be >= {lo}, got {v}")
    perturb = getattr(args, "perturb", None)
    if isinstance(perturb, float) and not 0.0 <= perturb <= 1.0:
        raise UsageError(f"--perturb must be in [0, 1], got {perturb}")
    if getattr(args, "shard", None):
        parse_shard_spec(args.shard)
    _check_executor(args)
    _check_domains("--domains", getattr(args, "domains", None))
    _check_domains("--heldout-domains", getattr(args, "heldout_domains", None))
    recipe = getattr(args, "recipe", None)
    if isinstance(recipe, str):
        if not Path(recipe).is_file():
            raise UsageError(f"recipe {recipe}: file not found{recipe_path_hint(recipe)}")
        kind = RECIPE_OF.get(cmd) or RECIPE_OF.get(f"{cmd} {getattr(args, 'bench_command', '')}")
        if kind:  # parse and deep-check now, so a recipe that cannot run never creates its run directory
            from ..config import load_recipe

            _, cfg, _ = load_recipe(recipe, getattr(args, "overrides", None), expect=kind)
            check = getattr(cfg, "check", None)
            if callable(check):
                out = getattr(args, "out", None)
                check(run_dir=Path(out)) if kind == "reproduce" and out else check()
    data = getattr(args, "data", None)
    if isinstance(data, str) and not Path(data).exists():
        raise UsageError(f"{data}: no such file or directory")
    run_dir = getattr(args, "run_dir", None)
    if isinstance(run_dir, str) and not Path(run_dir).is_dir():
        raise UsageError(f"{run_dir}: not a run directory")
    shards = getattr(args, "shards", None)
    for s in shards if isinstance(shards, list) else []:  # merge-shards: run dirs (generate's --shards is a count)
        if not Path(s).is_dir():
            raise UsageError(f"{s}: not a run directory")
    for dest in ("out", "results"):
        v = getattr(args, dest, None)
        if isinstance(v, str) and v:
            check_out_path(v, is_file=(dest == "out" and cmd in FILE_OUT_COMMANDS))


def _one_line(text: str, limit: int = 600) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def describe_error(e: BaseException) -> tuple[int, str]:
    """(exit code, message) for an exception a handler raised."""
    import yaml

    from ..config import RecipeError
    from ..io import DataFileError
    from ..registry import RegistryError
    from ..runs import DiskFull, RecipeChanged, RunLocked

    if isinstance(e, RecipeChanged):
        return 2, str(e)  # carries a diff: keep its lines
    if isinstance(e, (RecipeError, DataFileError, RunLocked, UsageError, DiskFull, RegistryError)):
        return 2, _one_line(e)
    if isinstance(e, OSError):
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return 2, _one_line(f"disk full{f' while writing {e.filename}' if e.filename else ''}: free space and "
                                "rerun the same command (it resumes from the last complete step)")
        where = f"{e.filename}: " if e.filename else ""
        return 2, _one_line(f"{where}{e.strerror or e}")
    if isinstance(e, json.JSONDecodeError):
        return 2, _one_line(f"not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}")
    if isinstance(e, yaml.YAMLError):
        return 2, _one_line(f"not valid YAML: {e}")
    if isinstance(e, (ValueError, UnicodeError)):
        return 2, _one_line(e)
    return 1, _one_line(f"internal error: {type(e).__name__}: {e} (set TOOLACE_MT_DEBUG=1 for the traceback)")


def warn_once() -> None:
    """Show each warning text once per command: libraries reset Python's per-location registry (every
    `warnings.catch_warnings` does), so the same deprecation would otherwise print once per model or trainer."""
    import warnings

    show = warnings.showwarning
    if getattr(show, "_toolace_once", False):
        return
    seen: set[tuple[type, str]] = set()

    def showwarning(message, category, filename, lineno, file=None, line=None):
        key = (category, str(message))
        if key not in seen:
            seen.add(key)
            show(message, category, filename, lineno, file, line)

    showwarning._toolace_once = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning


# commands that load models and datasets many times: one bar per long step (our own), not one per load
QUIET_BARS = frozenset({"train", "evaluate", "reproduce", "doctor"})


def quiet_library_bars() -> None:
    """Turn off the per-load bars of transformers (loading weights, writing shards) and datasets (tokenizing,
    truncating, ...): a reproduce run loads models dozens of times, and each bar lasts a second. The training bar
    (`training.progress.LossBar`), generation and evaluation bars and hub downloads keep theirs."""
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # read when datasets is first imported
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    hf_logging.disable_progress_bar()
    ds = sys.modules.get("datasets")
    if ds is not None:  # already imported (tests, an earlier command in this process)
        ds.disable_progress_bars()


def main(argv: list[str] | None = None) -> int:
    warn_once()
    parser = build_parser()
    args = parser.parse_args(argv)
    fn = getattr(args, "func", None)
    if fn is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        check_args(args)
        if args.command in QUIET_BARS:
            quiet_library_bars()
        return int(fn(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted (rerun the same command to resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `toolace-mt envs | head`: the reader is gone, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # the one place errors become exit codes; see the module docstring
        if os.environ.get("TOOLACE_MT_DEBUG"):
            import traceback

            traceback.print_exc()
        code, msg = describe_error(e)
        _close_progress_bars()
        print(f"error: {msg}", file=sys.stderr)
        return code
    finally:
        from ..runs import release_all_run_dirs

        release_all_run_dirs()  # a command's run directories are free again once it returns


def _close_progress_bars() -> None:
    """Finish any tqdm bar left open by the failed command, so the error starts on its own line."""
    tqdm_mod = sys.modules.get("tqdm")
    bars = list(getattr(getattr(tqdm_mod, "tqdm", None), "_instances", None) or [])
    for bar in bars:
        try:
            bar.close()
        except Exception:  # a bar that cannot close must not hide the error message
            pass
    if bars:
        sys.stderr.write("\n")


if __name__ == "__main__":
    sys.exit(main())
