"""BFCL suite on OUR task sets (built from toolace_mt.envs): builder, oracle/null anchors, the transformers
policy end to end with a tiny random model."""
from __future__ import annotations

import json
import re

import pytest

from toolace_mt.evaluation.bfcl import CATEGORIES, HELDOUT_USER_MESSAGE
from toolace_mt.evaluation.bfcl.build import build_task_set
from toolace_mt.evaluation.config import parse_recipe
from toolace_mt.evaluation.run import run_evaluation
from toolace_mt.runs import read_jsonl


@pytest.fixture(scope="module")
def own_set(tmp_path_factory):
    from toolace_mt.envs import all_envs

    out = tmp_path_factory.mktemp("own")
    doms = sorted(all_envs())
    man = build_task_set(out, per_category=4, seed=3, heldout_domains=doms[-1:])
    return out, man


def _cfg(path, kind, policy=None, **kw):
    return parse_recipe({"suite": "bfcl", "source": "own", "tasks": str(path), "policy": {"kind": kind, **(policy or {})},
                         "progress": False, **kw})


def test_builder_layout_and_manifest(own_set):
    out, man = own_set
    tasks = read_jsonl(out / "tasks.jsonl")
    assert man["n_tasks"] == len(tasks) and man["heldout_domains"]
    for c in ("base", "miss_param", "miss_func"):
        assert man["counts"][c] == 4
    for t in tasks:
        assert len(t["question"]) == len(t["ground_truth"]) and any(t["ground_truth"])
        assert t["heldout"] == bool(set(man["heldout_domains"]) & set(t["involved_classes"]))
        if t["category"] in ("miss_param", "miss_func"):
            assert [] in t["ground_truth"]
        if t["category"] == "miss_func":
            (k, names), = t["missed_function"].items()
            assert t["question"][int(k)] == [] and t["ground_truth"][int(k)]
            earlier = [s for turn in t["ground_truth"][:int(k)] for s in turn]
            assert not any(s.startswith(names[0] + "(") for s in earlier)
    if man["counts"].get("long_context", 0) == 0:
        assert any(s["category"] == "long_context" for s in man["skipped"])  # says why


def test_builder_is_deterministic(own_set, tmp_path):
    out, man = own_set
    again = build_task_set(tmp_path / "a", per_category=4, seed=3, heldout_domains=man["heldout_domains"])
    other = build_task_set(tmp_path / "b", per_category=4, seed=4)
    assert again["sha256"] == man["sha256"] and other["sha256"] != man["sha256"]


def test_oracle_100_null_0(own_set, tmp_path):
    out, man = own_set
    s = run_evaluation(_cfg(out, "oracle"), tmp_path / "o")
    cats = [c for c in CATEGORIES if man["counts"].get(c)]
    assert s["categories"] == {c: 1.0 for c in cats}, s["errors"]
    s = run_evaluation(_cfg(out, "null"), tmp_path / "n")
    assert s["categories"] == {c: 0.0 for c in cats}  # every own task has a turn that needs a call
    assert s["task_set_version"].startswith("own:own-bfcl-v1")


def test_own_miss_func_tools_hidden_until_their_turn(own_set):
    from toolace_mt.evaluation.bfcl.harness import play
    from toolace_mt.evaluation.policy import PolicyOutput

    out, _ = own_set
    task = next(t for t in read_jsonl(out / "tasks.jsonl") if t["category"] == "miss_func")
    (k, names), = task["missed_function"].items()
    seen = []

    class Rec:
        name = "rec"

        def act(self, batch):
            seen.extend(batch)
            return [PolicyOutput(content="?") for _ in batch]

    play(Rec(), [task], progress=False)
    for t, inp in enumerate(seen):
        assert (names[0] in {x["function"]["name"] for x in inp.tools}) == (t >= int(k))
    assert seen[int(k)].messages[-1]["content"] == HELDOUT_USER_MESSAGE


def test_recipe_builds_on_first_use_via_cli(tmp_path, capsys):
    from toolace_mt.app.cli import main

    tasks = tmp_path / "ts"
    rc = main(["evaluate", "recipes/evaluate/bfcl_own_oracle.yaml", "--out", str(tmp_path / "run"),
               "--set", f"tasks={tasks}", "--set", "options.build={per_category: 2, seed: 1}", "--set", "progress=false"])
    assert rc == 0 and (tasks / "manifest.json").exists()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["overall"] == 1.0
    assert main(["rescore", str(tmp_path / "run")]) == 0


@pytest.mark.slow
def test_transformers_policy_end_to_end(own_set, tiny_model_dir, tmp_path):
    out, _ = own_set
    cfg = _cfg(out, "transformers", limit=1,
               policy={"model": str(tiny_model_dir), "max_new_tokens": 12, "batch_size": 4})
    s = run_evaluation(cfg, tmp_path / "t")
    assert s["n_scored"] == s["n_expected"] > 0
    assert all(0.0 <= v <= 1.0 for v in s["categories"].values())
    trajs = read_jsonl(tmp_path / "t" / "trajectories.jsonl")
    steps = [st for tr in trajs for turn in tr["turns"] for st in turn]
    assert steps and all(isinstance(st["raw"], str) for st in steps)
    assert sum(tr["completion_tokens"] for tr in trajs) > 0


