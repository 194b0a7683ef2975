"""MAS baseline: the dialogues it grows, what each agent sees, the run machinery, typed failures."""
from __future__ import annotations

import json

import pytest

from toolace_mt.generation import mas, pipeline
from toolace_mt.generation.config import GenerateConfig
from toolace_mt.generation.llm_io import show_dialogue
from toolace_mt.generation.mas import agents
from toolace_mt.generation.mas.simulate import max_messages
from toolace_mt.generation.plan import TaskPlan, goal_view, is_goal_ref, plan_rules
from toolace_mt.llm.client import LLMClient, LLMConfig, make_client
from toolace_mt.llm.simulated import OFFLINE_ANSWERS, SimulatedBackend
from toolace_mt.llm.testing import make_scripted_client
from toolace_mt.schema import check_dialogue, validate_dialogue

N = 12


def _cfg(**kw) -> GenerateConfig:
    base = dict(method="mas", engine="rules", seed=3, progress=False)
    base.update(kw)
    return GenerateConfig(**base)


@pytest.fixture(scope="module")
def rules_batch():
    return mas.run_batch(_cfg(), list(range(N)))


class Recording(SimulatedBackend):
    """The simulated backend, keeping every request it answered (to check what each agent was shown)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def generate(self, requests):
        self.seen.extend(requests)
        return super().generate(requests)


@pytest.fixture(scope="module")
def llm_batch():
    backend = Recording()
    client = LLMClient(backend)
    ds = mas.run_batch(_cfg(engine="llm", llm=LLMConfig(backend="simulated")), list(range(N)), client)
    return ds, backend.seen, client


def test_rules_dialogues_are_grown_from_the_toolace_mt_plans_and_verified(rules_batch):
    cfg = _cfg()
    kept = 0
    for i, d in enumerate(rules_batch):
        assert d["meta"]["generator"] == "mas"
        # the user agent's goal is exactly the plan ToolACE-MT stage 1 builds for this index
        tmt = pipeline.stage1(GenerateConfig(method="toolace_mt", engine="rules", seed=3), [i])[0]
        assert d["meta"]["plan"] == tmt["meta"]["plan"] == plan_rules(cfg, i, d["meta"]["domain"]).to_dict()
        v = d["meta"]["verification"]
        assert set(v) >= {"passed", "reasons", "checks"}
        if v["passed"]:
            kept += 1
            check_dialogue(d)  # kept MAS dialogues pass the same validation as ToolACE-MT's
            assert d["meta"]["mas"]["stop"] == "satisfied"
            plan = TaskPlan.from_dict(d["meta"]["plan"])
            goal = goal_view(plan)
            requests = [m for m in d["messages"] if m["role"] == "user" and m["content"] != agents.DONT_KNOW
                        and not agents.CLARIFY_A_RE.match(m["content"].strip()) and m["content"] not in agents.SMALLTALK]
            assert len(requests) == len(plan.subtasks)  # one subtask revealed per user request
            # the user declines a detail only when its goal shows that value as a reference (<...>: returned by
            # an earlier call, so the user does not know it); a value the goal states is always given
            for k, m in enumerate(d["messages"]):
                if m["role"] == "user" and m["content"] == agents.DONT_KNOW:
                    q = agents.CLARIFY_Q_RE.search(d["messages"][k - 1]["content"] or "")
                    param = q.group(1).replace(" ", "_")
                    t = sum(x in requests for x in d["messages"][:k]) - 1
                    shown = [c["arguments"][param] for st in goal[t] for c in st if param in c["arguments"]]
                    assert shown and all(is_goal_ref(v) for v in shown), (d["meta"]["index"], param, shown)
            assert d["messages"][-1]["role"] == "assistant" and d["messages"][-1]["content"]
        else:
            assert v["reasons"]  # a rejection always says why
    assert kept >= N // 2


def test_clarification_is_realised_by_the_user_withholding_a_value():
    cfg = _cfg(injection_types=["clarification"], injections=[1, 1], domains=["banking"])
    ds = mas.run_batch(cfg, list(range(6)))
    asked = 0
    for d in ds:
        for k, m in enumerate(d["messages"]):
            if m["role"] == "assistant" and agents.CLARIFY_Q_RE.search(m.get("content") or ""):
                asked += 1
                ans = d["messages"][k + 1]
                assert ans["role"] == "user" and agents.CLARIFY_A_RE.match(ans["content"])
                # the withheld value is supplied by the answer and then used in the next call
                value = agents.CLARIFY_A_RE.match(ans["content"]).group(2)
                nxt = next(x for x in d["messages"][k + 2:] if x.get("tool_calls"))
                assert any(value in json.dumps(tc["function"]["arguments"]) for tc in nxt["tool_calls"])
    assert asked >= 3


def test_small_talk_is_realised_by_the_user_when_planned():
    cfg = _cfg(injection_types=["non_function_call"], injections=[1, 1], domains=["banking"], subtasks=[2, 3])
    for d in mas.run_batch(cfg, list(range(4))):
        said = [m["content"] for m in d["messages"] if m["role"] == "user"]
        assert sum(u in agents.SMALLTALK for u in said) == 1
        k = next(i for i, m in enumerate(d["messages"]) if m["role"] == "user" and m["content"] in agents.SMALLTALK)
        reply = d["messages"][k + 1]
        assert reply["role"] == "assistant" and reply["content"] and not reply.get("tool_calls")
        assert d["meta"]["verification"]["passed"], d["meta"]["verification"]["reasons"]


def test_llm_engine_on_simulated_backend_matches_rules_and_is_labelled(rules_batch, llm_batch):
    ds, seen, client = llm_batch
    for a, b in zip(rules_batch, ds):
        assert a["messages"] == b["messages"]  # the llm parse path reproduces the rules agents exactly
        assert b["meta"].get("simulated") is True and "simulated" not in a["meta"]
        assert b["meta"]["usage"]["mas_assistant"]["calls"] > 0 and b["meta"]["usage"]["mas_user"]["calls"] > 0
    stages = client.ledger.summary()["by_stage"]
    assert {"plan", "mas_user", "mas_assistant", "verify"} <= set(stages)
    assert client.ledger.summary()["total"]["failures"] == 0
    # one batched chat per simulation step: far fewer backend calls than requests
    assert client.backend_calls < len(seen) / 4


def test_assistant_prompts_never_contain_the_plan(llm_batch):
    ds, seen, _ = llm_batch
    by_id = {d["meta"]["seed"]: d for d in ds}
    asst = [r for r in seen if r.stage == "mas_assistant"]
    users = [r for r in seen if r.stage == "mas_user"]
    assert asst and users
    plans = [TaskPlan.from_dict(d["meta"]["plan"]) for d in ds]
    descs = {s.description for p in plans for s in p.subtasks if "; then " in s.description.lower()}
    assert descs
    for r in asst:
        assert "plan" not in r.payload and set(r.payload) <= {"role", "domain", "prompt", "prompt_version", "visible",
                                                              "dialogue_id"}  # the id only labels request logs
        assert set(r.payload["visible"]) == {"tools", "history_messages"}
        prompt = "\n".join(m["content"] for m in r.messages)
        assert not any(x in prompt for x in descs)
        assert '"state_seed"' not in prompt and "subtasks" not in prompt
        # no planned value the conversation has not yet shown
        history = show_dialogue(r.payload["visible"]["history_messages"]) + json.dumps(r.payload["visible"]["tools"])
        for p in plans:
            for c in p.calls():
                for v in c.arguments.values():
                    if isinstance(v, str) and len(v) >= 5 and v not in history:
                        assert v not in prompt, f"assistant prompt leaks planned value {v!r}"
    # ...while the user agent is shown its goal (so the check above is not vacuous)
    assert all(r.payload["visible"]["subtasks"] for r in users)
    assert any(any(x in "\n".join(m["content"] for m in r.messages) for x in descs) for r in users)
    assert by_id  # dialogues were produced


def test_rules_assistant_decides_from_history_alone():
    from toolace_mt.envs import get_env

    tools = get_env("banking").tool_schemas(["get_balance", "list_accounts", "pay_payee", "list_payees"])
    hist = [{"role": "user", "content": "Hey, can you list my bank accounts? Then what is the balance of account "
                                        "the account id from that result?"}]
    a1 = agents.assistant_turn("banking", tools, hist)
    assert a1["tool_calls"] == [{"name": "list_accounts", "arguments": {}}]
    hist += [{"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "list_accounts", "arguments": {}}}]},
             {"role": "tool", "tool_call_id": "call_1", "name": "list_accounts",
              "content": json.dumps({"accounts": [{"account_id": "ACC777", "kind": "checking", "balance": 5.0}]})}]
    a2 = agents.assistant_turn("banking", tools, hist)  # the reference is resolved from the tool output seen
    assert a2["tool_calls"] == [{"name": "get_balance", "arguments": {"account_id": "ACC777"}}]
    # a request missing a required value: the assistant asks for it instead of inventing one
    ask = agents.assistant_turn("banking", tools, [{"role": "user", "content": "I want to pay a saved payee from "
                                                    "one of the customer's accounts (amount 25.0), but I'm not sure "
                                                    "of the details."}])
    assert not ask["tool_calls"] and agents.CLARIFY_Q_RE.search(ask["content"])


def test_turn_limit_and_malformed_answers_are_typed_failures():
    def script(req):
        if req.stage == "plan":  # describe.jinja for an environment domain (the sampled calls are described)
            return json.dumps(OFFLINE_ANSWERS[req.payload["prompt"]](req.payload["visible"]))
        if req.stage == "mas_user":
            return json.dumps({"done": False, "message": "Can you list my bank accounts?"})
        if req.stage == "mas_assistant":
            return json.dumps({"content": None, "tool_calls": [{"name": "list_accounts", "arguments": {}}]})
        return "not json at all {"
    cfg = _cfg(engine="llm", domains=["banking"], verify=True, model_verifiers=[])
    ds = mas.run_batch(cfg, [0, 1], make_scripted_client(script, json_retries=0))
    for d in ds:
        assert d["meta"]["failure"]["kind"] == "turn_limit"
        assert len(d["messages"]) <= max_messages(TaskPlan.from_dict(d["meta"]["plan"])) + 2
        assert not d["meta"]["verification"]["passed"]
        assert any(r.startswith("generation") for r in d["meta"]["verification"]["reasons"])
    # garbage from the model: typed failures, no exception, every dialogue still rejected with a reason
    ds = mas.run_batch(cfg, [0, 1], make_scripted_client(lambda r: "}{ nonsense", json_retries=1))
    assert all(d["meta"]["failure"]["kind"] in ("invalid_json", "schema_mismatch", "truncated") for d in ds)
    assert all(validate_dialogue(d) == [] or not d["meta"]["verification"]["passed"] for d in ds)


def test_mas_run_directory_resumes_without_new_calls(tmp_path):
    from toolace_mt.generation.run import run_generation

    cfg = _cfg(engine="llm", llm=LLMConfig(backend="simulated"), n_dialogues=6, batch_size=3, domains=["banking"])

    def hook(stage, chunk):
        if chunk == 1 and stage == "simulate":
            raise KeyboardInterrupt  # a kill after the second chunk's first stage
    with pytest.raises(KeyboardInterrupt):
        run_generation(cfg, tmp_path / "run", client=make_client(cfg.llm), hook=hook)
    c2 = make_client(cfg.llm)
    s = run_generation(cfg, tmp_path / "run", client=c2)
    assert s["counts"]["generated"] == 6
    run_generation(cfg, tmp_path / "fresh", client=make_client(cfg.llm))
    a = (tmp_path / "run" / "dataset" / "train.jsonl").read_text()
    b = (tmp_path / "fresh" / "dataset" / "train.jsonl").read_text()
    assert a == b  # killed-and-resumed == uninterrupted
    # only the unfinished (chunk 1, verify) stage was redone: no simulation calls on resume
    assert "mas_user" not in c2.ledger.summary()["by_stage"]


def test_schema_only_pool_uses_the_llm_as_tool_agent(tmp_path):
    pool = tmp_path / "weather.json"
    pool.write_text(json.dumps([{"name": "get_weather", "description": "Current weather of a city.",
                                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                "required": ["city"]}}]))

    def script(req):
        p = req.payload["visible"]
        if req.stage == "plan":
            return json.dumps({"subtasks": [{"description": "check the weather", "tools": ["get_weather"]}]})
        if req.stage == "mas_user":
            said = [m for m in p["history_messages"] if m["role"] == "user"]
            return json.dumps({"done": bool(said), "message": "" if said else "What's the weather in Paris?"})
        if req.stage == "mas_assistant":
            if p["history_messages"][-1]["role"] == "user":
                return json.dumps({"content": None, "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})
            return json.dumps({"content": "It is 21 degrees and sunny in Paris.", "tool_calls": []})
        if req.stage == "mas_tool":
            assert p["calls"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
            return json.dumps({"outputs": [{"city": "Paris", "temperature_c": 21, "sky": "sunny"}]})
        if req.payload["prompt"] == "verify_all.jinja":
            return json.dumps({"verdicts": [{"specialist": s, "pass": True, "reason": "ok"} for s in p["specialists"]]})
        return json.dumps({"pass": True, "reason": "ok"})

    cfg = _cfg(engine="llm", tool_pool=str(pool), subtasks=[1, 1], steps=[1, 1], injections=[0, 0])
    client = make_scripted_client(script)
    d = mas.run_batch(cfg, [0], client)[0]
    assert d["meta"]["failure"] is None, d["meta"]["failure"]
    assert [m["role"] for m in d["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert json.loads(d["messages"][2]["content"])["temperature_c"] == 21
    assert d["meta"]["usage"]["mas_tool"]["calls"] == 1
    assert d["meta"]["verification"]["passed"], d["meta"]["verification"]["reasons"]


def test_request_parsing_keeps_a_value_s_final_punctuation_and_splits_after_quotes():
    from toolace_mt.envs import get_env

    cls = get_env("messaging")
    tools = cls.tool_schemas(["send_message", "get_conversation"])
    r = agents.parse_request(cls, tools, "Send a message to contact C123 saying Please call me when you land.")
    assert [(x.tool, x.args) for x in r] == [("send_message", {"contact_id": "C123", "text": "Please call me when you land."})]
    r = agents.parse_request(cls, tools, "Hello, text C932: 'On my way!' And show my conversation with C971.")
    assert [x.tool for x in r] == ["send_message", "get_conversation"] and r[0].args["text"] == "On my way!"
