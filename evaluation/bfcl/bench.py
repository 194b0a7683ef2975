"""`toolace-mt bench evaluation`: how long the oracle takes through the BFCL harness and checker.

Targets: 800 official multi-turn entries played and scored with the oracle in under a minute; with ``--full``
the whole official set of a data version (single-turn + multi-turn: 4,441 entries) in under 2 minutes on
one core. Prints figures; asserts nothing.
"""
from __future__ import annotations

import time
from typing import Any


def bench_full(data_version: str = "v4") -> dict[str, Any]:
    """Every official entry of a data version (all single-turn and multi-turn categories), played and scored
    with the oracle through the suite (`BFCLSuite.run` + `score`), one process."""
    from ..config import EvaluateConfig
    from ..policies import PolicyConfig, make_policy
    from . import CATEGORIES
    from .single import SINGLE_CATEGORIES
    from .suite import BFCLSuite

    cfg = EvaluateConfig(suite="bfcl", source="official", data_version=data_version, progress=False,
                         categories=SINGLE_CATEGORIES + CATEGORIES, policy=PolicyConfig(kind="oracle"))
    suite = BFCLSuite()
    t0 = time.perf_counter()
    tasks = suite.load_tasks(cfg)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    trajs = suite.run(make_policy(cfg.policy), tasks, cfg, None)
    t_play = time.perf_counter() - t0
    t0 = time.perf_counter()
    by_id = {t["id"]: t for t in tasks}
    correct = sum(suite.score(by_id[tr["task_id"]], tr)["correct"] for tr in trajs)
    t_score = time.perf_counter() - t0
    return {"data_version": data_version, "entries": len(tasks), "correct": correct, "load_s": round(t_load, 2),
            "play_s": round(t_play, 2), "score_s": round(t_score, 2), "total_s": round(t_load + t_play + t_score, 2)}


def bench_oracle(n: int = 800, official: bool = False) -> dict[str, Any]:
    from ..policies import PolicyConfig, make_policy
    from . import CATEGORIES
    from . import official as off
    from .checker import check_entry, decode_turns
    from .harness import play

    per = max(1, n // len(CATEGORIES))
    t0 = time.perf_counter()
    tasks = [t for c in CATEGORIES for t in off.load_tasks([c])[:per]]
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    trajs = play(make_policy(PolicyConfig(kind="oracle")), tasks, progress=False)
    t_play = time.perf_counter() - t0
    t0 = time.perf_counter()
    verdicts = [check_entry(t, decode_turns(tr["turns"]))["valid"] for t, tr in zip(tasks, trajs)]
    t_score = time.perf_counter() - t0
    out = {"entries": len(tasks), "correct": sum(verdicts), "load_s": round(t_load, 2), "play_s": round(t_play, 2),
           "score_s": round(t_score, 2), "total_s": round(t_load + t_play + t_score, 2),
           "entries_per_s": round(len(tasks) / max(1e-9, t_play + t_score), 1)}
    if official:
        from .crosscheck import official_verdict

        t0 = time.perf_counter()
        out["official_correct"] = sum(official_verdict(t, tr["turns"])["valid"] for t, tr in zip(tasks, trajs))
        out["official_score_s"] = round(time.perf_counter() - t0, 2)
    return out
