"""tau-style suite: domains, deterministic tasks, scripted/LLM users, reward, pass^k, end-to-end runs."""
from __future__ import annotations

import json
from math import comb

import pytest

from toolace_mt.evaluation.config import parse_recipe
from toolace_mt.evaluation.policies import make_policy
from toolace_mt.evaluation.policy import PolicyOutput
from toolace_mt.evaluation.suites import get_suite
from toolace_mt.evaluation.tau.domains import DOMAINS, get_domain, own_tasks, tau_env
from toolace_mt.evaluation.episodes.orchestrator import run_episodes
from toolace_mt.evaluation.tau.scoring import outputs_missing, pass_hat_k, score_tau
from toolace_mt.evaluation.episodes.users import STOP, LLMUser, ScriptedUser


@pytest.fixture(scope="module")
def tasks():
    return own_tasks()


def _cfg(**kw):
    raw = {"suite": "tau", "source": "own", "policy": {"kind": "oracle"}, "progress": False}
    raw.update(kw)
    return parse_recipe(raw)


def _score_all(tasks, trajs):
    by = {t.task_id: t for t in tasks}
    return [score_tau(by[tr["task_id"]], tr) for tr in trajs]


def _writes(task):
    specs = get_domain(task.domain).tool_specs()
    return [a for a in task.actions if specs[a["name"]].writes]


def test_tasks_are_deterministic_valid_and_enough(tasks):
    assert [t.to_dict() for t in tasks] == [t.to_dict() for t in own_tasks()]
    for dom in DOMAINS:
        assert sum(t.domain == dom for t in tasks) >= 15
    assert len({t.task_id for t in tasks}) == len(tasks)
    for t in tasks:
        env = get_domain(t.domain).fresh()
        for a in t.actions:
            assert env.execute(a["name"], a["kwargs"]).ok, (t.task_id, a)
        # every task needs a write or a said fact, otherwise doing nothing would pass it
        assert _writes(t) or t.outputs, t.task_id


def test_policy_document_and_terminate_tool():
    for dom, (cls, _) in DOMAINS.items():
        assert "policy" in cls.policy().lower()
        assert "transfer_to_human_agents" in cls.tool_specs()
        a, b = cls.fresh(), cls.fresh()
        assert a.state_hash() == b.state_hash()


def test_oracle_with_scripted_user_reaches_every_goal(tasks):
    trajs = run_episodes(make_policy({"kind": "oracle"}), tasks, ScriptedUser(), tau_env)
    scores = _score_all(tasks, trajs)
    for t, tr, s in zip(tasks, trajs, scores):
        assert tr["termination"] == "user_stop", t.task_id
        said = [m["content"] for m in tr["messages"] if m["role"] == "user"]
        assert said == [turn.say for turn in t.script]  # every fact revealed, in order
        assert s["correct"], (t.task_id, s["reasons"])


def test_null_policy_scores_what_the_rule_implies(tasks):
    trajs = run_episodes(make_policy({"kind": "null"}), tasks, ScriptedUser(), tau_env)
    for t, s in zip(tasks, _score_all(tasks, trajs)):
        expected = not _writes(t) and not t.outputs  # nothing changes, nothing to say
        assert s["correct"] == expected
        assert s["db_match"] == (not _writes(t))


class SkipOneWrite:
    """The oracle, except that it ends the turn instead of making the task's first gold write call."""

    name = "skip"

    def __init__(self, tasks):
        self.oracle = make_policy({"kind": "oracle"})
        self.skip = {t.task_id: _writes(t)[0] for t in tasks if _writes(t)}

    def act(self, batch):
        outs = self.oracle.act(batch)
        res = []
        for inp, out in zip(batch, outs):
            target = self.skip.get(inp.task_id)
            if out.tool_calls and target and out.tool_calls[0] == {"name": target["name"],
                                                                   "arguments": target["kwargs"]}:
                out = PolicyOutput(content="All done!")
            res.append(out)
        return res


def test_agent_skipping_one_gold_write_fails(tasks):
    with_writes = [t for t in tasks if _writes(t)]
    assert len(with_writes) >= 24
    trajs = run_episodes(SkipOneWrite(with_writes), with_writes, ScriptedUser(), tau_env)
    for t, s in zip(with_writes, _score_all(with_writes, trajs)):
        assert not s["correct"] and not s["db_match"], t.task_id


