"""`toolace-mt bench generation-rules`: rules-engine throughput in one process (target: 8,000 kept dialogues
in <= 3 minutes on one core). Runs the three stages in memory (no run directory) and prints figures."""
from __future__ import annotations

import json
import time

from toolace_mt.config import apply_overrides
from toolace_mt.runs import machine_info

from .config import parse_recipe
from .pipeline import run_batch


def bench_rules(n: int, domains: str, batch_size: int = 64, overrides: list[str] | None = None) -> dict:
    raw = {"name": "bench-rules", "engine": "rules", "n_dialogues": n, "batch_size": batch_size,
           "domains": "all" if domains == "all" else domains.split(",")}
    cfg = parse_recipe(apply_overrides(raw, overrides))
    run_batch(cfg, [0])  # warm-up: schema derivation, imports
    from tqdm import tqdm

    t0 = time.perf_counter()
    kept = total = 0
    for s in tqdm(range(0, n, batch_size), desc="bench generation-rules", unit="batch"):
        ds = run_batch(cfg, list(range(s, min(n, s + batch_size))), typed=True)
        total += len(ds)
        kept += sum(d.verification.passed for d in ds)
    dt = time.perf_counter() - t0
    res = {"dialogues": total, "kept": kept, "pass_rate": round(kept / max(total, 1), 4), "seconds": round(dt, 2),
           "kept_per_s": round(kept / dt, 1), "projected_s_for_8000_kept": round(8000 / max(kept / dt, 1e-9), 1),
           "target_s_for_8000_kept": 180, "domains": cfg.domain_list(), "machine": machine_info()}
    print(json.dumps(res, indent=2, default=str))
    return res
