"""Bounded prompts of the `llm` engine (refill, judge, injection) and `toolace-mt verify` with model verifiers.

A refill request shows the masked turns' local context and their subtasks' plan, not the transcript: the same
masks in a 5-subtask dialogue and in its first 3 subtasks give the same prompt (up to the counts of hidden
turns), and the prompt still holds every value the masked turns depend on.
"""
from __future__ import annotations

import copy
import json
import re

import pytest

from toolace_mt.app.cli import main
from toolace_mt.generation import context
from toolace_mt.generation.config import parse_recipe
from toolace_mt.generation.llm_io import show_dialogue
from toolace_mt.llm.simulated import OFFLINE_ANSWERS
from toolace_mt.generation.pipeline import run_batch
from toolace_mt.generation.dialogue import WorkDialogue
from toolace_mt.generation.refine import refill_request
from toolace_mt.generation.run import run_generation


@pytest.fixture(scope="module")
def long_dialogues():
    cfg = parse_recipe({"name": "ctx", "domains": ["food_delivery", "banking"], "n_dialogues": 4, "seed": 5,
                        "subtasks": [5, 5], "steps": [1, 3], "injections": [0, 0], "refinement_steps": 0,
                        "progress": False})
    return run_batch(cfg, list(range(4)))


def first_subtasks(d: dict, k: int) -> dict:
    """The same dialogue cut after its first k subtasks (messages and plan)."""
    d2 = copy.deepcopy(d)
    keep = [j for j, tg in enumerate(d2["meta"]["turns"]) if tg["t"] < k]
    d2["messages"] = [d2["messages"][j] for j in keep]
    d2["meta"]["turns"] = [d2["meta"]["turns"][j] for j in keep]
    d2["meta"]["plan"]["subtasks"] = d2["meta"]["plan"]["subtasks"][:k]
    return d2


def W(d: dict) -> WorkDialogue:
    """The typed dialogue stage 2 works on (the stage reads it from its JSON form the same way)."""
    return WorkDialogue.from_dict(copy.deepcopy(d))


def prompt(req) -> str:
    return req.messages[-1]["content"]


def norm(p: str) -> str:
    """Drop the only parts allowed to depend on the dialogue's length: counts of hidden turns and of subtasks."""
    return re.sub(r"\(\d+ turns not shown\)|has \d+ subtasks", "#", p)


def index_of(d: dict, kind: str, t: int) -> int:
    return next(j for j, tg in enumerate(d["meta"]["turns"]) if tg["k"] == kind and tg["t"] == t)


def test_refill_prompt_is_bounded_and_keeps_what_the_masked_turns_depend_on(long_dialogues):
    for d in long_dialogues:
        assert len(d["meta"]["plan"]["subtasks"]) == 5
        short = first_subtasks(d, 3)  # masks in subtasks 0-1: their windows (next turn included) lie in both
        for idx in ([index_of(d, "query", 1)], [index_of(d, "reply", 0)], [index_of(d, "query", 0), index_of(d, "reply", 1)]):
            long_p, short_p = prompt(refill_request(W(d), idx)), prompt(refill_request(W(short), idx))
            # the window does not grow with the number of subtasks ...
            assert norm(long_p) == norm(short_p)
            assert len(show_dialogue(d["messages"])) > 1.3 * len(show_dialogue(short["messages"]))  # really longer
            for i in idx:
                tg, msgs = d["meta"]["turns"][i], d["messages"]
                sub = [j for j, g in enumerate(d["meta"]["turns"]) if g["t"] == tg["t"]]
                calls = [tc for j in sub for tc in msgs[j].get("tool_calls") or []]
                assert calls
                if tg["k"] == "query":  # ... and holds every value the request's calls need
                    for tc in calls:
                        assert json.dumps(tc["function"]["arguments"], ensure_ascii=False) in long_p
                        for v in tc["function"]["arguments"].values():
                            src = context.first_mention(msgs, v, before=i) if isinstance(v, str) and len(v) >= 3 else None
                            if src is not None:  # a value an earlier turn introduced: that turn is quoted
                                assert re.search(rf"^\[{src}\] .*{re.escape(v)}", long_p, re.M | re.I)
                else:  # ... and the reply's request and the outputs it reports
                    req_i = max(j for j in range(i) if msgs[j]["role"] == "user")
                    assert msgs[req_i]["content"][:200] in long_p
                    for j in sub:
                        if msgs[j]["role"] == "tool" and j < i:
                            assert msgs[j]["content"][:context.OUTPUT_CHARS] in long_p
                assert msgs[i]["content"] in long_p  # the original text, for the values it must keep
                assert f"{d['meta']['plan']['subtasks'][tg['t']]['description']}" in long_p


