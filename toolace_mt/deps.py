"""Optional dependencies a recipe needs (vLLM, Ray), checked by `toolace-mt validate` and before any run, so a
missing package is one `error:` line with the line that installs it, not a failure hours into a GPU job.

bfcl-eval is checked by the BFCL suite itself (`evaluation/bfcl/suite.py`), which owns its pinned version.
"""
from __future__ import annotations

import importlib.util

from .config import RecipeError

# name -> (module to find, the line that installs it)
OPTIONAL = {
    "vLLM": ("vllm", 'pip install -e ".[vllm]" (on a CUDA machine)'),
    "Ray": ("ray", 'pip install -e ".[ray]"'),
}


def installed(module: str) -> bool:
    """Whether `module` can be imported (found on the path; nothing is imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent package or a stale entry in sys.modules
        return False


def require(name: str, why: str) -> None:
    """A `RecipeError` naming the install line when the optional dependency `name` is missing."""
    module, line = OPTIONAL[name]
    if not installed(module):
        raise RecipeError(f"{why} needs {name}, which is not installed here: {line}")