def test_outputs_rule_case_and_commas():
    assert outputs_missing(["1093.34", "Pending"], ["refund of 1,093.34 dollars", "it is PENDING"]) == []
    assert outputs_missing(["1093.34"], ["refund of 1093.3"]) == ["1093.34"]


def test_pass_hat_k_hand_computed():
    succ = {"a": 4, "b": 2, "c": 0}
    assert pass_hat_k(succ, 4, 1) == pytest.approx((1 + 0.5 + 0) / 3)
    assert pass_hat_k(succ, 4, 2) == pytest.approx((1 + 1 / 6 + 0) / 3)
    assert pass_hat_k(succ, 4, 4) == pytest.approx(1 / 3)
    assert pass_hat_k({"x": 3}, 5, 2) == pytest.approx(comb(3, 2) / comb(5, 2))
    suite = get_suite("tau")
    scores = [{"task_id": t, "category": "retail", "correct": i < c, "score": float(i < c), "termination": "user_stop"}
              for t, c in succ.items() for i in range(4)]
    summ = suite.summarize(scores)
    assert summ["pass^1"] == pytest.approx(0.5) and summ["pass^4"] == pytest.approx(1 / 3)
    assert summ["terminations"] == {"user_stop": 12}


class Looper:
    name = "looper"

    def __init__(self, call):
        self.call = call

    def act(self, batch):
        return [PolicyOutput(tool_calls=[dict(self.call)]) for _ in batch]


def test_termination_reasons_max_steps_and_transfer(tasks):
    t = [x for x in tasks if x.domain == "retail"][:1]
    tr = run_episodes(Looper({"name": "list_all_product_types", "arguments": {}}), t, ScriptedUser(), tau_env, max_steps=5)[0]
    assert tr["termination"] == "max_steps" and tr["steps"] == 5
    s = score_tau(t[0], tr)
    assert not s["correct"] and any("not finished" in r for r in s["reasons"])
    tr = run_episodes(Looper({"name": "transfer_to_human_agents", "arguments": {"summary": "x"}}), t,
                      ScriptedUser(), tau_env)[0]
    assert tr["termination"] == "transfer" and tr["steps"] == 1


class FakeClient:
    """A scripted LLM for the user simulator: says the task's facts, then the stop token."""

    def __init__(self):
        self.requests = []

    def chat(self, reqs):
        from toolace_mt.llm.types import ChatResponse

        self.requests.extend(reqs)
        out = []
        for r in reqs:
            n_user_turns = sum(1 for m in r.messages if m["role"] == "assistant")
            out.append(ChatResponse(text=f"fact {n_user_turns}" if n_user_turns < 2 else STOP))
        return out


def test_llm_user_prompt_roles_and_stop(tasks):
    client = FakeClient()
    trajs = run_episodes(make_policy({"kind": "null"}), tasks[:2], LLMUser(client), tau_env)
    assert all(tr["termination"] == "user_stop" for tr in trajs)
    r = client.requests[-1]
    assert r.messages[0]["role"] == "system"
    assert any(t.instruction in r.messages[0]["content"] for t in tasks[:2])
    assert STOP in r.messages[0]["content"]
    # the agent's replies appear as the other speaker ("user"), the simulated user's own lines as "assistant"
    assert [m["role"] for m in r.messages[1:]] == ["user", "assistant", "user", "assistant", "user"]


