"""`evaluate` recipes: which suite, which tasks, which policy (`EvaluateConfig`, `parse_recipe`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..config import RECIPE_KINDS, RecipeError, check_input, dataclass_from_dict, looks_local
from ..deps import require
from .policies import PolicyConfig


@dataclass
class EvaluateConfig:
    """One evaluation.

    * ``suite``: registered suite name (bfcl | tau | ace | ...);
    * ``source``: where tasks come from -- suite-specific (bfcl: ``official`` = the `bfcl-eval` package's
      v3 multi-turn entries, ``own`` = a task file built from our environments, given in ``tasks``);
    * ``tasks``: path to a task file / directory (own task sets);
    * ``categories``: subset of the suite's categories (empty = all);
    * ``limit``: at most this many tasks per category (None = all), taken in file order;
    * ``n_trials``: independent runs of every task (pass^k suites use > 1);
    * ``max_steps``: per-turn step cap (None = the suite's default, e.g. BFCL's 20);
    * ``data_version``: which release of the suite's official data (bfcl: ``v3`` = the paper-era files,
      fetched by ``toolace-mt data bfcl --version v3``; ``v4`` = the installed bfcl-eval's; default v4);
    * ``options``: suite-specific keys (each suite documents and checks its own).
    """

    suite: str = "bfcl"
    source: str = "official"
    tasks: Optional[str] = None
    categories: list[str] = field(default_factory=list)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    limit: Optional[int] = None
    n_trials: int = 1
    seed: int = 0
    max_steps: Optional[int] = None
    progress: bool = True
    data_version: Optional[str] = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.policy, dict):
            self.policy = dataclass_from_dict(PolicyConfig, self.policy, where="policy.")
        if self.n_trials < 1:
            raise ValueError("n_trials must be >= 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1 (or null for all)")

    def check(self) -> None:
        """Deeper checks for `toolace-mt validate`: the suite exists and the task file is there."""
        from .suites import get_suite

        suite = get_suite(self.suite)
        if self.tasks and "build" not in self.options:
            check_input("tasks", self.tasks)
        _check_policy_paths(self.policy)
        chk = getattr(suite, "check_config", None)
        if callable(chk):
            chk(self)


def _check_policy_paths(policy: PolicyConfig) -> None:
    """The policy's paths are of the kind they must be (file or directory), so `validate` refuses what the run
    would fail on. A path under ``runs/`` that is not there yet is left alone: an earlier stage of the pipeline
    (train) makes it."""
    if policy.kind == "vllm" or (policy.extra or {}).get("backend") == "vllm":
        require("vLLM", f"policy.kind {policy.kind}")
    if policy.kind == "replay" and policy.path:
        p = Path(policy.path)
        if not check_input("policy.path", p):
            return  # an earlier step (an evaluation) writes it
        if policy.format == "trajectories":
            if p.is_dir() and not (p / "trajectories.jsonl").is_file():
                raise RecipeError(f"policy.path: {p} is a directory without trajectories.jsonl; format trajectories "
                                  "needs a JSONL file or an evaluation run directory that holds trajectories.jsonl")
        elif policy.format in ("bfcl_result", "ace_result"):
            from .policies.replay import result_files

            result_files(p, policy.format)  # a folder without result files is an error naming the pattern
    if policy.kind in ("transformers", "vllm"):
        model = Path(policy.model)
        if policy.model and looks_local(policy.model) and not check_input("policy.model", model):
            return  # a train step before this one writes it
        if policy.adapter and not check_input("policy.adapter", policy.adapter):
            return
        # chosen: a .gguf file is a model vLLM loads from one file; any other file is not a model
        if model.is_file() and not (policy.kind == "vllm" and model.suffix == ".gguf"):
            raise RecipeError(f"policy.model: {model} is a file; give a model directory (with config.json) or a "
                              "hub id")
        if policy.adapter and Path(policy.adapter).is_file():
            raise RecipeError(f"policy.adapter: {policy.adapter} is a file; give the adapter directory (with "
                              "adapter_config.json)")


def parse_recipe(raw: dict[str, Any]) -> EvaluateConfig:
    return dataclass_from_dict(EvaluateConfig, raw)


RECIPE_KINDS.register("evaluate", parse_recipe)