def test_strict_flag_requires_abstention_on_clarification_turns(own_set):
    from toolace_mt.evaluation.bfcl.checker import check_entry, decode_turns
    from toolace_mt.evaluation.bfcl.harness import play
    from toolace_mt.evaluation.policies import make_policy

    out, _ = own_set
    task = next(t for t in read_jsonl(out / "tasks.jsonl") if t["category"] == "miss_param")
    (tr,) = play(make_policy({"kind": "oracle"}), [task], progress=False)
    k = task["ground_truth"].index([])
    tr["turns"][k].insert(0, {"content": None, "tool_calls": [{"name": "no_such_tool", "arguments": {}}]})
    assert check_entry(task, decode_turns(tr["turns"]))["valid"]  # official: [] turns are not checked
    v = check_entry(task, decode_turns(tr["turns"]), strict=True)
    assert not v["valid"] and v["error_type"] == "irrelevance"


def test_malformed_policy_calls_are_recorded_not_crashes(own_set):
    from toolace_mt.evaluation.bfcl.harness import play
    from toolace_mt.evaluation.bfcl.suite import BFCLSuite
    from toolace_mt.evaluation.policy import PolicyOutput

    out, _ = own_set
    task = read_jsonl(out / "tasks.jsonl")[0]
    bad = [{"name": None, "arguments": {}}, {"name": "x", "arguments": [1]}, {"name": "__import__", "arguments": {}}]

    class Bad:
        name = "bad"
        n = 0

        def act(self, batch):
            self.n += 1
            return [PolicyOutput(tool_calls=bad if self.n == 1 else []) for _ in batch]

    (tr,) = play(Bad(), [task], progress=False)
    results = tr["turns"][0][0]["results"]
    assert len(results) == 3 and all("Error" in r or "error" in r for r in results)
    assert not BFCLSuite().score(task, tr)["correct"]


# --- dependent second steps (chain_prob) ------------------------------------------------------------------------
TIER = dict(per_category=6, seed=0, domains=["banking", "messaging", "trading"], max_domains=1, turns=[2, 3],
            id_style="short")


@pytest.fixture(scope="module")
def chain_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("chain")
    return out, build_task_set(out, chain_prob=0.5, **TIER)


def test_default_build_is_the_set_built_before_chain_prob_existed(tmp_path):
    # the quickstart's committed task set (results/quickstart/summary.json: own-bfcl-v1:sha256=4e27ea4d9774)
    man = build_task_set(tmp_path, **{**TIER, "per_category": 10})
    assert man["sha256"].startswith("4e27ea4d9774") and "chain_prob" not in man
    assert not any("gt_steps" in t for t in read_jsonl(tmp_path / "tasks.jsonl"))


def test_chained_turns_need_the_first_result(chain_set):
    from toolace_mt.pycalls import parse_python_calls

    out, man = chain_set
    assert man["chain_prob"] == 0.5
    tasks = read_jsonl(out / "tasks.jsonl")
    chained = [(t, int(k)) for t in tasks for k in t.get("gt_steps", {})]
    assert len(chained) >= 10
    for t, k in chained:
        assert t["gt_steps"][str(k)] == [1, 1] and len(t["ground_truth"][k]) == 2
        text = t["question"][k][0]["content"]
        second = parse_python_calls(t["ground_truth"][k][1])[0]
        assert "from that result" in text
        # the value the second call needs is named only by reference: it is not in the user's words
        referred = [v for v in second["arguments"].values() if isinstance(v, str) and v not in text]
        assert referred, (text, second)
        # the dependent request names the action and then its values, the reference among them, never inside a
        # phrase template ("Did order the order id from that result go through?", flagged in a live run)
        dep = text.split(" Then: ", 1)[1]
        assert re.fullmatch(r"Please [a-z][^()]* \((?:[^()]+, )?the [a-z ]+ from that result\)\.", dep), dep
        for k2, v in second["arguments"].items():
            if v not in referred:
                assert f"{k2.replace('_', ' ')} {v}" in dep, (dep, k2)


def test_chained_turns_oracle_and_gold_play_in_two_steps(chain_set, tmp_path):
    from toolace_mt.evaluation.bfcl.gold import gold_dialogue

    out, _ = chain_set
    s = run_evaluation(_cfg(out, "oracle"), tmp_path / "o")
    assert s["overall"] == 1.0
    assert run_evaluation(_cfg(out, "null"), tmp_path / "n")["overall"] == 0.0
    task = next(t for t in read_jsonl(out / "tasks.jsonl") if t.get("gt_steps"))
    msgs = gold_dialogue(task).messages
    k = int(next(iter(task["gt_steps"])))
    user_turns = [i for i, m in enumerate(msgs) if m.role == "user"]
    start = user_turns[k]
    end = user_turns[k + 1] if k + 1 < len(user_turns) else len(msgs)
    calls = [m for m in msgs[start:end] if m.role == "assistant" and m.tool_calls]
    assert [len(m.tool_calls) for m in calls] == [1, 1]  # the second call after the first one's result
    value = [v for v in calls[1].tool_calls[0].function.arguments.values() if isinstance(v, str)]
    first_result = next(m.content for m in msgs[start:end] if m.role == "tool")
    assert any(v in first_result for v in value)


