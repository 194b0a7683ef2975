"""vLLM at scale, configured from the recipe: tensor / pipeline parallel sizes and the executor backend reach
`vllm.LLM`; data_parallel_size does not (it is the Ray executor's shard count). A stand-in `vllm` module records
the engine arguments, so this runs without vLLM or a GPU."""
from __future__ import annotations

import sys
import types

from toolace_mt.llm.client import LLMConfig


def test_parallel_sizes_reach_the_engine(monkeypatch):
    seen = {}

    class LLM:
        def __init__(self, **kw):
            seen.update(kw)

        def get_tokenizer(self):
            return object()

    fake = types.ModuleType("vllm")
    fake.LLM = LLM
    lora = types.ModuleType("vllm.lora.request")
    lora.LoRARequest = object
    sp = types.ModuleType("vllm.sampling_params")
    sp.StructuredOutputsParams = object
    for name, mod in {"vllm": fake, "vllm.lora": types.ModuleType("vllm.lora"), "vllm.lora.request": lora,
                      "vllm.sampling_params": sp}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    from toolace_mt.executor import default_shards, shard_resources
    from toolace_mt.llm.vllm_backend import VLLMBackend

    cfg = LLMConfig(backend="vllm", model="Qwen/Qwen2.5-72B-Instruct", extra={
        "tensor_parallel_size": 4, "pipeline_parallel_size": 2, "distributed_executor_backend": "mp",
        "data_parallel_size": 3, "gpu_memory_utilization": 0.9})
    VLLMBackend(cfg)
    assert seen["tensor_parallel_size"] == 4 and seen["pipeline_parallel_size"] == 2
    assert seen["distributed_executor_backend"] == "mp" and seen["gpu_memory_utilization"] == 0.9
    assert "data_parallel_size" not in seen
    assert shard_resources(cfg, "llm") == {"num_cpus": 1, "num_gpus": 8} and default_shards(cfg, "llm") == 3


def test_scale_recipes_validate(capsys, monkeypatch):
    from pathlib import Path

    import toolace_mt.deps as deps
    from toolace_mt.app.cli import main

    monkeypatch.setattr(deps, "installed", lambda module: True)  # vLLM: these recipes run on a GPU install
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    assert main(["validate", "recipes/generate/paper_vllm_1node_8gpu.yaml", "recipes/generate/paper_vllm_ray_cluster.yaml",
                 "recipes/generate/paper_vllm_serve_dp.yaml"]) == 0
    from toolace_mt.config import load_recipe
    from toolace_mt.executor import default_shards, shard_resources

    _, cfg, _ = load_recipe("recipes/generate/paper_vllm_1node_8gpu.yaml", expect="generate")
    # 2 engines x 4 GPUs = the node's 8
    assert default_shards(cfg.llm, cfg.engine) * shard_resources(cfg.llm, cfg.engine)["num_gpus"] == 8
    _, cfg, _ = load_recipe("recipes/generate/paper_vllm_serve_dp.yaml", expect="generate")
    assert shard_resources(cfg.llm, cfg.engine)["num_gpus"] == 0  # the server holds the GPUs
