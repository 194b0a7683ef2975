"""The ToolACE-MT method over one batch of dialogue indices: stage 1 -> stage 2 -> stage 3.

Each stage function takes and returns dialogues in their JSON form, so the run driver can store each stage's
output as a JSONL shard and resume from any of them; inside a stage a dialogue is the typed `WorkDialogue`
(`dialogue.py`), converted only at that boundary. Every dialogue's randomness comes from seeds derived from
(seed, index), so the output of an index never depends on the batch it was in.
"""
from __future__ import annotations

from typing import Any, Optional

from .dialogue import WorkDialogue
from .pool import plan_for
from .refine import run_stage2
from .skeleton import build_llm, build_rules
from .verify import verify_batch

STAGES = ("skeleton", "refine", "verify")


def stage1(cfg, indices: list[int], client=None) -> list[dict[str, Any]]:
    plans = [plan_for(cfg, i) for i in indices]
    if cfg.engine == "rules" and not cfg.tool_pool:
        work = [build_rules(p, i, cfg) for p, i in zip(plans, indices)]
    else:
        work = build_llm(plans, indices, cfg, client)
    return [w.to_dict() for w in work]  # JSON at the stage boundary


def stage2(ds: list[dict[str, Any]], cfg, client=None) -> list[dict[str, Any]]:
    work = [WorkDialogue.from_dict(d) for d in ds]  # JSON in and out at the stage boundary only
    run_stage2(work, cfg, client)
    return [w.to_dict() for w in work]


def stage3(ds: list[dict[str, Any]], cfg, client=None) -> list[dict[str, Any]]:
    return [w.to_dict() for w in verify_stage(ds, cfg, client)]


def verify_stage(ds: list[dict[str, Any]], cfg, client=None) -> list[WorkDialogue]:
    """Stage 3 on stage 2's JSON: the verified, finalised typed dialogues."""
    # the verifiers check the typed dialogues (the same checks `toolace-mt verify` runs on any dataset); then the
    # positions for the record are set
    work = [WorkDialogue.from_dict(d) for d in ds]
    if cfg.verify:
        verify_batch(work, cfg.verifiers(), client, cfg.llm, batched=cfg.batch_specialists)
    for w in work:
        finalize(w)
    return work


def finalize(d: WorkDialogue) -> None:
    """Positions for the record: injection turns and edited turns as message indices of the final dialogue."""
    where = {tg.uid: i for i, tg in enumerate(d.turns)}
    for r in d.injections:
        r.positions = [where.get(u) for u in r.uids]
    ref = d.refinement
    ref.edited_positions = sorted(where[u] for u in ref.edit_log if u in where)
    ref.weights = None  # selection weights matter only while refining
    d.injection_types = [r.type for r in d.injections]


def run_batch(cfg, indices: list[int], client=None, typed: bool = False) -> list[Any]:
    """All three stages on one batch (tests and benchmarks; the run driver calls the stages one by one): the
    records as JSON, or with `typed` the `WorkDialogue`s."""
    ds = stage2(stage1(cfg, indices, client), cfg, client)
    return verify_stage(ds, cfg, client) if typed else stage3(ds, cfg, client)


def run_stage(stage: str, cfg, indices: list[int], ds: Optional[list[dict[str, Any]]], client=None) -> list[dict[str, Any]]:
    """The run driver's entry: one named stage on one chunk (`ds` = the previous stage's output)."""
    if stage == "skeleton":
        return stage1(cfg, indices, client)
    if stage == "refine":
        return stage2(ds, cfg, client)
    if stage == "verify":
        return stage3(ds, cfg, client)
    raise ValueError(f"unknown stage {stage!r}; stages: {STAGES}")
