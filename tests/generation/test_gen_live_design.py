"""The generation design for a real model (commit 9212879): goal references, descriptions of the sampled calls,
replies written after their outputs (m + 1 part requests), the MAS user's text-only view with satisfiable
withholding, the plan-fidelity rule check and the "$k.field" references of written calls."""
from __future__ import annotations

import json

import pytest
from sim_recorder import Recorder

from toolace_mt.envs import get_env
from toolace_mt.generation import mas, pipeline
from toolace_mt.generation.config import GenerateConfig, parse_recipe
from toolace_mt.generation.dialogue import WorkDialogue
from toolace_mt.generation.mas.simulate import user_request
from toolace_mt.generation.plan import CallPlan, SubtaskPlan, TaskPlan, goal_view, is_goal_ref, make_env
from toolace_mt.generation.skeleton import resolve_refs
from toolace_mt.generation.verify import rules
from toolace_mt.generation.verify.plan_check import plan_problems
from toolace_mt.llm import simulated
from toolace_mt.llm.client import make_client

CAL = "calendar_reminders"
NEW_EVENT = {"title": "Dentist", "date": "2024-05-28", "start_time": "10:00"}


def _plan(domain: str, subtasks: list[tuple[str, list[list[CallPlan]]]], planner: str = "rules+llm") -> TaskPlan:
    cls = get_env(domain)
    subs = [SubtaskPlan(description=desc, tools=list(dict.fromkeys(c.tool for st in steps for c in st)),
                        n_steps=len(steps), steps=steps) for desc, steps in subtasks]
    return TaskPlan(domain=domain, state_seed=5, tools=list(cls.tool_specs()), subtasks=subs, planner=planner)


def _created_event_id() -> str:
    env = make_env(_plan(CAL, []))
    return env.execute("create_event", dict(NEW_EVENT)).output["event_id"]


# ------------------------------------------------------------------------------------------------ 1. goal_view
def test_goal_view_shows_a_created_value_as_a_reference_and_an_initial_value_literally():
    made = _created_event_id()  # the id create_event returns on this state (the replay is deterministic)
    initial = make_env(_plan(CAL, [])).entity_values("event_id")[0]
    assert made not in make_env(_plan(CAL, [])).entity_values("event_id")
    plan = _plan(CAL, [
        ("Create a Dentist event on 2024-05-28 at 10:00", [[CallPlan("create_event", dict(NEW_EVENT))]]),
        # a later subtask: the planner's refs do not mark it, the replay sees the id was created in task 1
        ("Show the event just created and event " + initial, [[CallPlan("get_event", {"event_id": made}),
                                                               CallPlan("get_event", {"event_id": initial})]]),
    ])
    goal = goal_view(plan)
    assert [len(s) for s in goal] == [1, 1] and len(goal[1][0]) == 2
    assert goal[0][0][0] == {"tool": "create_event", "arguments": NEW_EVENT}  # user-given values stay literal
    ref = goal[1][0][0]["arguments"]["event_id"]
    assert is_goal_ref(ref) and "create_event in task 1" in ref, ref
    assert goal[1][0][1]["arguments"]["event_id"] == initial and not is_goal_ref(initial)
    assert made not in json.dumps(goal)  # the created value never appears as a literal
    # the dict form of the plan gives the same goal
    assert goal_view(plan.to_dict()) == goal


