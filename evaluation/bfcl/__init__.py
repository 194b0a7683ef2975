"""BFCL-v3-style multi-turn suite (the official v3 multi-turn categories, entry layout and checker rules).

Modules: `official` (the optional, pinned `bfcl-eval` anchor: data files and executable env classes),
`backends` (worlds of live env instances + the safe executor), `checker` (pure scoring, official semantics),
`harness` (turn-by-turn play, batched across tasks), `suite` (registered as ``bfcl``), `build` (our own task
sets from `toolace_mt.envs`), `perturb` + `crosscheck` (agreement with the official checker), `bench`;
`single` (the single-turn categories, scored by bfcl-eval's own AST checker), `aggregate` (the v3 leaderboard's
Non-Live / Live / Overall beside the installed bfcl-eval's), `data` (`toolace-mt data bfcl --version v3`).
"""
from __future__ import annotations

# The four v3 multi-turn categories; the multi-turn overall is their unweighted mean (as BFCL's leaderboard).
CATEGORIES = ["base", "miss_param", "miss_func", "long_context"]
MAX_STEPS = 20  # BFCL MAXIMUM_STEP_LIMIT: more steps than this in one turn force-quits the entry (§1.6)
# The user message injected at a held-out-function turn (official FC wording, §1.5)
HELDOUT_USER_MESSAGE = "I have updated some more functions you can choose from. What about now?"


def official_category(cat: str) -> str:
    return f"multi_turn_{cat}"
