"""The SFT loss as the model itself computes it: an `SFTTrainer` whose `compute_loss` is transformers' own.

TRL 1.16's `SFTTrainer.compute_loss` always runs the model with ``fused_lm_head=True``: a chunked log-softmax
over the vocabulary that also yields per-token entropy and top-1 for its logged metrics. It saves memory where
the vocabulary is large (a 128k-token LM head on a GPU). On the CPU tier (vocabulary 4,096, 2 threads) it is the
dearest part of a step: 0.64 s a step with it, 0.48 s with the model's own cross-entropy, the loss equal to
1e-6 over 40 steps (recipes/reproduce/README.md, "Step cost"). Both are the mean negative log-likelihood of the
tokens whose label is not -100 (the collator masks prompt / non-assistant tokens there), divided by
`num_items_in_batch` when the Trainer passes it (gradient accumulation), so switching changes speed, not what
is learned. ``fused_loss: false`` in a training recipe selects this class (`training/config.py`).
"""
from __future__ import annotations

from typing import Any


def model_loss_trainer_class():
    """`SFTTrainer` subclass computing the loss with `transformers.Trainer.compute_loss` (lazy: TRL imports torch)."""
    import torch
    from transformers import Trainer
    from trl import SFTTrainer

    class ModelLossSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch=None):
            inputs["use_cache"] = False  # as SFTTrainer: no KV cache while training
            labels = inputs.get("labels")
            loss, outputs = Trainer.compute_loss(self, model, inputs, return_outputs=True,
                                                 num_items_in_batch=num_items_in_batch)
            metrics = getattr(self, "_metrics", None)
            if labels is not None and metrics is not None and getattr(outputs, "logits", None) is not None:
                # the token accuracy TRL logs (`mean_token_accuracy`): greedy next-token hits on labelled tokens
                with torch.no_grad():
                    target = labels[:, 1:]
                    valid = target != -100
                    hits = (outputs.logits[:, :-1].argmax(-1) == target) & valid
                    n = self.accelerator.gather_for_metrics(valid.sum()).sum()
                    k = self.accelerator.gather_for_metrics(hits.sum()).sum()
                mode = "train" if model.training else "eval"
                metrics[mode]["mean_token_accuracy"].append((k / n).item() if n > 0 else 0.0)
            return (loss, outputs) if return_outputs else loss

    return ModelLossSFTTrainer
