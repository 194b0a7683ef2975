"""`evaluate` recipes: which suite, which tasks, which policy (`EvaluateConfig`, `parse_recipe`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..config import RECIPE_KINDS, RecipeError, dataclass_from_dict
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
        if self.tasks and not Path(self.tasks).exists() and "build" not in self.options:
            raise RecipeError(f"tasks: {self.tasks} does not exist")
        chk = getattr(suite, "check_config", None)
        if callable(chk):
            chk(self)


def parse_recipe(raw: dict[str, Any]) -> EvaluateConfig:
    return dataclass_from_dict(EvaluateConfig, raw)


RECIPE_KINDS.register("evaluate", parse_recipe)