# ------------------------------------------------------------------------------------------------ 2. parts
@pytest.mark.parametrize("goal_mode", ["calls", "description"])
def test_skeleton_writes_m_plus_one_parts_and_each_reply_after_its_outputs(monkeypatch, goal_mode):
    rec = Recorder().install(monkeypatch)
    n = 4
    cfg = parse_recipe({"name": "parts", "engine": "llm", "n_dialogues": n, "seed": 7, "domains": "all",
                        "subtasks": [2, 3], "steps": [1, 2], "injections": [0, 0], "refinement_steps": 0,
                        "progress": False, "skeleton_goal": goal_mode, "llm": {"backend": "simulated"}})
    ds = pipeline.stage1(cfg, list(range(n)), make_client(cfg.llm))
    parts = [(r, json.loads(t)) for r, t in rec.log if r.payload["prompt"] == "part.jinja"]
    checked = 0
    for d in ds:
        assert d["meta"]["failure"] is None, d["meta"]["failure"]
        m = len(d["meta"]["plan"]["subtasks"])
        mine = [(r, a) for r, a in parts if r.payload["dialogue_id"] == d["id"]]
        assert len(mine) == m + 1  # one part per index t = 0..m
        assert [r.payload["visible"]["t"] for r, _ in mine] == list(range(m + 1))
        msgs = d["messages"]
        users = [i for i, x in enumerate(msgs) if x["role"] == "user"]
        assert len(users) == m
        for t, (r, ans) in enumerate(mine):
            v = r.payload["visible"]
            assert v["write_reply"] == (t > 0) and v["write_user"] == (t < m)
            assert v["write_steps"] == (goal_mode == "description" and t < m)
            assert (v["goal"] is not None) == (goal_mode == "calls" and t < m)
            if t == 0:
                continue
            # the reply closing part t-1 is written by request t, whose transcript shows that part's outputs
            lo, hi = users[t - 1], users[t] if t < m else len(msgs)
            outs = [x for x in msgs[lo:hi] if x["role"] == "tool"]
            assert outs
            prompt = "\n".join(x["content"] for x in r.messages)
            assert all(o["content"] in prompt for o in outs)
            assert v["history_messages"][-1]["role"] == "tool"  # the part's last output precedes the reply
            reply = next(x for x in msgs[lo:hi] if x["role"] == "assistant" and not x.get("tool_calls"))
            assert reply["content"] == ans["reply"] and msgs.index(reply) > max(msgs.index(o) for o in outs)
            checked += 1
    assert checked >= n * 2


# ------------------------------------------------------------------------------------------------ 3. MAS user
def test_mas_user_prompt_shows_texts_only_and_says_how_to_answer_the_withheld_value():
    cfg = GenerateConfig(method="mas", engine="rules", seed=3, progress=False, domains=["banking"],
                         injection_types=["clarification"], injections=[1, 1])
    ds = mas.run_batch(cfg, list(range(6)))
    seen_withhold = 0
    for d in ds:
        plan = TaskPlan.from_dict(d["meta"]["plan"])
        tools = [x for x in d["messages"] if x["role"] == "tool"]
        assert tools and any(x.get("tool_calls") for x in d["messages"])
        cut = max(i for i, x in enumerate(d["messages"]) if x["role"] == "tool") + 1  # the conversation so far
        part = WorkDialogue.from_dict(dict(d, messages=d["messages"][:cut]))
        req = user_request(part, plan)
        v = req.payload["visible"]
        prompt = "\n".join(x["content"] for x in req.messages)
        assert all(set(h) == {"role", "content"} and h["role"] in ("user", "assistant") for h in v["history_messages"])
        assert all(h["content"] for h in v["history_messages"])
        for o in tools:  # no tool output (nor its "tool <name>:" line) reaches the user's prompt
            assert o["content"] not in prompt
            assert f"tool {o['name']}:" not in prompt
        assert "CALLS " not in prompt and "call_" not in prompt  # no tool call of the conversation either
        # the goal: description + the calls that serve it, created values as references (goal_view)
        assert [s["goal"] for s in v["subtasks"]] == goal_view(plan)
        assert [s["description"] for s in v["subtasks"]] == [s.description for s in plan.subtasks]
        wh = v["withhold"]
        if wh:
            seen_withhold += 1
            k, param = wh["subtask"], wh["param"]
            known = [c.arguments[param] for st in plan.subtasks[k].steps for c in st if param in c.arguments]
            assert wh["value"] in known and not is_goal_ref(wh["value"])  # a value the user knows
            assert f"answer that the {param} is {json.dumps(wh['value'])}" in " ".join(prompt.split())
    assert seen_withhold >= 3


