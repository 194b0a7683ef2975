"""Run directories: the resolved recipe, resume, and refusal of a changed recipe.

A run directory holds ``recipe.yaml`` (the resolved recipe the run was started with). Starting the same run
again resumes it; starting it with a different recipe is refused with a diff, unless ``restart=True``, which
clears the directory first. Files are written atomically (temp file + rename) so a killed run never leaves
half a file behind.
"""
from __future__ import annotations

import difflib
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

import yaml

RECIPE_FILE = "recipe.yaml"


class RecipeChanged(RuntimeError):
    pass


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, allow_unicode=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


def read_jsonl(path: str | Path) -> list[Any]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
    return out


def prepare_run_dir(out: str | Path, resolved: dict[str, Any], restart: bool = False,
                    ignore_keys: tuple[str, ...] = ()) -> Path:
    """Create or reopen a run directory for `resolved` (a plain dict). Refuse a changed recipe with a diff.

    `ignore_keys` are top-level keys that may differ on a resume (e.g. a progress-bar switch).
    """
    out = Path(out)
    new_text = dump_yaml(resolved)
    rf = out / RECIPE_FILE
    if rf.exists() and not restart:
        old = yaml.safe_load(rf.read_text()) or {}
        strip = lambda d: {k: v for k, v in d.items() if k not in ignore_keys}  # noqa: E731
        if strip(old) != strip(resolved):
            diff = "".join(difflib.unified_diff(dump_yaml(strip(old)).splitlines(True),
                                                dump_yaml(strip(resolved)).splitlines(True),
                                                fromfile=f"{rf} (existing run)", tofile="requested recipe"))
            raise RecipeChanged(f"run directory {out} was started with a different recipe; "
                                f"use --restart to discard it, or another --out.\n{diff}")
        return out
    if restart and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(rf, new_text)
    return out


def machine_info() -> dict[str, Any]:
    """What a result ran on, for reports."""
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["memory_gb"] = round(kb / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
        info["torch_threads"] = torch.get_num_threads()
    except Exception:  # torch missing or broken: the report still says what we know
        pass
    return info