def test_run_evaluation_end_to_end_with_pass_k_and_rescore(tmp_path):
    from toolace_mt.evaluation.run import rescore, run_evaluation

    cfg = _cfg(n_trials=2, categories=["airline"], limit=4)
    summ = run_evaluation(cfg, tmp_path / "run")
    assert summ["overall"] == 1.0 and summ["pass^2"] == 1.0 and summ["n_scored"] == 8
    rows = [json.loads(x) for x in (tmp_path / "run" / "trajectories.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all(r["termination"] == "user_stop" for r in rows)
    # break one saved trajectory: drop its write call; re-scoring offline must catch it
    rows[0]["actions"] = [a for a in rows[0]["actions"] if not a["name"].startswith(("cancel", "update", "book",
                                                                                      "send"))]
    (tmp_path / "run" / "trajectories.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summ2 = rescore(tmp_path / "run")
    assert summ2["pass^1"] == pytest.approx(7 / 8) and summ2["pass^2"] == pytest.approx(3 / 4)


def test_llm_user_through_the_client_layer_from_recipe_options(tasks):
    """options.user=llm builds the user from an LLMConfig (here the scripted test backend)."""
    t = tasks[0]
    replies = [turn.say for turn in t.script] + ["Thanks, that's all. ###STOP###"]
    cfg = _cfg(options={"user": "llm", "user_llm": {"backend": "scripted", "extra": {"replies": replies}}})
    suite = get_suite("tau")
    task = next(x for x in suite.load_tasks(cfg) if x["id"] == t.task_id)
    tr = suite.run(make_policy({"kind": "oracle"}), [task], cfg, None)[0]
    assert tr["termination"] == "user_stop" and suite.score(task, tr)["correct"]


def test_tasks_file_round_trip(tmp_path, tasks):
    p = tmp_path / "tasks.jsonl"
    p.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in tasks[:3]))
    loaded = get_suite("tau").load_tasks(_cfg(tasks=str(p)))
    assert [x["id"] for x in loaded] == [t.task_id for t in tasks[:3]]
    from toolace_mt.config import RecipeError

    with pytest.raises(RecipeError, match="source must be 'own' or 'official'"):
        get_suite("tau").load_tasks(_cfg(source="bogus"))
    with pytest.raises(RecipeError, match="takes its tasks from the tau2 package"):
        get_suite("tau").load_tasks(_cfg(source="official", tasks=str(p)))


@pytest.mark.slow
def test_transformers_policy_end_to_end(tiny_model_dir, tmp_path):
    """A real (tiny, random) model through the same policy layer: runs, records, scores, never crashes."""
    from toolace_mt.evaluation.run import run_evaluation

    cfg = _cfg(limit=1, max_steps=3, policy={"kind": "transformers", "model": str(tiny_model_dir),
                                             "max_new_tokens": 12, "batch_size": 4})
    s = run_evaluation(cfg, tmp_path / "t")
    assert s["n_scored"] == s["n_expected"] == 2 and s["pass^1"] == 0.0
    rows = [json.loads(x) for x in (tmp_path / "t" / "trajectories.jsonl").read_text().splitlines()]
    assert all(r["termination"] in ("max_steps", "user_stop", "transfer") for r in rows)
    assert sum(r["completion_tokens"] for r in rows) > 0


def test_efficiency_counts_assistant_turns_in_every_summary_and_the_paper_rows(tasks):
    """Assistant turns per task (the paper's efficiency): one per assistant message, averaged over episodes; an
    extra reply raises it; the paper rows carry average / domains with n and Wilson intervals."""
    trajs = run_episodes(make_policy({"kind": "oracle"}), tasks, ScriptedUser(), tau_env)
    scores = _score_all(tasks, trajs)
    suite = get_suite("tau")
    summ = suite.summarize(scores)
    # the oracle makes one message per gold action and one reply per scripted turn
    want = [len(t.actions) + len(t.script) for t in tasks]
    assert [s["assistant_turns"] for s in scores] == want
    eff = summ["efficiency"]
    assert eff["assistant_turns_per_task"] == pytest.approx(sum(want) / len(want), abs=1e-3) and eff["n"] == len(tasks)
    assert eff["ci95"][0] <= eff["assistant_turns_per_task"] <= eff["ci95"][1]
    longer = dict(trajs[0], messages=trajs[0]["messages"] + [{"role": "assistant", "content": "Anything else?"}])
    assert score_tau(tasks[0], longer)["assistant_turns"] == want[0] + 1
    assert any("assistant turns per task" in line for line in summ["report_lines"])
    rows = {r["metric"]: r for r in suite.paper_rows({**summ, "intervals": __import__(
        "toolace_mt.evaluation.stats", fromlist=["x"]).category_intervals(scores)})}
    assert set(rows) == {"average", "airline", "retail", "efficiency (assistant turns / task)"}
    assert rows["average"]["value"] == 1.0 and rows["average"]["n"] == len(tasks)
    assert rows["retail"]["n"] == sum(t.domain == "retail" for t in tasks) and rows["retail"]["ci95"][1] == 1.0
    assert rows["efficiency (assistant turns / task)"]["count"] is True
