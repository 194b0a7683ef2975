"""The `simulated` backend: answers both methods' real prompts from their visible context, counts real tokens."""
from __future__ import annotations

import json

from toolace_mt.generation import llm_io, mas, pipeline  # noqa: F401  (registers the offline answers)
from toolace_mt.generation.config import GenerateConfig
from toolace_mt.llm.client import LLMConfig, make_client
from toolace_mt.llm.simulated import SimulatedBackend, count_prompt, count_text, tokenizer
from toolace_mt.llm.types import ChatRequest


def test_answers_every_toolace_mt_prompt_and_labels_the_dialogues():
    cfg = GenerateConfig(method="toolace_mt", engine="llm", llm=LLMConfig(backend="simulated"), seed=5,
                         injections=[2, 3], refinement_steps=3, progress=False, skeleton_goal="calls")
    client = make_client(cfg.llm)
    ds = pipeline.run_batch(cfg, list(range(8)), client)
    summary = client.ledger.summary()
    # every stage of the paper's pipeline went through the llm engine's parse path without a failure
    assert {"plan", "skeleton", "inject", "refine", "judge", "verify"} <= set(summary["by_stage"])
    assert summary["total"]["failures"] == 0 and summary["total"]["json_retries"] == 0
    assert all(d["meta"].get("simulated") is True for d in ds)
    assert all(d["meta"]["failure"] is None for d in ds)
    assert sum(d["meta"]["verification"]["passed"] for d in ds) >= 6
    assert sum(len(d["meta"]["injections"]) for d in ds) >= 8  # injections realised from the facts the prompt shows
    # the verifier specialists judged with rules: their checks are recorded on the dialogues
    passed = [d for d in ds if d["meta"]["verification"]["passed"]]
    assert all("model:argument_grounding" in d["meta"]["verification"]["checks"] for d in passed)


def _verdict(backend, dia, name="argument_grounding"):
    from toolace_mt.generation.verify.model import view

    req = ChatRequest(messages=[{"role": "user", "content": "judge"}],
                      payload={"prompt": "verify.jinja", "visible": {"specialist": name, "tool_names": [],
                                                                     "dialogue": view(dia, name)}})
    return json.loads(backend.generate([req])[0].text)


def test_specialist_answers_follow_the_dialogue():
    """A simulated specialist re-checks the transcript it is shown: it fails a call using a value no earlier
    turn introduced (matched as a whole token, so a longer id does not ground a shorter one)."""
    cfg = GenerateConfig(method="toolace_mt", engine="rules", seed=1, progress=False, domains=["banking"])
    d = pipeline.run_batch(cfg, [0])[0]
    backend = SimulatedBackend()
    assert _verdict(backend, d)["pass"] is True
    bad = json.loads(json.dumps(d))
    i, tc = next((i, tc) for i, m in enumerate(bad["messages"]) for tc in m.get("tool_calls") or []
                 if any(isinstance(v, str) and any(ch.isdigit() for ch in v) for v in tc["function"]["arguments"].values()))
    p = next(k for k, v in tc["function"]["arguments"].items() if isinstance(v, str) and any(ch.isdigit() for ch in v))
    tc["function"]["arguments"][p] = "ZZ-INVENTED-999"
    v = _verdict(backend, bad)
    assert v["pass"] is False and "ZZ-INVENTED-999" in v["reason"]
    short = json.loads(json.dumps(d))  # "ACC123" is not grounded by an earlier "ACC1234"
    tc = next(tc for m in short["messages"] for tc in m.get("tool_calls") or [] if tc["function"]["arguments"].get(p))
    tc["function"]["arguments"][p] = tc["function"]["arguments"][p][:-1]
    assert _verdict(backend, short)["pass"] is False


def test_unanswerable_requests_are_typed_failures_not_crashes():
    backend = SimulatedBackend()
    reqs = [ChatRequest(messages=[{"role": "user", "content": "hello"}]),
            ChatRequest(messages=[{"role": "user", "content": "x"}], payload={"prompt": "nope.jinja", "visible": {}}),
            ChatRequest(messages=[{"role": "user", "content": "x"}], payload={"prompt": "refill.jinja", "visible": {}}),
            ChatRequest(messages=[{"role": "user", "content": "x"}],
                        payload={"prompt": "mas_tool.jinja", "visible": {"tools": [], "calls": []}})]
    out = backend.generate(reqs)
    assert [r.error.kind for r in out] == ["backend"] * 4
    assert "payload" in out[0].error.message and "nope.jinja" in out[1].error.message
    assert "schema-only" in out[3].error.message


def test_tokens_are_counted_with_gpt4o_bpe():
    name, count = tokenizer()
    assert "o200k_base" in name
    assert count_text("hello world") == 2
    assert count_text("ACC12345 transfer") != len("ACC12345 transfer".split())  # BPE, not whitespace
    req = ChatRequest(messages=[{"role": "system", "content": "hello world"}, {"role": "user", "content": "hi"}])
    assert count_prompt(req) == 2 + 1 + 2 * 3 + 3
    resp = SimulatedBackend().generate([ChatRequest(messages=req.messages, payload={
        "prompt": "judge.jinja", "visible": {"old": ["Pay ACC1 now."], "new": ["Hi! Pay ACC1 now."]}})])[0]
    assert json.loads(resp.text)["keep"] == "new"
    assert resp.usage.prompt_tokens == count_prompt(req) and resp.usage.completion_tokens == count_text(resp.text)
