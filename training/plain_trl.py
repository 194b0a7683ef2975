"""A plain TRL script, the baseline of `toolace-mt bench training`: no checks, no run directory, no resume.

    python -m toolace_mt.training.plain_trl SPEC.json   # {model, rows, sft: {...}, lora: {...} | null}

It loads the model and tokenizer, reads the rows (messages + tools) with `datasets`, builds SFTConfig /
LoraConfig from the given kwargs, trains, and prints one JSON line with the trainer's figures.
"""
from __future__ import annotations

import json
import sys
import time


def main(spec_path: str) -> int:
    spec = json.load(open(spec_path))
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    t0 = time.time()  # after the imports, as for `run_training`
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(spec["model"])
    ds = load_dataset("json", data_files=spec["rows"], split="train")
    args = SFTConfig(**spec["sft"])
    peft = LoraConfig(**spec["lora"]) if spec.get("lora") else None
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=peft)
    cpu0 = time.process_time()
    res = trainer.train()
    cpu = time.process_time() - cpu0
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    rt = float(res.metrics["train_runtime"])
    print(json.dumps({"tokens_seen": tokens, "train_runtime_s": rt, "tokens_per_s": tokens / rt,
                      "train_cpu_s": cpu, "tokens_per_cpu_s": tokens / cpu,
                      "steps": trainer.state.global_step, "wall_time_s": time.time() - t0}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
