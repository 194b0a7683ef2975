#!/usr/bin/env bash
# GPU smoke run: a random ~1B Llama-3-architecture model (bf16, no download) through in-process vLLM generation
# (ToolACE-MT + MAS), LoRA SFT via `accelerate launch`, BFCL- and tau-style evaluation with the adapter.
# Prints a table (step, PASS/FAIL, seconds, tokens/s) and writes <out>/doctor.json. Under 8 minutes on one GPU.
#   pip install -e '.[vllm]'
#   scripts/gpu_smoke.sh [OUT_DIR]          # default runs/doctor/gpu
#   scripts/gpu_smoke.sh --cpu [OUT_DIR]    # the same steps on a tiny fp32 model (CPU; transformers backend
#                                           # where vLLM is not installed)
set -euo pipefail
mode=--gpu
if [[ "${1:-}" == "--cpu" ]]; then mode=--cpu; shift; fi
out="${1:-runs/doctor/${mode#--}}"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec python -m toolace_mt.app.cli doctor "$mode" --out "$out"
