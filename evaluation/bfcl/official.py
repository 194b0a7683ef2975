"""The official BFCL data (multi-turn and single-turn) and multi-turn env classes, from the optional
`bfcl-eval` package, in two data versions (recipe key ``data_version``):

* ``v4`` (default): the installed, pinned package's ``BFCL_v4_*`` files (its late-2025 dataset fixes);
* ``v3``: the paper-era ``BFCL_v3_*`` files of bfcl-eval 2025.8.6.2, the last release before the V4 files,
  fetched from the package index and unpacked by ``toolace-mt data bfcl --version v3`` (sha256-checked) into
  ``data/bfcl/v3`` (or ``$TOOLACE_BFCL_V3_DIR``); its multi-turn env classes come from the same release.

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


DATA_VERSIONS = ("v3", "v4")
V3_RELEASE = "2025.8.6.2"  # chosen: the last bfcl-eval release that ships BFCL_v3_* files (2025.8.25 on: V4)
V3_WHEEL = f"bfcl_eval-{V3_RELEASE}-py3-none-any.whl"
V3_WHEEL_SHA256 = "fdb996ac963ed1c6fce1eb4884053aae4a6de282fb931665a46dbeed204a228d"  # pip download, 2026-12-07
V3_DEFAULT_DIR = Path("data/bfcl/v3")
# our category names -> the v3 file names where they differ (V4 renamed simple/java/javascript)
V3_NAMES = {"simple_python": "simple", "simple_java": "java", "simple_javascript": "javascript"}


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


def v3_dir() -> Path:
    return Path(os.environ.get("TOOLACE_BFCL_V3_DIR") or V3_DEFAULT_DIR)


def data_dir(data_version: str = "v4") -> Path:
    """The folder holding ``BFCL_<version>_*.json``, ``possible_answer/`` and ``multi_turn_func_doc/``."""
    if data_version == "v4":
        return package_dir() / "data"
    if data_version != "v3":
        raise ValueError(f"data_version must be one of {DATA_VERSIONS}")
    d = v3_dir() / "data"
    if not (d / "BFCL_v3_simple.json").is_file():
        raise BFCLUnavailable(f"the BFCL v3 data is not at {d.parent} (fetch it: toolace-mt data bfcl --version v3, "
                              "or set TOOLACE_BFCL_V3_DIR)")
    return d


def data_file(official_name: str, data_version: str = "v4") -> str:
    """``BFCL_<version>_<name>.json`` for an official category name (``multi_turn_base``, ``simple_python``)."""
    if data_version == "v3":
        official_name = V3_NAMES.get(official_name, official_name)
    return f"BFCL_{data_version}_{official_name}.json"


def release(data_version: str = "v4") -> str:
    """The bfcl-eval release a data version's files come from."""
    return version() if data_version == "v4" else V3_RELEASE


@lru_cache(maxsize=None)
def _load_category(cat: str, data_version: str = "v4") -> tuple[dict, ...]:
    name = data_file(official_category(cat), data_version)
    data = data_dir(data_version)
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
            "data_version": data_version,
        })
    return tuple(out)


def load_tasks(categories: list[str] | None = None, data_version: str = "v4") -> list[dict[str, Any]]:
    """Official multi-turn entries as task dicts in our BFCL layout (fresh copies)."""
    cats = categories or CATEGORIES
    bad = [c for c in cats if c not in CATEGORIES]
    if bad:
        raise ValueError(f"unknown BFCL multi-turn categories {bad}; known: {CATEGORIES}")
    return [json.loads(json.dumps(t)) for c in cats for t in _load_category(c, data_version)]


@lru_cache(maxsize=None)
def function_docs(class_name: str, data_version: str = "v4") -> tuple[dict, ...]:
    return tuple(_jsonl(data_dir(data_version) / "multi_turn_func_doc" / CLASSES[class_name][1]))


@lru_cache(maxsize=None)
def env_class(class_name: str, data_version: str = "v4") -> type:
    if class_name not in CLASSES:
        raise KeyError(f"unknown BFCL class {class_name!r}")
    ensure_project_root()
    if data_version == "v3":
        return getattr(_v3_module(CLASSES[class_name][0]), class_name)
    mod = importlib.import_module(f"{MODULE_PREFIX}.{CLASSES[class_name][0]}")
    return getattr(mod, class_name)


@lru_cache(maxsize=None)
def _v3_module(name: str):
    """A v3 env-class module from the unpacked release (``<v3 dir>/func_source_code/<name>.py``), under its own
    module name. Its absolute import of the package's ``long_context`` module is pointed, while it loads, at the
    v3 copy, so the v3 classes use v3 data throughout; the installed package is left as it was."""
    import sys

    path = v3_dir() / "func_source_code" / f"{name}.py"
    if not path.is_file():
        raise BFCLUnavailable(f"{path} is missing (fetch the v3 data: toolace-mt data bfcl --version v3)")
    key = f"{MODULE_PREFIX}.long_context"
    lc = _v3_module("long_context") if name != "long_context" else None
    saved = sys.modules.get(key)
    spec = importlib.util.spec_from_file_location(f"toolace_mt_bfcl_v3_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    try:
        if lc is not None:
            importlib.import_module(MODULE_PREFIX)  # the parent package, so the swapped name resolves
            sys.modules[key] = lc
        spec.loader.exec_module(mod)
    finally:
        if lc is not None:
            if saved is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = saved
    return mod
