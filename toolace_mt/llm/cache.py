"""Disk cache of backend answers, so a rerun or a resumed run does not pay twice.

Key: sha256 of the canonical JSON of (backend name, model, backend fingerprint, messages, tools, resolved
sampling params incl. seed, json_schema). ``payload``, ``stage`` and ``method`` are labels, not inputs of the
model, so they are left out. One small JSON file per entry under ``<dir>/<2 hex>/<hash>.json``, written
atomically: several processes can share a cache directory, and a crash never leaves a half-written entry.
What is stored is the *backend's* answer (text, tool calls, finish reason, usage); JSON parsing and retries
run after the cache, so they are reproduced exactly on a hit. Transport failures (timeouts, HTTP errors) are
never stored: a rerun should try again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Optional

from .types import ChatRequest, ChatResponse, LLMFailure, Usage

CACHE_VERSION = 1  # chosen: bump when the key or the stored record changes shape
# failures that are a model's answer (deterministic for a given request), so worth caching
ANSWER_FAILURES = frozenset({"invalid_tool_call"})


def request_key(request: ChatRequest, backend_name: str, model: str, fingerprint: Optional[dict] = None) -> str:
    blob = {
        "v": CACHE_VERSION,
        "backend": backend_name,
        "model": model,
        "fingerprint": fingerprint or {},
        "messages": request.messages,
        "tools": request.tools,
        "sampling": dataclasses.asdict(request.sampling),
        "json_schema": request.json_schema,
    }
    text = json.dumps(blob, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cacheable(response: ChatResponse) -> bool:
    return response.error is None or response.error.kind in ANSWER_FAILURES


def response_to_record(r: ChatResponse) -> dict[str, Any]:
    return {
        "text": r.text, "tool_calls": r.tool_calls, "finish_reason": r.finish_reason,
        "usage": dataclasses.asdict(r.usage), "latency_s": r.latency_s,
        "raw_text": r.raw_text, "warnings": r.warnings,
        "error": dataclasses.asdict(r.error) if r.error else None,
    }


def record_to_response(d: dict[str, Any]) -> ChatResponse:
    return ChatResponse(text=d.get("text", ""), tool_calls=d.get("tool_calls") or [],
                        finish_reason=d.get("finish_reason", "stop"), usage=Usage(**(d.get("usage") or {})),
                        latency_s=d.get("latency_s", 0.0), cached=True, raw_text=d.get("raw_text"),
                        warnings=list(d.get("warnings") or []),
                        error=LLMFailure(**d["error"]) if d.get("error") else None)


class ResponseCache:
    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> Optional[ChatResponse]:
        p = self._path(key)
        try:
            return record_to_response(json.loads(p.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, TypeError, KeyError, UnicodeDecodeError):
            return None  # an unreadable entry is a miss; it is overwritten on the next store

    def put(self, key: str, response: ChatResponse) -> None:
        from toolace_mt.runs import atomic_write_text, dumps_strict

        # fsync=False: an entry lost in a crash is asked again; a half-written one reads as a miss
        atomic_write_text(self._path(key), dumps_strict(response_to_record(response)), fsync=False)

    def __len__(self) -> int:
        return sum(1 for _ in self.dir.glob("??/*.json"))
