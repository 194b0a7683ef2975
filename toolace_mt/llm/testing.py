"""`scripted` backend: answers from a function or a list of canned replies. For tests and debugging only.

    backend = ScriptedBackend(lambda req: '{"ok": true}')          # or ScriptedBackend(["first", "second"])
    client = make_scripted_client(fn, cache_dir=tmp_path)          # an LLMClient around it

``fn(request)`` returns a string (the text) or a dict with ``text``, optional ``tool_calls`` (OpenAI-shaped
or ``{"name", "arguments"}``), ``finish_reason`` and ``error`` (an `LLMFailure`). A list of replies is used
in order (one per request; running out is a `bad_response` failure, not a crash). Tokens are counted with a
whitespace split so ledger sums are easy to predict. ``calls``/``seen`` record what the backend was asked.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional, Union

from .client import LLMClient, LLMConfig, register_backend
from .types import ChatRequest, ChatResponse, LLMFailure, Usage

Reply = Union[str, dict]


def count_tokens(text: Optional[str]) -> int:
    return len((text or "").split())


def prompt_tokens(request: ChatRequest) -> int:
    n = 0
    for m in request.messages:
        c = m.get("content")
        n += count_tokens(c if isinstance(c, str) else json.dumps(c) if c is not None else "")
    return n


def _norm_call(c: dict, i: int) -> dict:
    fn = c.get("function", c)
    return {"id": c.get("id", f"call_{i}"), "type": "function",
            "function": {"name": fn.get("name", ""), "arguments": fn.get("arguments") or {}}}


class ScriptedBackend:
    name = "scripted"

    def __init__(self, script: Union[Callable[[ChatRequest], Reply], list[Reply]], model: str = "scripted"):
        self.model = model
        self._fn = script if callable(script) else None
        self._replies = None if callable(script) else list(script)
        self.calls = 0  # generate() invocations
        self.seen: list[ChatRequest] = []  # every request answered, in order

    def _reply(self, req: ChatRequest) -> Reply:
        if self._fn is not None:
            return self._fn(req)
        if not self._replies:
            return {"error": LLMFailure("bad_response", "scripted backend ran out of replies")}
        return self._replies.pop(0)

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        self.calls += 1
        out = []
        for req in requests:
            self.seen.append(req)
            r = self._reply(req)
            if isinstance(r, str):
                r = {"text": r}
            calls = [_norm_call(c, i) for i, c in enumerate(r.get("tool_calls") or [])]
            text = r.get("text") or ""
            out.append(ChatResponse(
                text=text, tool_calls=calls,
                finish_reason=r.get("finish_reason") or ("tool_calls" if calls else "stop"),
                usage=Usage(prompt_tokens=prompt_tokens(req),
                            completion_tokens=count_tokens(text) + sum(count_tokens(json.dumps(c["function"]))
                                                                       for c in calls)),
                error=r.get("error")))
        return out


def make_scripted_client(script, cache_dir: Optional[Path] = None, ledger=None, json_retries: int = 2,
                         model: str = "scripted") -> LLMClient:
    return LLMClient(ScriptedBackend(script, model=model), cache_dir=cache_dir, ledger=ledger,
                     json_retries=json_retries)


def _from_config(cfg: LLMConfig) -> ScriptedBackend:
    """Recipe use (debug runs): ``llm: {backend: scripted, extra: {replies: [...]}}`` answers in order."""
    replies = cfg.extra.get("replies")
    if not isinstance(replies, list):
        raise ValueError("llm.backend 'scripted' needs llm.extra.replies: a list of canned answers")
    return ScriptedBackend(list(replies), model=cfg.model or "scripted")


register_backend("scripted", _from_config)
