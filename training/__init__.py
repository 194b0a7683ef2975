"""toolace_mt.training: LoRA (or full) SFT with TRL + PEFT on generated dialogues.

config.py   recipe dataclasses (model / LoRA / data) + TRL SFTConfig pass-through; `parse_recipe`
template.py chat template choice and checks (mask covers assistant content, prefix, stop token)
tiny.py     tiny Qwen2 model + locally trained BPE tokenizer (CPU, no download)
data.py     load / mix datasets, TRL rows, checks before training, data_report.json
train.py    `run_training(cfg, out_dir, restart=False) -> summary`
cli.py      `toolace-mt train`, `toolace-mt bench training`
plain_trl.py the plain TRL script the bench compares against

Heavy libraries (torch, transformers, trl, peft) are imported inside functions, so importing this package
and `toolace-mt --help` stay fast.
"""
