"""Multi-device training: a run whose recipe names ``num_devices > 1`` goes through ``accelerate launch``.

`toolace-mt train` and `toolace-mt reproduce` call `launch_training` for such a run: it checks that this machine
has the GPUs, then runs ``accelerate launch --config_file C --num_processes N -m toolace_mt.app.cli train RECIPE
--out OUT --set ...`` (one process per GPU) and returns the summary the main process wrote. A one-device run
trains in the calling process (`run_training`). Inside a launched run `check_world` makes sure the number of
processes is the one the recipe's global batch was computed with.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

from toolace_mt.config import RecipeError


def launched_world() -> Optional[int]:
    """The process count of a run started by ``accelerate launch`` / torchrun (``WORLD_SIZE``), else None."""
    w = os.environ.get("WORLD_SIZE")
    return int(w) if w and w.isdigit() else None


def needs_launch(cfg) -> bool:
    """Whether `cfg` must be started through ``accelerate launch`` from here (more than one device, and this
    process is not already one of a launched run)."""
    return cfg.launch.num_devices > 1 and launched_world() is None


def check_world(cfg) -> None:
    """A run inside ``accelerate launch``: its process count must be the recipe's `num_devices` (else the global
    batch is not the recipe's)."""
    world = launched_world()
    if world is not None and world != cfg.launch.num_devices:
        gb = cfg.global_batch()
        raise RecipeError(f"num_devices: the recipe trains on {gb['devices']} device(s) (global batch {gb['global']} "
                          f"= {gb['per_device']} x {gb['accumulation']} x {gb['devices']}), but this run has "
                          f"{world} processes: --set num_devices={world} and a --set gradient_accumulation_steps that "
                          "keeps the global batch")


def launch_command(recipe: str, overrides: list[str], out: Path, cfg, restart: bool = False) -> list[str]:
    """The ``accelerate launch`` command line that trains `recipe` (with `overrides`) into `out`."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", cfg.accelerate_config(),
           "--num_processes", str(cfg.launch.num_devices), "-m", "toolace_mt.app.cli", "train", str(recipe),
           "--out", str(out)]
    for item in overrides:
        cmd += ["--set", item]
    return cmd + (["--restart"] if restart else [])


def check_devices(cfg) -> None:
    """This machine has the GPUs the recipe names (before anything starts)."""
    n = cfg.launch.num_devices
    try:
        import torch

        have = torch.cuda.device_count()
    except Exception:  # torch without CUDA support: no GPU
        have = 0
    if have < n:
        gb = cfg.global_batch()
        raise RecipeError(f"num_devices: the recipe trains on {n} GPUs (global batch {gb['global']} = "
                          f"{gb['per_device']} x {gb['accumulation']} x {n}); this machine has {have}. On fewer "
                          f"GPUs keep the batch: --set num_devices=K --set gradient_accumulation_steps="
                          f"{gb['global'] // gb['per_device']}/K")


def launch_training(recipe: str, overrides: list[str], out: Path, cfg, restart: bool = False) -> dict[str, Any]:
    """Train through ``accelerate launch`` and return the run's summary."""
    check_devices(cfg)
    cmd = launch_command(recipe, overrides, out, cfg, restart)
    print("launch: " + " ".join(cmd), file=sys.stderr, flush=True)
    rc = subprocess.run(cmd).returncode
    summary = Path(out) / "summary.json"
    if rc != 0 or not summary.is_file():
        raise RuntimeError(f"accelerate launch of {recipe} exited {rc} without {summary} (its output is above)")
    return json.loads(summary.read_text())
