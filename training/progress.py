"""The training run's console: one progress bar with the latest loss and token accuracy in its postfix.

It replaces transformers' `ProgressCallback` (which also writes every log entry as a raw dict line) and its
`PrinterCallback` (the same dicts when tqdm is off); the log entries still go to `training_log.json`.
"""
from __future__ import annotations

from typing import Any, Optional

from transformers import TrainerCallback


def _num(v: Any) -> Optional[float]:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class LossBar(TrainerCallback):
    """A tqdm bar over the optimizer steps of the main process, postfix: loss and token accuracy."""

    def __init__(self, desc: str):
        self.desc, self.bar = desc, None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.desc, unit="step",
                            dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None or not logs:
            return
        post = {}
        for key, short in (("loss", "loss"), ("mean_token_accuracy", "acc"), ("eval_loss", "eval_loss")):
            v = _num(logs.get(key))
            if v is not None:
                post[short] = f"{v:.3f}"
        if post:
            self.bar.set_postfix(post)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def use_loss_bar(trainer, desc: str) -> None:
    """Swap the trainer's console callbacks for `LossBar`."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(LossBar(desc))
