"""LLM client layer: one batch protocol, several backends, cache, ledger, robust JSON.

Cheap to import: backends (openai SDK, torch/transformers, vllm) are imported only when a client for them is
made with `make_client`.
"""
from .client import LLMClient, LLMConfig, known_backends, make_backend, make_client, register_backend
from .ledger import UsageLedger
from .types import Backend, ChatRequest, ChatResponse, LLMFailure, SamplingParams, Usage

__all__ = ["Backend", "ChatRequest", "ChatResponse", "LLMClient", "LLMConfig", "LLMFailure", "SamplingParams",
           "Usage", "UsageLedger", "known_backends", "make_backend", "make_client", "register_backend"]
