"""`LLMClient`: any backend + disk cache + usage ledger + JSON handling. `make_client(cfg)` builds one.

PLACEHOLDER SURFACE (to be completed by the LLM-client work, issue 3): the names and signatures here are the
contract other packages code against; keep them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .types import Backend, ChatRequest, ChatResponse

_BACKENDS: dict[str, Callable[["LLMConfig"], Backend]] = {}


def register_backend(name: str, factory: Callable[["LLMConfig"], Backend]) -> None:
    _BACKENDS[name] = factory


@dataclass
class LLMConfig:
    """Recipe block `llm:` — which model answers, and how."""

    backend: str = "openai"  # vllm | openai | transformers | simulated | scripted (tests)
    model: str = ""
    base_url: Optional[str] = None
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable, never written anywhere
    temperature: float = 0.0
    max_tokens: int = 1024
    extra: dict[str, Any] = field(default_factory=dict)


class LLMClient:
    def __init__(self, backend: Backend, cache_dir: Optional[Path] = None, ledger=None):
        self.backend = backend
        self.cache_dir = cache_dir
        self.ledger = ledger

    def chat(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        return self.backend.generate(requests)


def make_client(cfg: LLMConfig, cache_dir: Optional[Path] = None, ledger=None) -> LLMClient:
    if cfg.backend not in _BACKENDS:
        raise ValueError(f"unknown LLM backend {cfg.backend!r}; known: {', '.join(sorted(_BACKENDS))}")
    return LLMClient(_BACKENDS[cfg.backend](cfg), cache_dir=cache_dir, ledger=ledger)
