"""`LLMClient`: any backend + disk cache + usage ledger + JSON handling. `make_client(cfg)` builds one.

Batch-first: `LLMClient.chat(requests)` resolves sampling defaults, answers what it can from the cache, sends
all the misses to the backend in ONE `generate` call, stores the answers, records every request in the
ledger, and for requests with a ``json_schema`` parses/repairs/validates the answer and re-asks (all failing
requests together, one batch per round) up to ``json_retries`` times with the error appended. A bad model
answer never raises: it comes back as a `ChatResponse` whose ``error`` is a typed `LLMFailure`.

This is where model text enters the system, so every answer (fresh or from the cache) is cleaned here: lone
surrogates and control characters go (`jsonparse.clean_text`), tool-call arguments holding NaN/Infinity are
an ``invalid_tool_call``, and a JSON answer that is cut (``finish_reason == "length"``), ambiguous, holds
chat-template control tokens or an absurdly long string is a typed failure (`jsonparse`) that is re-asked.

Backends are registered by name (`register_backend`), each from its own module in this folder: the first
lookup of a backend imports every module here (like the env domains), so a new backend is one new file. Those
modules import their heavy dependencies (openai, torch, vllm) only when a backend is built, so
``import toolace_mt.llm`` and the discovery stay cheap.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ..registry import Registry
from .cache import ResponseCache, cacheable, request_key
from .ledger import UsageLedger
from .types import Backend, ChatRequest, ChatResponse, LLMFailure, SamplingParams

from .jsonparse import JSON_FAILURES as RETRY_KINDS  # noqa: E402  (every JSON failure is re-asked)


def _finite_args(value: Any) -> bool:
    import math

    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite_args(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite_args(v) for v in value)
    return True


def clean_response(resp: ChatResponse) -> ChatResponse:
    """Clean one answer in place (see the module docstring) and return it."""
    from .jsonparse import clean_text, clean_value

    resp.text = clean_text(resp.text) if resp.text is not None else ""
    resp.raw_text = clean_text(resp.raw_text)
    resp.warnings = [clean_text(w) for w in resp.warnings]
    bad = []
    for c in resp.tool_calls:
        fn = c.get("function") if isinstance(c.get("function"), dict) else c
        if "name" in fn:
            fn["name"] = clean_text(fn["name"])
        if "arguments" in fn:
            fn["arguments"] = clean_value(fn["arguments"])
            if not _finite_args(fn["arguments"]):
                bad.append(str(fn.get("name")))
    if bad and resp.error is None:
        resp.error = LLMFailure("invalid_tool_call", f"non-finite number (NaN/Infinity) in the arguments of "
                                                     f"{', '.join(bad)}", raw=resp.raw_text or resp.text)
    return resp


def _discover() -> None:
    """Import every module of this package: a backend module registers itself (`register_backend`) on import."""
    import importlib
    import pkgutil

    package = __name__.rsplit(".", 1)[0]
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{info.name}")


# name -> factory ``(LLMConfig) -> Backend`` (a class, or a function building one). A factory may declare what
# one in-process model needs on a cluster: ``ray_gpus(extra, device, gpus_in_cluster)`` and ``ray_shards(extra)``
# (`toolace_mt.executor`); without them a backend needs no GPU (an HTTP client, an offline stand-in).
BACKENDS: Registry = Registry("LLM backend", discover=_discover)


def register_backend(name: str, factory: Callable[["LLMConfig"], Backend]) -> None:
    """Make ``LLMConfig(backend=name)`` build ``factory(cfg)``. A name is registered once (a second,
    different factory is a `RegistryError`)."""
    BACKENDS.register(name, factory)


def known_backends() -> list[str]:
    return BACKENDS.names()


@dataclass
class LLMConfig:
    """Recipe block `llm:` — which model answers, and how.

    Sampling fields (temperature, top_p, max_tokens, seed) are defaults for requests that leave them unset.
    """

    backend: str = "openai"  # chosen: the most general backend; vllm | openai | transformers | simulated | scripted
    model: str = ""  # served model name (openai), checkpoint path or hub id (transformers, vllm)
    base_url: Optional[str] = None  # chosen: None -> $OPENAI_BASE_URL, then the SDK's default
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable, never written anywhere
    temperature: float = 0.0  # chosen: greedy, so reruns are reproducible and cache hits are exact
    top_p: float = 1.0  # chosen: no nucleus truncation unless asked
    max_tokens: int = 1024  # chosen: a refined multi-turn step fits; vLLM's SamplingParams would default to 16
    seed: Optional[int] = None  # chosen: None = backend default; set it for reproducible sampling
    max_concurrency: int = 16  # chosen: in-flight requests to a server; vLLM serve batches them itself
    max_retries: int = 4  # chosen: 429/5xx/timeouts are retried 4 times (1+2+4+8 s of backoff at most ~15 s)
    retry_backoff_s: float = 1.0  # chosen: first backoff; doubles each retry, Retry-After wins when sent
    timeout_s: float = 120.0  # chosen: a long answer of a 7B model on a shared server stays well under 2 min
    json_retries: int = 2  # chosen: re-asking twice fixes most format slips; more mostly repeats the error
    adapter: Optional[str] = None  # PEFT/LoRA adapter directory (transformers, vllm)
    dtype: str = "auto"  # chosen: auto = bfloat16 on GPU, float32 on CPU
    device: str = "auto"  # chosen: auto = cuda when available, else cpu (transformers)
    batch_size: int = 8  # chosen: rows per transformers `generate` call; fits a 7B model on one GPU
    tool_call_format: str = "auto"  # how text-generating backends write calls: auto | hermes | llama3 | pythonic
    extra: dict[str, Any] = field(default_factory=dict)  # backend-specific keys passed through
    log_requests: bool = False  # a generation run appends every request and raw answer to requests.jsonl

    def __post_init__(self):
        if not self.backend:
            raise ValueError("llm.backend must be set (one of " + ", ".join(known_backends()) + ")")
        for name in ("max_tokens", "max_concurrency", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"llm.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_retries", "json_retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"llm.{name} must be >= 0, got {getattr(self, name)}")
        if self.temperature < 0 or not (0 < self.top_p <= 1):
            raise ValueError("llm.temperature must be >= 0 and llm.top_p in (0, 1]")
        if self.timeout_s <= 0 or self.retry_backoff_s < 0:
            raise ValueError("llm.timeout_s must be > 0 and llm.retry_backoff_s >= 0")
        from .toolparse import FORMATS

        if self.tool_call_format not in FORMATS:
            raise ValueError(f"llm.tool_call_format {self.tool_call_format!r} is not one of {', '.join(FORMATS)}")

    def sampling(self) -> SamplingParams:
        """The request defaults this config stands for."""
        return SamplingParams(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens,
                              seed=self.seed)

    def public(self) -> dict[str, Any]:
        """A dict safe to write to run dirs (no key values: only the *name* of the key variable is in here)."""
        return dataclasses.asdict(self)


class LLMClient:
    """Wraps a backend with the cache, the ledger and JSON handling. See the module docstring."""

    def __init__(self, backend: Backend, cache_dir: Optional[Path] = None, ledger: Optional[UsageLedger] = None,
                 json_retries: int = 2, defaults: Optional[SamplingParams] = None):
        self.backend = backend
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.cache = ResponseCache(self.cache_dir) if self.cache_dir is not None else None
        self.ledger = ledger if ledger is not None else UsageLedger()
        self.json_retries = json_retries
        self.defaults = defaults or SamplingParams()
        self.backend_calls = 0  # `backend.generate` invocations made by this client
        self.n_requests = 0  # requests answered by `chat` (retries not counted)
        self.n_failed = 0  # of those, how many ended as a failure
        self.first_failure: Optional[LLMFailure] = None

    # ---------------------------------------------------------------------------------------------
    def _key(self, req: ChatRequest) -> str:
        return request_key(req, getattr(self.backend, "name", type(self.backend).__name__),
                           getattr(self.backend, "model", ""), getattr(self.backend, "fingerprint", None))

    def _answer(self, requests: list[ChatRequest], retry: bool = False) -> list[ChatResponse]:
        """Cache lookup, one backend call for the misses, cache store, ledger. No JSON handling."""
        out: list[Optional[ChatResponse]] = [None] * len(requests)
        keys = [self._key(r) for r in requests]
        todo: dict[str, list[int]] = {}  # key -> indices; identical deterministic requests are asked once
        order: list[int] = []
        for i, (req, key) in enumerate(zip(requests, keys)):
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                out[i] = clean_response(hit)  # an entry stored before cleaning existed must not poison a resume
                continue
            deterministic = req.sampling.temperature == 0 or req.sampling.seed is not None
            if deterministic and key in todo:
                todo[key].append(i)
            else:
                todo.setdefault(key if deterministic else f"{key}#{i}", []).append(i)
                order.append(i)
        if order:
            misses = [requests[i] for i in order]
            self.backend_calls += 1
            got = self.backend.generate(misses)
            if len(got) != len(misses):
                raise RuntimeError(f"backend {getattr(self.backend, 'name', '?')} returned {len(got)} answers "
                                   f"for {len(misses)} requests")
            for i, resp in zip(order, got):
                clean_response(resp)
                resp.cached = False
                if self.cache is not None and cacheable(resp):
                    self.cache.put(keys[i], resp)
                out[i] = resp
                k = keys[i]
                for j in todo.get(k, []):
                    if j != i:
                        out[j] = dataclasses.replace(resp, cached=True, tool_calls=[dict(c) for c in resp.tool_calls],
                                                     warnings=list(resp.warnings))
        for req, resp in zip(requests, out):
            self.ledger.record(req, resp, retry=retry)
        return out  # type: ignore[return-value]

    @staticmethod
    def _apply_json(resp: ChatResponse, schema: dict[str, Any]) -> bool:
        """Parse ``resp.text`` into ``resp.parsed`` or set ``resp.error``; True when usable."""
        from .jsonparse import parse_json_answer

        ans = parse_json_answer(resp.text, schema, finish_reason=resp.finish_reason)
        if not ans.ok:
            resp.error = ans.failure
            return False
        resp.parsed = ans.value
        if ans.repairs:
            cut = " of an answer cut at max_tokens" if resp.finish_reason == "length" else ""
            resp.warnings = list(resp.warnings) + [f"json repaired{cut}: {', '.join(ans.repairs)}"]
        return True

    def chat(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        """Answer every request, in order. See the module docstring."""
        from .jsonparse import retry_message, schema_validator

        if not requests:
            return []
        reqs = []
        for r in requests:
            if r.json_schema:
                schema_validator(r.json_schema)  # a broken schema is a caller bug: raise before spending calls
            reqs.append(dataclasses.replace(r, sampling=r.sampling.resolved(self.defaults)))
        responses = self._answer(reqs)
        pending = []  # indices whose JSON answer still fails
        current = list(reqs)
        for i, (req, resp) in enumerate(zip(reqs, responses)):
            if req.json_schema is not None and resp.error is None:
                if not self._apply_json(resp, req.json_schema):
                    pending.append(i)
        for attempt in range(2, self.json_retries + 2):
            if not pending:
                break
            retry_reqs = []
            for i in pending:
                prev, fail = current[i], responses[i].error
                msgs = list(prev.messages) + [{"role": "assistant", "content": responses[i].text},
                                              {"role": "user", "content": retry_message(fail, prev.json_schema)}]
                current[i] = dataclasses.replace(prev, messages=msgs)
                retry_reqs.append(current[i])
            answers = self._answer(retry_reqs, retry=True)
            still = []
            for i, resp in zip(pending, answers):
                resp.attempts = attempt
                if resp.error is None:
                    self._apply_json(resp, reqs[i].json_schema)
                if resp.error is not None and resp.error.kind in RETRY_KINDS:
                    still.append(i)
                responses[i] = resp
            pending = still
        for req, resp in zip(reqs, responses):
            if req.json_schema is None and resp.error is None and resp.finish_reason == "length":
                resp.warnings = list(resp.warnings) + ["answer cut at max_tokens"]
            self.n_requests += 1
            if resp.error is not None:
                resp.error.attempts = max(resp.error.attempts, resp.attempts)
                self.n_failed += 1
                if self.first_failure is None:
                    self.first_failure = resp.error
                self.ledger.record_failure(req, resp.error.kind, resp.error.message)
        return responses

    def all_failed(self) -> Optional[str]:
        """A one-line reason when every request this client answered failed (a dead endpoint, a bad key),
        else None. Commands exit non-zero on it rather than report a run that kept nothing."""
        if self.n_requests == 0 or self.n_failed < self.n_requests:
            return None
        f = self.first_failure
        return (f"all {self.n_requests} LLM requests failed; first: {f.kind}: {f.message[:300]}" if f
                else f"all {self.n_requests} LLM requests failed")

    def chat_one(self, request: ChatRequest) -> ChatResponse:
        """Convenience for a single request (still goes through the batch path)."""
        return self.chat([request])[0]


def make_backend(cfg: LLMConfig) -> Backend:
    return BACKENDS.get(cfg.backend)(cfg)


def make_client(cfg: LLMConfig, cache_dir: Optional[Path] = None, ledger=None) -> LLMClient:
    """Build the backend ``cfg.backend`` and wrap it; ``cache_dir`` None = no disk cache."""
    return LLMClient(make_backend(cfg), cache_dir=cache_dir, ledger=ledger, json_retries=cfg.json_retries,
                     defaults=cfg.sampling())


__all__ = ["LLMConfig", "LLMClient", "LLMFailure", "make_client", "make_backend", "register_backend",
           "known_backends", "UsageLedger"]
