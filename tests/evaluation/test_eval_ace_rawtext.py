"""compat_acebench scores the model's raw answer text as the official ACEBench scorer does (its documented
behaviour, measured with a ground-truth oracle): bracket extraction in single-turn categories, all whitespace
deleted in the multi-turn ones, fences and prose; the corrected score reads our parse and stays beside it; the
ACEBench export sends the raw text. Expected verdicts are derived per variant from those rules, item by item."""
from __future__ import annotations

import json
import random

import pytest

from acebench_data import DATA, HAVE, SKIP_REASON
from toolace_mt.evaluation.ace.own_tasks import build_normal_special
from toolace_mt.evaluation.ace.suite import AceSuite, item_gold, raw_answer
from toolace_mt.evaluation.policies.prompting import text_to_output
from toolace_mt.pycalls import format_python_calls

VARIANTS = {
    # name: (text from the plain call list, passes in single-turn iff plain passes, same in multi-turn)
    "plain": (lambda p: p, True, True),
    "fence_python": (lambda p: f"```python\n{p}\n```", True, False),
    "fence_plain": (lambda p: f"```\n{p}\n```", True, False),
    "prose": (lambda p: f"Sure, here are the calls: {p} Let me know if you need more.", True, False),
    "spaced": (lambda p: "[\n  " + p[1:-1].replace(", ", " ,  ") + "\n]", True, True),
}


def _traj(task, text):
    out = text_to_output(text, "auto")
    return {"task_id": task["id"], "category": task["category"], "trial": 0, "content": out.content,
            "tool_calls": out.tool_calls, "raw": text}


def _check(tasks):
    suite = AceSuite()
    n = 0
    for task in tasks:
        if not task["category"].startswith("normal"):
            continue
        plain = format_python_calls(item_gold(task)["tool_calls"])
        base = suite.score(task, _traj(task, plain))["compat_correct"]
        multi = "multi_turn" in task["category"]
        for name, (make, single_keeps, multi_keeps) in VARIANTS.items():
            s = suite.score(task, _traj(task, make(plain)))
            want = base and (multi_keeps if multi else single_keeps)
            assert s["compat_correct"] == want, (task["id"], name, s["compat_reasons"])
            if name in ("plain", "fence_python", "fence_plain"):
                assert s["correct"], (task["id"], name, s["reasons"])  # the corrected score reads our parse
            n += 1
    return n


def test_raw_text_variants_on_own_items():
    assert _check(build_normal_special()) > 0


@pytest.mark.skipif(not HAVE, reason=SKIP_REASON)
def test_raw_text_variants_on_official_items():
    from toolace_mt.evaluation.ace.official import NORMAL, load_official

    assert _check(load_official(DATA, NORMAL)) == 5 * 823


def test_special_answers_are_searched_in_the_raw_text():
    suite = AceSuite()
    task = next(t for t in build_normal_special() if t["category"] == "special_irrelevant")
    text = "```\nDue to the limitations of the function, I cannot solve this problem.\n```"
    s = suite.score(task, _traj(task, text))
    assert s["compat_correct"] and s["correct"]


def test_structured_calls_are_written_as_acebench_fc_text_and_exported_raw(tmp_path):
    from toolace_mt.evaluation.ace.suite import export_official_results

    calls = [{"name": "f", "arguments": {"a": 1}}]
    assert raw_answer({"tool_calls": calls, "raw": ""}) == "[f(a=1)]"
    assert raw_answer({"tool_calls": calls, "raw": "```python\n[f(a=1)]\n```"}) == "```python\n[f(a=1)]\n```"
    run = tmp_path / "run"
    run.mkdir()
    tr = {"task_id": "normal_atom_bool_3", "category": "normal_atom_bool", "trial": 0, "tool_calls": calls,
          "raw": "Sure: [f(a=1)]", "content": "Sure:"}
    (run / "trajectories.jsonl").write_text(json.dumps(tr) + "\n")
    (p,) = export_official_results(run, tmp_path / "exp", model="m")
    assert json.loads(p.read_text()) == {"id": "normal_atom_bool_3", "result": "Sure: [f(a=1)]"}


@pytest.mark.skipif(not HAVE, reason=SKIP_REASON)
def test_fenced_multi_turn_answers_fail_compat_but_not_the_corrected_score():
    """A format fixture: half of the official multi-turn answers fenced (seeded)."""
    from toolace_mt.evaluation.ace.official import load_official

    cats = ["normal_multi_turn_user_adjust", "normal_multi_turn_user_switch"]
    tasks = load_official(DATA, cats)
    rng = random.Random(0)
    suite = AceSuite()
    scores, conv_ok = [], {}
    for t in tasks:
        plain = format_python_calls(item_gold(t)["tool_calls"])
        fenced = rng.random() < 0.5
        text = f"```python\n{plain}\n```" if fenced else plain
        scores.append(suite.score(t, _traj(t, text)))
        ok = suite.score(t, _traj(t, plain))["compat_correct"] and not fenced
        conv_ok.setdefault((t["category"], t["conversation"]), []).append(ok)
    compat = suite.aggregate(scores, key="compat_correct")["categories"]
    corrected = suite.aggregate(scores)["categories"]
    assert all(corrected[c] == 1.0 for c in cats)
    for c in cats:  # a conversation passes officially iff every item passes and none is fenced
        convs = [all(v) for (cat, _), v in conv_ok.items() if cat == c]
        assert compat[c] == pytest.approx(sum(convs) / len(convs))
    assert compat["normal_multi_turn_user_adjust"] < 0.76 and compat["normal_multi_turn_user_switch"] < 0.74
