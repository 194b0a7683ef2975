"""`llm.log_requests: true`: every request a generation run sends, with its rendered messages, tools and the
raw answer, appended to ``requests.jsonl`` in the run directory, so anyone can audit what each stage was
shown and what it said.

Records of a (chunk, stage) are buffered and appended just before that stage's chunk file is written; each
record carries a key (hash of stage, dialogue, messages and tools), and keys already in the file are skipped,
so a run killed and resumed appends nothing twice (the redone requests are the same requests).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

FILE = "requests.jsonl"


def _key(req) -> str:
    p = req.payload if isinstance(req.payload, dict) else {}
    blob = json.dumps([req.stage, p.get("dialogue_id"), req.messages, req.tools], sort_keys=True, default=str,
                      ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class RequestLog:
    def __init__(self, out: Path):
        self.path = Path(out) / FILE
        self.keys: set[str] = set()
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    self.keys.add(json.loads(line)["key"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line torn by a kill: its request is logged again when redone
        self.pending: list[dict[str, Any]] = []

    def wrap(self, client) -> None:
        """Record every `client.chat` batch (both methods send all their requests through it)."""
        inner = client.chat

        def chat(requests, *a, **kw):
            resps = inner(requests, *a, **kw)
            for req, resp in zip(requests, resps):
                p = req.payload if isinstance(req.payload, dict) else {}
                err = getattr(resp, "error", None)
                usage = getattr(resp, "usage", None)
                self.pending.append({
                    "key": _key(req), "stage": req.stage, "method": req.method, "prompt": p.get("prompt"),
                    "prompt_version": p.get("prompt_version"), "dialogue_id": p.get("dialogue_id"),
                    "messages": req.messages, "tools": req.tools, "answer": getattr(resp, "text", None),
                    "error": None if err is None else {"kind": err.kind, "message": err.message},
                    "usage": None if usage is None else {"prompt_tokens": usage.prompt_tokens,
                                                         "completion_tokens": usage.completion_tokens}})
            return resps

        client.chat = chat

    def flush(self) -> int:
        """Append the buffered records not yet in the file; returns how many were written."""
        new = [r for r in self.pending if r["key"] not in self.keys]
        self.pending = []
        if not new:
            return 0
        with self.path.open("a", encoding="utf-8") as f:
            for r in new:
                f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
                self.keys.add(r["key"])
            f.flush()
        return len(new)
