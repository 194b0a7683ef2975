"""Paired bootstrap intervals (toolace_mt.app.uncertainty) and the data-level comparison (toolace_mt.app.datacompare)."""
from __future__ import annotations

import json


def test_paired_bootstrap_intervals_and_differences():
    from toolace_mt.app.uncertainty import paired_bootstrap

    cats = ["a"] * 20 + ["b"] * 20
    strong = [1.0] * 18 + [0.0] * 2 + [1.0] * 16 + [0.0] * 4
    weak = [0.0] * 18 + [1.0] * 2 + [0.0] * 16 + [1.0] * 4
    r = paired_bootstrap({"weak": weak, "strong": strong}, cats, n_boot=400, seed=1)
    s, w = r["arms"]["strong"], r["arms"]["weak"]
    assert abs(s["value"] - 0.85) < 1e-9 and abs(w["value"] - 0.15) < 1e-9  # mean of category means
    assert s["ci95"][0] <= s["value"] <= s["ci95"][1] and s["ci95"][1] - s["ci95"][0] > 0
    d = r["diffs"]["strong-weak"]
    assert d["excludes_0"] and d["ci95"][0] > 0
    same = paired_bootstrap({"x": strong, "y": list(strong)}, cats, n_boot=200)
    assert same["diffs"]["y-x"]["ci95"] == [0.0, 0.0] and not same["diffs"]["y-x"]["excludes_0"]
    assert r == paired_bootstrap({"weak": weak, "strong": strong}, cats, n_boot=400, seed=1)  # deterministic
    # weighted (ratio of sums) with tasks that do not count (None)
    wr = paired_bootstrap({"m": [1.0, 0.0, None]}, weights={"m": [3, 1, 0]}, n_boot=50)
    assert abs(wr["arms"]["m"]["value"] - 0.75) < 1e-9


def _dlg(i, messages, updates=None):
    from toolace_mt.schema import Dialogue

    return Dialogue.model_validate({"id": f"d{i}", "tools": [], "messages": messages,
                                    "meta": {"tool_updates": updates or []}})


def _call(cid, name, **args):
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": cid, "type": "function", "function": {"name": name, "arguments": args}}]}


def test_behaviours_are_read_from_the_messages():
    from toolace_mt.app.datacompare import behaviours, compare_dialogues

    clar = _dlg(0, [{"role": "user", "content": "Send money please."},
                    {"role": "assistant", "content": "To which account?"},
                    {"role": "user", "content": "To ACC12, thanks."},
                    _call("c1", "send", to="ACC12"),
                    {"role": "tool", "tool_call_id": "c1", "name": "send", "content": json.dumps({"error": "x"})},
                    _call("c2", "send", to="ACC12"),
                    {"role": "tool", "tool_call_id": "c2", "name": "send", "content": "{\"ok\": true}"},
                    {"role": "assistant", "content": "Done."}])
    b = behaviours(clar)
    assert b == {"tool_update": False, "recovered_error": True, "clarification": True, "non_function_call": True,
                 "long_context": False}
    plain = _dlg(1, [{"role": "user", "content": "List ACC12."}, _call("c1", "get", id="ACC12"),
                     {"role": "tool", "tool_call_id": "c1", "name": "get", "content": "x" * 2000},
                     {"role": "assistant", "content": "Here."}], updates=[{"at": 1, "tools": []}])
    b = behaviours(plain)
    assert b["long_context"] and b["tool_update"] and not b["clarification"] and not b["non_function_call"]
    r = compare_dialogues([clar, plain])
    assert r["coverage"]["clarification"] == 0.5 and r["coverage_counts"]["long_context"] == 1
    assert r["diversity"]["distinct_tool_sequences"] == 2 and r["diversity"]["tool_sequence_entropy_bits"] == 1.0