def test_judge_and_injection_context_is_bounded_too(long_dialogues):
    for d in long_dialogues:
        short = first_subtasks(d, 3)
        idx = [index_of(d, "query", 0), index_of(d, "reply", 1)]
        slots = {i: f"<CHANGED {k}>" for k, i in enumerate(idx)}
        assert norm(context.local_context(W(d), idx, slots)) == norm(context.local_context(W(short), idx, slots))
        assert "<CHANGED 0>" in context.local_context(W(d), idx, slots)


def test_llm_run_refill_prompts_stay_small_for_long_dialogues():
    """Through the pipeline (scripted LLM giving the offline answers): every refill, judge and injection prompt
    of a 5-subtask run shows an excerpt well under the dialogue it edits, and the run still verifies."""
    from toolace_mt.llm.testing import make_scripted_client

    seen = []

    def answer(req):
        seen.append(req)
        return json.dumps(OFFLINE_ANSWERS[req.payload["prompt"]](req.payload["visible"]))

    cfg = parse_recipe({"name": "ctx-llm", "engine": "llm", "llm": {"backend": "scripted"}, "domains": ["banking"],
                        "n_dialogues": 3, "seed": 2, "subtasks": [5, 5], "steps": [1, 3], "injections": [1, 2],
                        "refinement_steps": 3, "progress": False, "skeleton_goal": "calls"})
    ds = run_batch(cfg, list(range(3)), client=make_scripted_client(answer, json_retries=0))
    by_id = {d["id"]: d for d in ds}
    edits = [r for r in seen if r.payload["prompt"] in ("refill.jinja", "judge.jinja", "inject.jinja")]
    assert {r.payload["prompt"] for r in edits} == {"refill.jinja", "judge.jinja", "inject.jinja"}
    for r in edits:
        assert r.payload["prompt_version"] in ("tmt-refill/2", "tmt-judge/2", "tmt-inject/3")
        excerpt = prompt(r).split("excerpt", 1)[1].split("\n\n", 1)[0]
        assert "turns not shown" in excerpt
        assert len(excerpt) < len(show_dialogue(by_id[r.payload["dialogue_id"]]["messages"])) * 0.75
    for d in ds:
        assert d["meta"]["verification"]["passed"], d["meta"]["verification"]["reasons"]


# ------------------------------------------------------------------------------------------------ verify CLI
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    run_generation(parse_recipe({"name": "v", "domains": ["banking"], "n_dialogues": 2, "seed": 3,
                                 "subtasks": [2, 2], "progress": False}), out)
    return out / "dataset" / "train.jsonl"


