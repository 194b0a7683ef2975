"""Usage ledger: what the LLM calls of a run cost, by stage and method.

Every request the client answers is recorded once (JSON re-asks are recorded as their own requests and
counted in ``json_retries``). ``calls``/tokens/latency count only answers the backend produced in this run;
cache hits are counted in ``cached`` with their tokens under ``cached_*`` so a resumed run shows both what it
paid and what it saved. Thread-safe; `save` writes JSON atomically; `load` lets a resumed run keep summing.
"""
from __future__ import annotations

import json
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any, Optional

from .types import ChatRequest, ChatResponse

_FIELDS = ("requests", "calls", "cached", "failures", "json_retries", "prompt_tokens", "completion_tokens",
           "cached_prompt_tokens", "cached_completion_tokens", "latency_s")


def _zero() -> dict[str, float]:
    return {k: 0 for k in _FIELDS}


class UsageLedger:
    def __init__(self):
        self._lock = threading.Lock()
        # (stage, method) -> counters
        self._rows: dict[tuple[str, str], dict[str, float]] = defaultdict(_zero)
        self._failure_kinds: dict[str, int] = defaultdict(int)
        self._failure_examples: dict[str, str] = {}  # kind -> first message (already redacted by LLMFailure)

    def record(self, request: ChatRequest, response: ChatResponse, cached: Optional[bool] = None,
               retry: bool = False) -> None:
        cached = response.cached if cached is None else cached
        with self._lock:
            row = self._rows[(request.stage, request.method)]
            row["requests"] += 1
            if retry:
                row["json_retries"] += 1
            if cached:
                row["cached"] += 1
                row["cached_prompt_tokens"] += response.usage.prompt_tokens
                row["cached_completion_tokens"] += response.usage.completion_tokens
            else:
                row["calls"] += 1
                row["prompt_tokens"] += response.usage.prompt_tokens
                row["completion_tokens"] += response.usage.completion_tokens
                row["latency_s"] += float(response.latency_s)

    def record_failure(self, request: ChatRequest, kind: str, message: Optional[str] = None) -> None:
        """A request whose final answer is a failure (counted once, after retries)."""
        from .redact import redact

        with self._lock:
            self._rows[(request.stage, request.method)]["failures"] += 1
            self._failure_kinds[kind] += 1
            if message and kind not in self._failure_examples:
                self._failure_examples[kind] = redact(message)[:300]

    # ------------------------------------------------------------------ views
    @staticmethod
    def _sum(rows) -> dict[str, float]:
        out = _zero()
        for r in rows:
            for k in _FIELDS:
                out[k] += r[k]
        out["latency_s"] = round(out["latency_s"], 6)
        out["total_tokens"] = out["prompt_tokens"] + out["completion_tokens"]
        return out

    def total(self) -> dict[str, float]:
        with self._lock:
            return self._sum(list(self._rows.values()))

    def summary(self) -> dict[str, Any]:
        """{"total": {...}, "by_stage": {stage: {...}}, "by_method": {...}, "by_stage_method": {"stage/method": {...}},
        "failure_kinds": {...}}."""
        with self._lock:
            rows = {k: dict(v) for k, v in self._rows.items()}
            kinds = dict(self._failure_kinds)
            examples = dict(self._failure_examples)
        by_stage, by_method = defaultdict(list), defaultdict(list)
        for (stage, method), r in rows.items():
            by_stage[stage].append(r)
            by_method[method].append(r)
        return {
            "total": self._sum(rows.values()),
            "by_stage": {s: self._sum(v) for s, v in sorted(by_stage.items())},
            "by_method": {m: self._sum(v) for m, v in sorted(by_method.items())},
            "by_stage_method": {f"{s}/{m}": self._sum([r]) for (s, m), r in sorted(rows.items())},
            "failure_kinds": dict(sorted(kinds.items())),
            "failure_examples": dict(sorted(examples.items())),
        }

    def save(self, path: str | Path) -> Path:
        from toolace_mt.runs import atomic_write_text

        p = Path(path)
        atomic_write_text(p, json.dumps(self.summary(), indent=2, sort_keys=True))
        return p

    def plus(self, other: "UsageLedger") -> "UsageLedger":
        """A new ledger with both ledgers' counts (a resumed run: what earlier processes recorded + this one)."""
        out = UsageLedger()
        for led in (self, other):
            with led._lock:
                for key, row in led._rows.items():
                    dst = out._rows[key]
                    for k in _FIELDS:
                        dst[k] += row[k]
                for k, n in led._failure_kinds.items():
                    out._failure_kinds[k] += n
                for k, m in led._failure_examples.items():
                    out._failure_examples.setdefault(k, m)
        return out

    @classmethod
    def load(cls, path: str | Path) -> "UsageLedger":
        """Rebuild a ledger from a saved summary (its by_stage_method rows), to keep summing after a resume."""
        led = cls()
        data = json.loads(Path(path).read_text())
        for key, row in (data.get("by_stage_method") or {}).items():
            stage, _, method = key.partition("/")
            dst = led._rows[(stage, method)]
            for k in _FIELDS:
                dst[k] += row.get(k, 0)
        for k, n in (data.get("failure_kinds") or {}).items():
            led._failure_kinds[k] += n
        led._failure_examples.update(data.get("failure_examples") or {})  # already redacted when saved
        return led


def all_failed_reason(summary: dict[str, Any]) -> Optional[str]:
    """One line saying why, when every request a saved ledger summary counts ended as a failure (a dead
    endpoint, a bad key, a model that never answers in the asked format), else None. A run like that kept
    nothing, so commands exit non-zero on it instead of reporting success."""
    t = summary.get("total") or {}
    final = int(t.get("requests", 0)) - int(t.get("json_retries", 0))
    failures = int(t.get("failures", 0))
    if final <= 0 or failures < final:
        return None
    kinds = summary.get("failure_kinds") or {}
    examples = summary.get("failure_examples") or {}
    top = max(kinds, key=kinds.get) if kinds else None
    why = f"; e.g. {top}: {examples[top]}" if top in examples else (f"; kinds: {kinds}" if kinds else "")
    return " ".join(f"all {final} LLM requests failed{why}".split())