@pytest.mark.parametrize("bad", [-0.1, 1.5, "half", True])
def test_chain_prob_out_of_range_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="chain_prob"):
        build_task_set(tmp_path, chain_prob=bad, **TIER)


def test_chain_prob_out_of_range_fails_validation_in_one_line(tmp_path, capsys):
    from toolace_mt.app.cli import main

    from pathlib import Path

    recipe = Path(__file__).resolve().parents[2] / "recipes/evaluate/bfcl_own_oracle.yaml"
    rc = main(["validate", str(recipe), "--set", f"tasks={tmp_path}",
               "--set", "options={build: {chain_prob: 2}}"])
    assert rc == 2 and "chain_prob must be a number in [0, 1]" in capsys.readouterr().out


def test_teacher_forced_splits_the_steps_of_chained_turns(chain_set, tiny_model_dir):
    from toolace_mt.app.reproduce import tf_totals
    from toolace_mt.app.report import _first_miss_markdown
    from toolace_mt.evaluation.bfcl.teacher_forced import score_tasks

    out, _ = chain_set
    tasks = [t for t in read_jsonl(out / "tasks.jsonl") if t["category"] == "base"][:4]
    tasks += [t for t in read_jsonl(out / "tasks.jsonl") if t["category"] == "base" and not t.get("gt_steps")][:1]
    rows = score_tasks(str(tiny_model_dir), tasks)
    for task, r in zip(tasks, rows):
        n = len(task.get("gt_steps") or {})
        if not n:
            assert "chain_dependent" not in r  # a task without dependent steps has no such counts
            continue
        # one first step and one dependent step per chained turn, each a call message of the gold dialogue
        assert r["skipped"] == 0 and r["chain_first"][1] == r["chain_dependent"][1] == n
        assert 0 <= r["chain_dependent"][0] <= r["chain_dependent_opened"] <= n and r["calls"] >= 2 * n
    t = tf_totals(rows)
    n_all = sum(len(x.get("gt_steps") or {}) for x in tasks)
    assert n_all and t["chain_dependent"][1] == n_all == t["chain_first"][1]
    md = "\n".join(_first_miss_markdown({"bfcl_own": {"base": {**t, "first_miss": t["first_miss"] or {"name": 1}}}}))
    assert f"and {t['chain_dependent'][0]}/{n_all}, a call opened at {t['chain_dependent_opened']}/{n_all}" in md


class _Chars:
    """A chat 'tokenizer' whose ids are the characters of a plain rendering (enough for teacher-forced scoring)."""

    def apply_chat_template(self, messages, tools=None, tokenize=True, return_dict=True, add_generation_prompt=False):
        text = "".join(f"<{m['role']}>" + (m.get("content") or json.dumps(m.get("tool_calls") or [], sort_keys=True))
                       for m in messages) + ("<assistant>" if add_generation_prompt else "")
        return {"input_ids": [min(ord(c), 511) for c in text]}

    def decode(self, ids):
        return "".join(chr(i) for i in ids)


class _Fixed:
    """Greedy predictions of a fixed kind: `perfect` predicts the next input token, otherwise always a space
    (a model that never opens a call: its first wrong token is the message's first)."""

    config = type("C", (), {"max_position_embeddings": 10 ** 6})()

    def __init__(self, perfect):
        self.perfect = perfect

    def eval(self):
        return self

    def __call__(self, input_ids):
        import torch

        ids = input_ids[0].tolist()
        nxt = ids[1:] + [0] if self.perfect else [ord(" ")] * len(ids)
        logits = torch.zeros(1, len(ids), 512)
        logits[0, torch.arange(len(ids)), torch.tensor(nxt)] = 1.0
        return type("Out", (), {"logits": logits})()


@pytest.mark.parametrize("perfect", [True, False])
def test_dependent_steps_opened_and_exact_are_counted_per_step(chain_set, monkeypatch, perfect):
    import transformers

    from toolace_mt.evaluation.bfcl.teacher_forced import score_tasks

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: _Chars())
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: _Fixed(perfect))
    out, _ = chain_set
    tasks = [t for t in read_jsonl(out / "tasks.jsonl") if t.get("gt_steps")][:3]
    for task, r in zip(tasks, score_tasks("unused", tasks)):
        n = len(task["gt_steps"])
        expect = n if perfect else 0  # a perfect model opens and gets every dependent step; a silent one none
        assert r["chain_first"] == [expect, n] and r["chain_dependent"] == [expect, n]
        assert r["chain_dependent_opened"] == expect
        assert r["exact"] == (r["calls"] if perfect else 0)
        if not perfect:
            assert r["first_miss"] == {"call_start": r["calls"]}
