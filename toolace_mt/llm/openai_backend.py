"""`openai` backend: any OpenAI-compatible chat-completions server (vLLM serve, SGLang, hosted APIs).

The sync `openai` SDK client is shared by a thread pool of ``max_concurrency`` workers (the SDK's httpx client
is thread-safe); the whole batch is in flight at once up to that bound. The SDK's own retries are turned off
and done here instead, so the number of attempts and the backoff are ours to bound and to report: 429, 408,
409, 5xx, timeouts and connection errors are retried with exponential backoff (``retry_backoff_s`` doubling,
``Retry-After`` honoured up to 60 s). A 200 whose body is cut off, not JSON, or not a chat completion (no
``choices``) is retried the same way, since proxies and servers send those transiently too; other HTTP errors
and exhausted retries become typed failures of that request only. The API key is read from the environment
variable named by ``api_key_env`` and lives only in the SDK client object: it is never part of a cache key, the
ledger, a log or a run dir.
"""
from __future__ import annotations

import json
import logging
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from .client import LLMConfig, register_backend
from .jsonparse import RefusedJSON, strict_loads
from .redact import redact, register_secret
from .types import ChatRequest, ChatResponse, LLMFailure, Usage, map_tool_calls

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})  # chosen: the transient codes the SDK retries too
MAX_RETRY_AFTER_S = 60.0  # chosen: never sleep longer than this on a server's Retry-After