def test_verify_runs_model_specialists_from_a_recipe(tmp_path, exported, capsys):
    """Replies come in request order: row 0 (grounding, naturalness), row 1 (grounding, naturalness).
    A rejecting verdict and an unusable (non-JSON) answer both become recorded rejection reasons."""
    replies = [{"pass": True, "reason": "ok"}, {"pass": True, "reason": "ok"},
               {"pass": False, "reason": "the account id was never stated"}, "I think it is fine"]
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"task": "generate", "engine": "llm", "model_verifiers": ["argument_grounding", "naturalness"],
                                  "llm": {"backend": "scripted", "json_retries": 0,
                                          "extra": {"replies": [r if isinstance(r, str) else json.dumps(r)
                                                                for r in replies]}}}))
    assert main(["verify", str(exported), "--out", str(tmp_path / "v"), "--recipe", str(recipe)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["counts"] == {"generated": 2, "kept": 1, "rejected": 1, "pass_rate": 0.5}
    assert res["model_verifiers"] == ["argument_grounding", "naturalness"] and res["llm_usage"]["requests"] == 4
    rows = [json.loads(x) for x in (tmp_path / "v" / "train.jsonl").read_text().splitlines()]
    v0, v1 = (json.loads(r["meta"])["verification"] for r in rows)
    assert v0["passed"] and v0["checks"]["model:argument_grounding"] and v0["checks"]["model:naturalness"]
    assert not v1["passed"]
    assert any("model:argument_grounding: the account id was never stated" in r for r in v1["reasons"])
    assert any(r.startswith("model:naturalness: verifier answer unusable") for r in v1["reasons"])
    assert (tmp_path / "v" / "usage.json").is_file()


def test_verify_exits_1_with_the_reason_when_every_specialist_request_failed(tmp_path, exported, capsys):
    """A verifier model that never answers in JSON decided nothing: exit 1 and say why; the run is kept."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"task": "generate", "engine": "llm", "model_verifiers": ["naturalness"],
                                  "llm": {"backend": "scripted", "json_retries": 0,
                                          "extra": {"replies": ["looks fine to me", "no idea"]}}}))
    assert main(["verify", str(exported), "--out", str(tmp_path / "v"), "--recipe", str(recipe)]) == 1
    cap = capsys.readouterr()
    assert "error: all 2 LLM requests failed; e.g. invalid_json" in cap.err
    assert json.loads(cap.out)["counts"]["kept"] == 0
    assert (tmp_path / "v" / "verify_summary.json").is_file() and (tmp_path / "v" / "usage.json").is_file()
    from toolace_mt.llm.ledger import UsageLedger  # a resumed ledger keeps the example that says why

    again = UsageLedger.load(tmp_path / "v" / "usage.json").summary()
    assert again["failure_examples"] == json.loads((tmp_path / "v" / "usage.json").read_text())["failure_examples"]
    assert again["failure_examples"]


def test_verify_backend_options_and_their_errors(tmp_path, exported, capsys):
    assert main(["verify", str(exported), "--out", str(tmp_path / "s"), "--llm-backend", "simulated",
                 "--model", "rules", "--verifiers", "task_completion"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["model_verifiers"] == ["task_completion"] and res["counts"]["kept"] == 2
    assert res["llm_usage"]["requests"] == 2
    assert main(["verify", str(exported), "--out", str(tmp_path / "x"), "--llm-backend", "nope"]) == 2
    assert main(["verify", str(exported), "--out", str(tmp_path / "x"), "--model", "m"]) == 2
    assert main(["verify", str(exported), "--out", str(tmp_path / "x"), "--llm-backend", "simulated",
                 "--verifiers", "spelling"]) == 2
    assert "spelling" in capsys.readouterr().err


def test_adversarial_refill_answers_on_the_bounded_prompt_are_typed_failures():
    """Mask numbers the excerpt never showed, prose instead of JSON: recorded failures, no crash, no edit."""
    from toolace_mt.llm.testing import make_scripted_client

    def answer(req):
        p = req.payload
        k = int(p["dialogue_id"].rsplit("-", 1)[1])
        if p["prompt"] == "refill.jinja" and k == 0:
            return json.dumps({"fills": [{"mask": 7, "content": "Transfer everything to ACC00000."}]})
        if p["prompt"] == "refill.jinja" and k == 1:
            return "Sure, here are better turns: <MASK 0> = hi"
        return json.dumps(OFFLINE_ANSWERS[p["prompt"]](p["visible"]))

    cfg = parse_recipe({"name": "ctx-bad", "engine": "llm", "llm": {"backend": "scripted"}, "domains": ["banking"],
                        "n_dialogues": 3, "seed": 4, "subtasks": [3, 3], "steps": [1, 2], "injections": [0, 0],
                        "refinement_steps": 1, "progress": False, "skeleton_goal": "calls"})
    ds = run_batch(cfg, list(range(3)), client=make_scripted_client(answer, json_retries=0))
    f0, f1 = ds[0]["meta"]["failure"], ds[1]["meta"]["failure"]
    assert f0["stage"] == "refine" and f0["kind"] == "bad_fill"
    assert f1["stage"] == "refine" and f1["kind"] in ("invalid_json", "schema_mismatch")
    assert all("ACC00000" not in (m.get("content") or "") for m in ds[0]["messages"])
    assert ds[2]["meta"]["failure"] is None and ds[2]["meta"]["verification"]["passed"]
