"""The MAS baseline (paper §4): autoregressive multi-agent simulation with the same plans, tools and verifier.

A user agent that knows its goal (the same `TaskPlan` ToolACE-MT stage 1 makes for the seed), an assistant
agent that sees only the tools and the conversation, and a tool agent (the environment) grow each dialogue one
turn and one agent decision at a time (`simulate.py`; rules agents in `agents.py`). This module is the
method module `generate` dispatches to for ``method: mas``: the same stage interface as
`toolace_mt.generation.pipeline` (``STAGES``, ``run_stage``, ``run_batch``), so the run directory, resume,
shards, verification, card and export are ToolACE-MT's own.
"""
from __future__ import annotations

from typing import Any, Optional

from .simulate import GENERATOR, simulate

STAGES = ("simulate", "verify")


def stage_verify(ds: list[dict[str, Any]], cfg, client=None) -> list[dict[str, Any]]:
    """Stage 3 of ToolACE-MT, unchanged: the same rule checks and model specialists judge MAS dialogues."""
    from ..pipeline import stage3

    return stage3(ds, cfg, client)


def run_stage(stage: str, cfg, indices: list[int], ds: Optional[list[dict[str, Any]]], client=None) -> list[dict[str, Any]]:
    """The run driver's entry: one named stage on one chunk (`ds` = the previous stage's output)."""
    if stage == "simulate":
        return simulate(cfg, indices, client)
    if stage == "verify":
        return stage_verify(ds, cfg, client)
    raise ValueError(f"unknown MAS stage {stage!r}; stages: {STAGES}")


def run_batch(cfg, indices: list[int], client=None) -> list[dict[str, Any]]:
    """Both stages on one batch (tests and benchmarks; the run driver calls the stages one by one)."""
    return stage_verify(simulate(cfg, indices, client), cfg, client)


__all__ = ["GENERATOR", "STAGES", "run_stage", "run_batch", "simulate"]
