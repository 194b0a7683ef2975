"""A dialogue that ends before its plan is served is rejected, whichever method built it (issue 24 item 6).

MAS dialogues grow turn by turn; a user agent that says it is done early (or a malformed turn that ends the
loop) leaves subtasks of the shared goal unserved. The `plan` check names the first subtask none of whose tools
was called."""
from __future__ import annotations

import copy

from toolace_mt.generation import mas, pipeline
from toolace_mt.generation.config import GenerateConfig
from toolace_mt.generation.verify.rules import verify_rules


def _dialogues(method: str):
    cfg = GenerateConfig(method=method, engine="rules", seed=5, progress=False, domains=["banking", "messaging"])
    if method == "mas":
        return mas.run_batch(cfg, list(range(16)))
    return pipeline.run_batch(cfg, list(range(16)))


def _cut_after_first_reply(d: dict) -> dict:
    """The dialogue as it would be had the user said done after the assistant's first text reply."""
    msgs = d["messages"]
    first_tool = next(i for i, m in enumerate(msgs) if m["role"] == "tool")
    end = next(i for i in range(first_tool, len(msgs)) if msgs[i]["role"] == "assistant" and msgs[i].get("content")
               and not msgs[i].get("tool_calls"))
    out = copy.deepcopy(d)
    out["messages"] = msgs[:end + 1]
    out["meta"]["turns"] = out["meta"]["turns"][:end + 1]
    out["meta"].pop("final_state_hash", None)
    return out


def test_cut_short_dialogue_is_rejected_and_the_whole_one_is_not():
    seen = 0
    for d in _dialogues("mas"):
        plan = d["meta"]["plan"]
        if d["meta"].get("failure") or len(plan["subtasks"]) < 2:
            continue
        checks, reasons = verify_rules(d)
        assert not any("never served" in r for r in reasons), reasons
        cut = _cut_after_first_reply(d)
        later = [{c["tool"] for st in s["steps"] for c in st} for s in plan["subtasks"][1:]]
        called = {tc["function"]["name"] for m in cut["messages"] for tc in m.get("tool_calls") or []}
        if all(t & called for t in later):
            continue  # the first exchange happened to call a tool of every later subtask too
        checks, reasons = verify_rules(cut)
        assert checks["plan"] is False and any("was never served" in r for r in reasons), reasons
        seen += 1
    assert seen >= 3, seen


def test_toolace_mt_dialogues_serve_every_subtask():
    for d in _dialogues("toolace_mt"):
        _, reasons = verify_rules(d)
        assert not any("never served" in r for r in reasons), reasons