def to_wire_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our messages carry tool-call arguments as dicts; the wire format wants JSON strings."""
    def wire(c: dict[str, Any], fn: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(fn.get("arguments"), str):
            fn["arguments"] = json.dumps(fn.get("arguments") or {}, ensure_ascii=False)
        return {"id": c.get("id", ""), "type": "function", "function": fn}

    return map_tool_calls(messages, wire)


def _retry_after(exc: Exception) -> Optional[float]:
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None)
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        v = headers.get(name)
        if v is not None:
            try:
                return min(MAX_RETRY_AFTER_S, max(0.0, float(v) * scale))
            except ValueError:
                return None
    return None


class OpenAIBackend:
    name = "openai"

    def __init__(self, cfg: LLMConfig):
        import openai

        self._openai = openai
        self.cfg = cfg
        self.model = cfg.model
        if not self.model:
            raise ValueError("llm.model is required for the openai backend (the served model name)")
        base_url = cfg.base_url or os.environ.get("OPENAI_BASE_URL") or None
        # servers such as vLLM serve accept any key; the SDK refuses an empty one
        key = os.environ.get(cfg.api_key_env) or "EMPTY"
        register_secret(key)  # an error body that echoes it is redacted before anything stores it
        self.base_url = base_url
        self.client = openai.OpenAI(base_url=base_url, api_key=key, timeout=cfg.timeout_s, max_retries=0)
        self.json_mode = cfg.extra.get("json_mode", "schema")  # schema | object | none
        # the endpoint identifies the model as much as its name does; the key never enters
        self.fingerprint = {"base_url": base_url or "default", "json_mode": self.json_mode}

    # -------------------------------------------------------------------------------------------
    def _kwargs(self, req: ChatRequest) -> dict[str, Any]:
        sp = req.sampling.resolved(self.cfg.sampling())  # no-op for requests coming through LLMClient
        kw: dict[str, Any] = {"model": self.model, "messages": to_wire_messages(req.messages),
                              "temperature": sp.temperature, "top_p": sp.top_p, "max_tokens": sp.max_tokens}
        if sp.seed is not None:
            kw["seed"] = sp.seed
        if sp.stop:
            kw["stop"] = sp.stop
        if req.tools:
            kw["tools"] = req.tools
        if req.json_schema is not None and self.json_mode == "schema":
            kw["response_format"] = {"type": "json_schema",
                                     "json_schema": {"name": "answer", "schema": req.json_schema}}
        elif req.json_schema is not None and self.json_mode == "object":
            kw["response_format"] = {"type": "json_object"}
        extra_body = self.cfg.extra.get("extra_body")
        if isinstance(extra_body, dict):
            kw["extra_body"] = extra_body
        return kw

    def _parse(self, completion: Any, latency: float) -> ChatResponse:
        choices = getattr(completion, "choices", None)
        if not choices:
            # chosen: raised, not returned, so `_one` retries it like a 5xx (an empty `choices` is transient)
            raw = completion if isinstance(completion, str) else repr(completion)
            raise _NotACompletion(redact(raw)[:2000])
        ch = choices[0]
        msg = ch.message
        text = msg.content or ""
        calls, bad = [], []
        for i, tc in enumerate(getattr(msg, "tool_calls", None) or []):
            fn = getattr(tc, "function", None)
            name = getattr(fn, "name", None) or ""
            args_raw = getattr(fn, "arguments", None) or ""
            try:
                args = strict_loads(args_raw) if args_raw.strip() else {}
            except json.JSONDecodeError as e:
                bad.append((name, args_raw, f"{name}: arguments are not JSON ({e.msg})"))
                continue
            except RefusedJSON as e:  # duplicate key, NaN: never resolved silently
                bad.append((name, args_raw, f"{name}: arguments refused ({e})"))
                continue
            if not isinstance(args, dict):
                bad.append((name, args_raw, f"{name}: arguments are not a JSON object"))
                continue
            calls.append({"id": getattr(tc, "id", None) or f"call_{i}", "type": "function",
                          "function": {"name": name, "arguments": args}})
        u = getattr(completion, "usage", None)
        usage = Usage(prompt_tokens=int(getattr(u, "prompt_tokens", 0) or 0),
                      completion_tokens=int(getattr(u, "completion_tokens", 0) or 0))
        resp = ChatResponse(text=text, tool_calls=calls, finish_reason=ch.finish_reason or "stop", usage=usage,
                            latency_s=latency)
        if bad:
            resp.error = LLMFailure("invalid_tool_call", "; ".join(b[2] for b in bad),
                                    raw=json.dumps([{"name": b[0], "arguments": b[1]} for b in bad]))
            resp.warnings.append(resp.error.message)
        return resp

    def _one(self, req: ChatRequest) -> ChatResponse:
        oa = self._openai
        kw = self._kwargs(req)
        attempts = self.cfg.max_retries + 1
        t0 = time.perf_counter()
        last: Optional[LLMFailure] = None
        for attempt in range(1, attempts + 1):
            wait: Optional[float] = None
            try:
                completion = self.client.chat.completions.create(**kw)
                resp = self._parse(completion, time.perf_counter() - t0)
                if resp.error is not None:
                    resp.error.attempts = attempt
                return resp
            except oa.APITimeoutError as e:
                last = LLMFailure("timeout", f"no answer within {self.cfg.timeout_s} s: {e}", attempts=attempt)
            except oa.APIStatusError as e:
                body = _safe_text(e)
                last = LLMFailure("http_status", f"HTTP {e.status_code}: {body[:300]}", raw=body, attempts=attempt)
                if e.status_code not in RETRY_STATUS:
                    break
                wait = _retry_after(e)
            except oa.APIConnectionError as e:
                last = LLMFailure("transport", f"connection failed: {redact(str(e))}", attempts=attempt)
            except _NotACompletion as e:
                last = LLMFailure("bad_response", "server answer is not a chat completion: no choices",
                                  raw=e.raw, attempts=attempt)
            except (oa.APIResponseValidationError, json.JSONDecodeError, ValueError, AttributeError, TypeError,
                    KeyError, IndexError, RecursionError) as e:
                # a 200 whose body is cut off, not JSON or not a completion: retried like a 5xx (bounded by
                # max_retries) because proxies and servers send these transiently; the last one is the failure.
                # chosen: RecursionError/KeyError/IndexError too, so no body shape can raise out of the batch
                body = _safe_text(e)
                last = LLMFailure("bad_response", f"server answer is not a chat completion: {type(e).__name__}"
                                  f" ({redact(str(e))[:200]})", raw=body or redact(str(e))[:2000], attempts=attempt)
            if attempt < attempts:
                if wait is None:
                    wait = self.cfg.retry_backoff_s * (2 ** (attempt - 1)) * (1 + 0.1 * random.random())
                log.debug("openai backend: retry %d after %.2fs (%s)", attempt, wait, last.kind if last else "")
                time.sleep(wait)
        return ChatResponse(finish_reason="error", latency_s=time.perf_counter() - t0, error=last)

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        if not requests:
            return []
        workers = max(1, min(self.cfg.max_concurrency, len(requests)))
        show = len(requests) >= int(self.cfg.extra.get("progress_min", 32))  # chosen: no bar for small batches
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-openai") as pool:
            futures = [pool.submit(self._one, r) for r in requests]
            if show:
                from tqdm.auto import tqdm
                from concurrent.futures import as_completed

                for _ in tqdm(as_completed(futures), total=len(futures), desc=f"llm {self.model}", leave=False):
                    pass
            return [f.result() for f in futures]


class _NotACompletion(Exception):
    """A 200 answer that parsed but holds no choice: retried by `_one`, then a `bad_response` failure."""

    def __init__(self, raw: str):
        super().__init__("no choices")
        self.raw = raw


def _safe_text(exc: Exception) -> str:
    resp = getattr(exc, "response", None)
    try:
        return redact(resp.text)[:2000] if resp is not None else ""
    except Exception:
        return ""


register_backend("openai", OpenAIBackend)
