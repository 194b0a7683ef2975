"""The information barrier of offline generation: an offline answer uses only what its prompt shows.

Both methods run with the `llm` engine on the `simulated` backend over every domain; every request and its
answer is recorded. Two checks per request:
* structure: the visible context handed to the offline answer holds only variables its template renders;
* values: every entity value in the answer (ids a call consumes; ids, amounts and dates in its texts) appears
  in the rendered prompt as a whole token, or is created in the same answer by a call's own argument.
A stage made to read a hidden field fails both checks (the last tests).
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import jinja2
import pytest
from sim_recorder import Recorder
from jinja2 import meta

from toolace_mt.envs import all_envs, get_env
from toolace_mt.generation import llm_io, pipeline
from toolace_mt.generation import mas as mas_pkg
from toolace_mt.generation.config import parse_recipe
from toolace_mt.generation.mas import agents
from toolace_mt.generation.resolve import id_tokens, mentions_token
from toolace_mt.llm import simulated
from toolace_mt.llm.client import make_client

GEN = Path(llm_io.__file__).parent
TEMPLATE_DIRS = [GEN / "prompts", GEN / "mas" / "prompts"]
COUNT = re.compile(r"\b\d+ items?\b")


@functools.lru_cache(maxsize=None)
def template_vars(name: str) -> frozenset[str]:
    for d in TEMPLATE_DIRS:
        if (d / name).exists():
            env = jinja2.Environment()
            return frozenset(meta.find_undeclared_variables(env.parse((d / name).read_text())))
    raise KeyError(name)


def _cfg(method: str, n: int, **kw):
    raw = {"name": "barrier", "method": method, "engine": "llm", "n_dialogues": n, "seed": 3, "domains": "all",
           "subtasks": [2, 3], "steps": [1, 3], "injections": [1, 3], "refinement_steps": 2, "progress": False,
           "llm": {"backend": "simulated", "model": "rules"}}
    raw.update(kw)
    return parse_recipe(raw)


def _domain_of(req) -> str:
    v = req.payload["visible"]
    if v.get("domain") in all_envs():
        return v["domain"]
    if req.payload.get("domain") in all_envs():
        return req.payload["domain"]
    return agents._domain_of(v.get("tools") or [], None).domain


def _calls(ans) -> list[dict]:
    """Call-like objects of an answer: skeleton steps and the MAS assistant's tool_calls."""
    if not isinstance(ans, dict):
        return []
    out = []
    for st in ans.get("steps") or []:
        out.extend(c for c in st if isinstance(c, dict))
    out.extend(c for c in ans.get("tool_calls") or [] if isinstance(c, dict))
    return out


def _texts(ans) -> list[str]:
    if isinstance(ans, str):
        return [ans]
    if isinstance(ans, list):
        return [t for x in ans for t in _texts(x)]
    if isinstance(ans, dict):
        return [t for k, x in ans.items() if k not in ("steps", "tool_calls") for t in _texts(x)]
    return []


def violations(req, txt: str) -> tuple[int, list[str]]:
    """(entity values checked, those the prompt does not show and the answer does not create)."""
    prompt = "\n".join(m["content"] for m in req.messages) + json.dumps(req.tools or [])
    ans = json.loads(txt)
    cls = get_env(_domain_of(req))
    specs = cls.tool_specs()
    created: list[str] = []  # values the answer's own calls introduce (new names, amounts, memos)
    bad, n = [], 0
    for c in _calls(ans):
        spec = specs.get(c.get("name"))
        for p, v in (c.get("arguments") or {}).items():
            if spec is not None and p in spec.consumes:  # refers to an existing entity: must be shown
                n += 1
                if not mentions_token(prompt, v) and not any(mentions_token(x, v) for x in created):
                    bad.append(f"{req.payload['prompt']}: {c['name']}({p}={v!r})")
            else:
                created.append(json.dumps(v) if not isinstance(v, str) else v)
    for t in _texts(ans):
        for tok in id_tokens(COUNT.sub("", t)):
            n += 1
            if not mentions_token(prompt, tok) and not any(mentions_token(x, tok) for x in created):
                bad.append(f"{req.payload['prompt']}: text states {tok!r}")
    return n, bad


@pytest.fixture(scope="module")
def recorded():
    mp = pytest.MonkeyPatch()
    rec = Recorder()
    rec.install(mp)
    try:
        n = len(all_envs())
        for method, mod, kw in (("toolace_mt", pipeline, {"skeleton_goal": "description"}), ("toolace_mt", pipeline, {"skeleton_goal": "calls"}),
                                ("mas", mas_pkg, {"batch_specialists": False})):
            cfg = _cfg(method, n, **kw)
            mod.run_batch(cfg, list(range(n)), make_client(cfg.llm))
    finally:
        mp.undo()
    return rec.log


