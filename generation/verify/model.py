"""Stage 3 model-based specialists (paper §2.3): each judges ONE sub-question of a dialogue.

Specialists (chosen, extending ToolACE's checkers to multi-turn; the paper does not list them): argument
grounding, cross-turn consistency, task completion, naturalness. All requests of a batch (dialogues x
specialists) go out in one batched call; an unusable answer is a failed check with its typed reason.
"""
from __future__ import annotations

from typing import Any

from .. import llm_io
from ..llm_io import show_dialogue


def run_specialists(ds: list[dict[str, Any]], names: list[str], client, llm_cfg=None) -> dict[int, dict[str, tuple[bool, str]]]:
    """Dialogue position -> specialist -> (passed, reason)."""
    items, who = [], []
    for k, d in enumerate(ds):
        for name in names:
            # rules_answer: only rule-passing dialogues reach the specialists, so the rules engine says pass
            payload = {"specialist": name, "dialogue_id": d.get("id"), "verification": "model",
                       "rules_answer": {"pass": True, "reason": "rules engine: every rule check passed"}}
            req = llm_io.request("verify.jinja", "verify", payload, llm_io.VERDICT_SCHEMA, llm_cfg, specialist=name,
                                 tool_names=sorted({t["function"]["name"] for t in d["tools"]}
                                                   | {t["function"]["name"] for u in d["meta"].get("tool_updates") or []
                                                      for t in u["tools"]}),
                                 dialogue=show_dialogue(d["messages"]))
            items.append((d, req))
            who.append((k, name))
    out: dict[int, dict[str, tuple[bool, str]]] = {}
    for (k, name), (val, err) in zip(who, llm_io.ask(client, items, "verify")):
        if err is not None:
            out.setdefault(k, {})[name] = (False, f"verifier answer unusable [{err['kind']}]: {err['message'][:160]}")
        else:
            out.setdefault(k, {})[name] = (bool(val["pass"]), str(val["reason"])[:300])
    return out
