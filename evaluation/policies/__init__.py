"""Policies (model adapters) and `make_policy(cfg)`, built from a recipe's ``policy:`` block.

Kinds:

* ``oracle``: replays ``PolicyInput.gold`` (the harness's expected next action) -- must score 100%;
* ``null``: never calls a tool, always answers the same neutral text -- the floor of every suite;
* ``transformers``: a local checkpoint (+ optional PEFT adapter), per-row chat template with tools,
  batched greedy decoding, tool calls parsed from text with `toolace_mt.llm.toolparse`;
* ``openai``: an OpenAI-compatible server through `toolace_mt.llm` (native tool calls, or prompted);
* ``vllm``: the same client path with the `vllm` backend (imported lazily, GPU machines only);
* ``replay``: outputs produced elsewhere (``path``, ``format``: bfcl_result | ace_result | trajectories), played
  through the same harness and labelled by the source model's name (`replay.py`).

Every policy implements `evaluation.policy.Policy`: ``act(batch: list[PolicyInput]) -> list[PolicyOutput]``.
A new kind is one new module in this folder with a factory decorated ``@register_policy("kind")``; every module
here is imported on the first lookup of a kind (like the env domains), so nothing else is edited. A factory may
define ``check_config(cfg)`` (raise ValueError on a bad ``policy:`` block; fill defaults) and
``native_tool_calls(cfg)`` (True when ``tool_call_format: native`` is possible).
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from ...config import RecipeError
from ...registry import Registry, RegistryError
from ..policy import Policy, PolicyInput, PolicyOutput


def _discover() -> None:
    """Every module of this folder registers its kinds on import (their heavy dependencies load lazily, when a
    policy is built): adding a kind is adding one file."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


# kind -> factory ``(PolicyConfig) -> Policy``
POLICIES: Registry = Registry("policy kind", discover=_discover)

NULL_ANSWER = "I'm sorry, but I can't help with that right now."  # chosen: neutral, no tool call, no claim


@dataclass
class PolicyConfig:
    """Recipe block ``policy:``.

    * ``model``: checkpoint path / hub id (transformers, vllm) or served model name (openai);
    * ``adapter``: optional PEFT adapter directory (transformers, vllm with LoRA);
    * ``tool_call_format``: how tool calls are written in text: auto | hermes | llama3 | pythonic
      (``native`` = use the server's tool-call API, openai/vllm only);
    * ``max_new_tokens``, ``batch_size``, ``temperature``: decoding (greedy at 0);
    * ``system_prompt``: optional system message prepended when the conversation has none;
    * ``base_url``, ``api_key_env``: for openai; ``dtype``, ``device``: for transformers;
    * ``name``: label in reports (defaults to kind[:model]; replay: the source model's name);
    * ``path``, ``format``: for replay, where the recorded outputs are and their format (bfcl_result |
      ace_result | trajectories);
    * ``timeout_s``, ``max_retries``: per-request timeout (seconds) and retries of a model server (openai,
      vllm), passed to `toolace_mt.llm.LLMConfig`;
    * ``extra``: backend-specific keys passed through (transformers: ``prompted_tools: true`` puts the tools
      in a system prompt instead of the chat template; openai/vllm: ``backend`` picks another registered
      `toolace_mt.llm` backend, the rest goes to it).
    """

    kind: str = "oracle"  # a registered policy kind (checked against the registry in __post_init__)
    model: str = ""
    adapter: Optional[str] = None
    tool_call_format: Literal["auto", "hermes", "llama3", "pythonic", "native"] = "auto"
    max_new_tokens: int = 512  # chosen: a multi-call step fits in 512 tokens; long answers are truncated
    batch_size: int = 8
    temperature: float = 0.0
    system_prompt: Optional[str] = None
    base_url: Optional[str] = None
    api_key_env: str = "OPENAI_API_KEY"
    dtype: str = "auto"
    device: str = "auto"
    name: str = ""
    null_answer: str = NULL_ANSWER
    extra: dict[str, Any] = field(default_factory=dict)
    path: Optional[str] = None
    format: Optional[str] = None
    # model-backed policies (openai, vllm server): per-request timeout and retries of timeouts / 429 / 5xx
    timeout_s: float = 120.0  # chosen: the client's default; raise it for a slow or hand-answered endpoint
    max_retries: int = 4  # chosen: the client's default (1+2+4+8 s of backoff)

    def __post_init__(self):
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be >= 1")
        if not self.timeout_s > 0 or self.max_retries < 0:
            raise ValueError("timeout_s must be > 0 and max_retries >= 0")
        factory = POLICIES.get(self.kind)  # an unknown kind is a RegistryError (a ValueError) naming the known ones
        # the kind's own checks (and defaults) live with its factory: ``check_config(cfg)`` raises ValueError
        check = getattr(factory, "check_config", None)
        if check is not None:
            check(self)
        if self.tool_call_format == "native" and not getattr(factory, "native_tool_calls", lambda cfg: False)(self):
            raise ValueError(f"tool_call_format 'native' needs a policy that uses a server's tool-call API "
                             f"(openai, vllm), not kind {self.kind!r}")

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.kind == "replay":
            return self.model
        return self.kind + (f":{self.model}" if self.model else "") + (f"+{self.adapter}" if self.adapter else "")


def register_policy(*kinds: str):
    """Decorator for a factory ``(PolicyConfig) -> Policy``, registered under each of `kinds` (once each)."""

    def deco(factory):
        for kind in kinds:
            POLICIES.register(kind, factory)
        return factory

    return deco


def make_policy(cfg: PolicyConfig | dict) -> Policy:
    """Build the policy a recipe asks for (a dict is parsed strictly into a `PolicyConfig`)."""
    if isinstance(cfg, dict):
        from ...config import dataclass_from_dict

        cfg = dataclass_from_dict(PolicyConfig, cfg, where="policy.")
    try:
        factory = POLICIES.get(cfg.kind)
    except RegistryError as e:
        raise RecipeError(str(e)) from None
    return factory(cfg)


__all__ = ["PolicyConfig", "make_policy", "register_policy", "Policy", "PolicyInput", "PolicyOutput", "NULL_ANSWER"]