# ------------------------------------------------------------------------------------------------ 4. plan check
def _banking_ids():
    env = make_env(_plan("banking", []))
    return env.entity_values("account_id")


def test_plan_check_flags_a_description_naming_an_id_no_call_uses():
    acc, other = _banking_ids()[:2]
    bad = _plan("banking", [(f"Check the balance of account {other}",
                             [[CallPlan("get_balance", {"account_id": acc})]])])
    probs = plan_problems({"meta": {"plan": bad.to_dict()}})
    assert probs and all(c == "plan" for c, _ in probs)
    assert any(other in why for _, why in probs) and any(acc in why for _, why in probs)  # both directions
    # through the rule verifier: a failed "plan" check with its reason
    checks, reasons = rules.verify_rules({"messages": [], "tools": [], "meta": {"plan": bad.to_dict()}})
    assert checks["plan"] is False and any(r.startswith("plan:") and other in r for r in reasons)


def test_plan_check_accepts_a_coherent_plan_and_skips_the_rules_planner():
    acc, other = _banking_ids()[:2]
    made = _created_event_id()
    good = _plan("banking", [(f"Check the balance of account {acc}", [[CallPlan("get_balance", {"account_id": acc})]]),
                             (f"Then list the transactions of {acc}",
                              [[CallPlan("list_transactions", {"account_id": acc})]])])
    assert plan_problems({"meta": {"plan": good.to_dict()}}) == []
    # a created value is a reference: its description need not (cannot) name it
    cal = _plan(CAL, [("Create a Dentist event on 2024-05-28 at 10:00", [[CallPlan("create_event", dict(NEW_EVENT))]]),
                      ("Show the event just created", [[CallPlan("get_event", {"event_id": made})]])])
    assert plan_problems({"meta": {"plan": cal.to_dict()}}) == []
    # the rules planner's descriptions are tool summaries: not checked, even when they name nothing the calls use
    rules_plan = _plan("banking", [(f"Check the balance of account {other}",
                                    [[CallPlan("get_balance", {"account_id": acc})]])], planner="rules")
    assert plan_problems({"meta": {"plan": rules_plan.to_dict()}}) == []


# ------------------------------------------------------------------------------------------------ 5. $k.field
def test_resolve_refs_fills_outputs_of_earlier_calls_of_the_part():
    outs = [{"order_id": "R100", "status": "processing"},
            {"items": [{"product_id": "P1"}, {"product_id": "P2"}], "tags": ["a", "b"]}]
    args, why = resolve_refs({"order_id": "$1.order_id", "qty": 2, "note": "keep $1 as text"}, outs)
    assert why is None and args == {"order_id": "R100", "qty": 2, "note": "keep $1 as text"}
    args, why = resolve_refs({"product_id": "$2.items.product_id"}, outs)  # a field nested anywhere: the first
    assert why is None and args == {"product_id": "P1"}
    args, why = resolve_refs({"tag": "$2.tags[1]", "product_id": " $2.product_id "}, outs)
    assert why is None and args == {"tag": "b", "product_id": "P1"}
    args, why = resolve_refs({"tag": "$2.tags[0]"}, outs)
    assert why is None and args == {"tag": "a"}


def test_resolve_refs_typed_errors():
    outs = [{"order_id": "R100"}]
    args, why = resolve_refs({"order_id": "$3.order_id"}, outs)
    assert args == {"order_id": "$3.order_id"} and "points at call 3" in why and "only 1 call(s) ran" in why
    args, why = resolve_refs({"order_id": "$0.order_id"}, outs)
    assert "points at call 0" in why
    args, why = resolve_refs({"x": "$1.tracking_number"}, outs)
    assert args == {"x": "$1.tracking_number"} and "has no field 'tracking_number'" in why
    args, why = resolve_refs({"x": "$1.order_id[4]"}, [{"order_id": ["R1", "R2"]}])
    assert "has no field 'order_id[4]'" in why
