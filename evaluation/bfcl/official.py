"""The official BFCL v3 multi-turn data and env classes, from the optional `bfcl-eval` package.

Install (pinned, without its multi-GB dependencies, which would pull CUDA torch)::

    .venv/bin/pip install --no-deps bfcl-eval==2026.3.23

We read its data files (question + possible_answer JSON lines, function docs) directly and import only its
env classes and, for the cross-check, its checker. `BFCL_PROJECT_ROOT` is always pointed at a scratch
directory first, because importing its constants creates result/score folders under that root (by default:
inside site-packages).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import CATEGORIES, official_category

PINNED_VERSION = "2026.3.23"  # chosen: the release whose data and checker our cross-checks were measured on
MODULE_PREFIX = "bfcl_eval.eval_checker.multi_turn_eval.func_source_code"
# class -> (module, function-doc file); mirrors the package's own mapping for the 8 multi-turn classes
CLASSES = {
    "GorillaFileSystem": ("gorilla_file_system", "gorilla_file_system.json"),
    "MathAPI": ("math_api", "math_api.json"),
    "MessageAPI": ("message_api", "message_api.json"),
    "TwitterAPI": ("posting_api", "posting_api.json"),
    "TicketAPI": ("ticket_api", "ticket_api.json"),
    "TradingBot": ("trading_bot", "trading_bot.json"),
    "TravelAPI": ("travel_booking", "travel_booking.json"),
    "VehicleControlAPI": ("vehicle_control", "vehicle_control.json"),
}
STATELESS = {"MathAPI"}  # loaded without a scenario


class BFCLUnavailable(RuntimeError):
    pass


def ensure_project_root() -> str:
    """Point BFCL_PROJECT_ROOT at a scratch directory (unless the user set one) before any bfcl_eval import."""
    root = os.environ.get("BFCL_PROJECT_ROOT")
    if not root:
        root = str(Path(tempfile.gettempdir()) / "toolace_mt_bfcl_root")
        os.environ["BFCL_PROJECT_ROOT"] = root
    Path(root).mkdir(parents=True, exist_ok=True)
    return root


def available() -> bool:
    return importlib.util.find_spec("bfcl_eval") is not None


@lru_cache(maxsize=1)
def package_dir() -> Path:
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise BFCLUnavailable("bfcl-eval is not installed: .venv/bin/pip install --no-deps "
                              f"bfcl-eval=={PINNED_VERSION}")
    return Path(list(spec.submodule_search_locations)[0])


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as v

    try:
        return v("bfcl-eval")
    except PackageNotFoundError:
        return "missing"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@lru_cache(maxsize=None)
def _load_category(cat: str) -> tuple[dict, ...]:
    name = f"BFCL_v4_{official_category(cat)}.json"
    data = package_dir() / "data"
    entries = _jsonl(data / name)
    gts = {g["id"]: g["ground_truth"] for g in _jsonl(data / "possible_answer" / name)}
    out = []
    for e in entries:
        if e["id"] not in gts:
            raise ValueError(f"{name}: entry {e['id']} has no ground truth")
        out.append({
            "id": e["id"], "category": cat, "backend": "official",
            "question": e["question"], "initial_config": e.get("initial_config", {}),
            "involved_classes": e["involved_classes"], "missed_function": e.get("missed_function", {}),
            "long_context": cat == "long_context", "ground_truth": gts[e["id"]],
        })
    return tuple(out)


def load_tasks(categories: list[str] | None = None) -> list[dict[str, Any]]:
    """Official v3 multi-turn entries as task dicts in our BFCL layout (fresh copies)."""
    cats = categories or CATEGORIES
    bad = [c for c in cats if c not in CATEGORIES]
    if bad:
        raise ValueError(f"unknown BFCL multi-turn categories {bad}; known: {CATEGORIES}")
    return [json.loads(json.dumps(t)) for c in cats for t in _load_category(c)]


@lru_cache(maxsize=None)
def function_docs(class_name: str) -> tuple[dict, ...]:
    return tuple(_jsonl(package_dir() / "data" / "multi_turn_func_doc" / CLASSES[class_name][1]))


@lru_cache(maxsize=None)
def env_class(class_name: str) -> type:
    if class_name not in CLASSES:
        raise KeyError(f"unknown BFCL class {class_name!r}")
    ensure_project_root()
    mod = importlib.import_module(f"{MODULE_PREFIX}.{CLASSES[class_name][0]}")
    return getattr(mod, class_name)