def test_every_stage_of_both_methods_is_recorded_over_all_domains(recorded):
    prompts = {r.payload["prompt"] for r, _ in recorded}
    # environment domains: the plan request describes the sampled calls (describe.jinja) and the skeleton is
    # written part by part (part.jinja); plan.jinja / subtrajectory.jinja serve schema-only pools only
    assert {"describe.jinja", "part.jinja", "inject.jinja", "refill.jinja", "judge.jinja", "verify.jinja",
            "verify_all.jinja", "mas_user.jinja", "mas_assistant.jinja"} <= prompts
    assert not {"plan.jinja", "subtrajectory.jinja"} & prompts
    for name in ("describe.jinja", "part.jinja"):
        doms = {_domain_of(r) for r, _ in recorded if r.payload["prompt"] == name}
        assert doms == set(all_envs()), name


def test_visible_context_holds_only_rendered_variables(recorded):
    for req, _ in recorded:
        extra = set(req.payload["visible"]) - template_vars(req.payload["prompt"])
        assert not extra, f"{req.payload['prompt']} hands the offline answer unrendered fields {extra}"


def test_every_entity_value_of_an_offline_answer_is_in_its_prompt(recorded):
    total, bad = 0, []
    for req, txt in recorded:
        n, b = violations(req, txt)
        total += n
        bad.extend(b)
    assert total > 200  # the check looked at many values
    assert not bad, f"{len(bad)} of {total} answer values not in their prompt: {bad[:8]}"


def test_backend_reaches_no_payload_field_outside_visible(monkeypatch):
    """The backend hands an answer function only the visible context (a hidden payload field is unreachable)."""
    seen = {}

    def spy(visible):
        seen.update(visible)
        return {"keep": "old", "reason": "x"}

    monkeypatch.setitem(simulated.OFFLINE_ANSWERS, "judge.jinja", spy)
    from toolace_mt.llm.types import ChatRequest

    req = ChatRequest(messages=[{"role": "user", "content": "hi"}],
                      payload={"prompt": "judge.jinja", "visible": {"old": ["a"]}, "secret": "RULE-SCORE"})
    simulated.SimulatedBackend().answer(req)
    assert seen == {"old": ["a"]}


def test_a_stage_that_reads_a_hidden_field_is_caught(monkeypatch):
    """The old skeleton stand-in copied the planner's pre-executed calls; slipping them into the visible context
    (unrendered) is caught by the structure check, and answering from them by the value check."""
    from toolace_mt.generation import skeleton
    hidden: dict = {}
    orig_request, orig_build = llm_io.request, skeleton.build_llm

    def build(plans, indices, cfg, client):
        hidden.clear()
        for p in plans:  # the planner's own calls of each subtask (what the old payload carried)
            for t, s in enumerate(p.subtasks):
                hidden[(p.domain, t)] = [[{"name": c.tool, "arguments": c.arguments} for c in st] for st in s.steps]
        return orig_build(plans, indices, cfg, client)

    def leaky_request(template, stage, payload, schema, llm_cfg=None, **ctx):
        req = orig_request(template, stage, payload, schema, llm_cfg, **ctx)
        if template == "part.jinja" and ctx.get("write_steps"):  # a part that writes the calls of subtask t
            req.payload["visible"]["hidden_subtask"] = hidden[(ctx["domain"], ctx["t"])]
        return req

    def cheat(visible):  # the fields the part request asks for; its calls copied from the hidden planner calls
        out = {"reply": "Done."} if visible.get("write_reply") else {}
        if visible.get("write_user"):
            out["user"] = "Please do it."
        if "hidden_subtask" in visible:
            out["steps"] = visible["hidden_subtask"]
        return out

    monkeypatch.setattr(skeleton.llm_io, "request", leaky_request)
    monkeypatch.setattr(pipeline, "build_llm", build)
    monkeypatch.setitem(simulated.OFFLINE_ANSWERS, "part.jinja", cheat)
    rec = Recorder()
    rec.install(monkeypatch)
    n = len(all_envs())  # one dialogue per domain: (domain, t) names one subtask
    cfg = _cfg("toolace_mt", n, refinement_steps=0, injections=[0, 0], model_verifiers=[], subtasks=[3, 3],
               skeleton_goal="description")  # the prompt shows no planned call: copied ones stand out
    pipeline.stage1(cfg, list(range(n)), make_client(cfg.llm))
    sk = [(r, t) for r, t in rec.log if r.payload["prompt"] == "part.jinja" and r.payload["visible"].get("write_steps")]
    assert len(sk) >= 2 * n
    assert all(set(r.payload["visible"]) - template_vars("part.jinja") for r, _ in sk)
    bad = [b for r, t in sk for b in violations(r, t)[1]]
    assert bad, "answers copied from hidden planner calls must show values absent from their prompts"
