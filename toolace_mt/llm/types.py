"""The client protocol: a batch of chat requests in, a batch of responses out.

Every LLM-driven stage (generation, MAS agents, simulated users, model-based verifiers, LLM policies) builds
`ChatRequest`s and sends them all at once through `LLMClient.chat(requests)`. Backends implement
`Backend.generate(requests) -> responses`; the client wraps any backend with the disk cache, the usage
ledger and JSON handling. This file holds only the data types and the backend protocol, so it is cheap
to import.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, runtime_checkable

from .sanitize import clean_text


# Fallbacks for sampling fields a request leaves unset and no `LLMConfig` sets either.
DEFAULT_TEMPERATURE = 0.0  # chosen: greedy by default so reruns are reproducible (and cacheable)
DEFAULT_TOP_P = 1.0
DEFAULT_MAX_TOKENS = 1024  # chosen: vLLM's SamplingParams default is 16 tokens; always set it


@dataclass
class SamplingParams:
    """Decoding settings of one request. A field left ``None`` is taken from the client's `LLMConfig`
    (recipe block ``llm:``), then from the DEFAULT_* fallbacks above; backends always see resolved values."""

    temperature: Optional[float] = None
    top_p: Optional[float] = None
    max_tokens: Optional[int] = None
    seed: Optional[int] = None
    stop: Optional[list[str]] = None

    def resolved(self, defaults: Optional["SamplingParams"] = None) -> "SamplingParams":
        d = defaults or SamplingParams()

        def pick(name, fallback):
            v = getattr(self, name)
            if v is None:
                v = getattr(d, name)
            return fallback if v is None else v

        return SamplingParams(temperature=float(pick("temperature", DEFAULT_TEMPERATURE)),
                              top_p=float(pick("top_p", DEFAULT_TOP_P)),
                              max_tokens=int(pick("max_tokens", DEFAULT_MAX_TOKENS)),
                              seed=pick("seed", None), stop=list(pick("stop", None) or []) or None)


@dataclass
class ChatRequest:
    """One chat completion request.

    * ``messages``/``tools``: OpenAI format (tools as ``{"type": "function", "function": {...}}`` dicts).
    * ``json_schema``: if set, the answer must be JSON valid against it (structured output where the backend
      supports it; parsed, repaired, validated and retried by the client in any case).
    * ``stage``/``method``: labels for the usage ledger (e.g. stage="refine", method="toolace_mt").
    * ``payload``: structured data the prompt was rendered from. Backends that answer from structure
      (the `simulated` backend) read it; real backends ignore it. Never part of the cache key.
    """

    messages: list[dict[str, Any]]
    tools: Optional[list[dict[str, Any]]] = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    json_schema: Optional[dict[str, Any]] = None
    stage: str = "default"
    method: str = "default"
    payload: Optional[dict[str, Any]] = None


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class ChatResponse:
    """One answer. ``tool_calls`` are OpenAI-shaped dicts with dict arguments; ``parsed`` holds the
    validated JSON when the request had a ``json_schema``; ``error`` is a typed failure (never raised)."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "stop"  # stop | length | tool_calls | error
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    cached: bool = False
    parsed: Any = None
    error: Optional["LLMFailure"] = None
    raw_text: Optional[str] = None  # the model's full text when ``text`` had tool-call blocks removed
    warnings: list[str] = field(default_factory=list)  # e.g. tool-call blocks that could not be parsed
    attempts: int = 1  # answers it took (JSON re-asks included)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class LLMFailure:
    """Why a request produced no usable answer: kind in {transport, timeout, http_status, bad_response,
    invalid_json, schema_mismatch, truncated, ambiguous_json, invalid_tool_call, backend}. ``raw`` keeps the
    model's text (or the unparseable tool-call arguments) when there was one. Message and raw are cleaned
    (lone surrogates, control characters) and redacted (credentials) on creation: failures are stored."""

    kind: str
    message: str
    raw: Optional[str] = None
    attempts: int = 1

    def __post_init__(self):
        from .redact import redact

        self.message = redact(clean_text(self.message))
        self.raw = redact(clean_text(self.raw))


@runtime_checkable
class Backend(Protocol):
    """A model behind the protocol. ``name`` and ``model`` enter the cache key."""

    name: str
    model: str

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        """Answer every request, in order. Must not raise for a bad answer of the model: return a
        ChatResponse with ``error`` set instead. May raise for a misconfiguration (missing extra, bad path)."""
        ...


def map_tool_calls(messages: list[dict[str, Any]], convert: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
                   ) -> list[dict[str, Any]]:
    """`messages` with each tool call replaced by ``convert(call, function)`` (``function``: a copy of the call's
    function dict, to change freely); messages without calls are passed through. The one walk over tool calls the
    backends share (wire-format strings for the OpenAI API, dicts for chat templates)."""
    out = []
    for m in messages:
        if m.get("tool_calls"):
            m = dict(m, tool_calls=[convert(c, dict(c.get("function", c))) for c in m["tool_calls"]])
        out.append(m)
    return out
