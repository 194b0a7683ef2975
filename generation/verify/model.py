"""Stage 3 model-based specialists (paper §2.3): each judges ONE sub-question of a dialogue.

Specialists (chosen, extending ToolACE's checkers to multi-turn; the paper does not list them): argument
grounding, cross-turn consistency, task completion, naturalness. All requests of a batch (dialogues x
specialists) go out in one batched call; an unusable answer is a failed check with its typed reason.
"""
from __future__ import annotations


from .. import context, llm_io
from ..dialogue import WorkDialogue, reads_dialogue
from ..llm_io import show_dialogue

DIGEST_OUTPUT_CHARS = 160  # chosen: an error or a status fits; task completion needs no listing in full


@reads_dialogue
def view(d: WorkDialogue, name: str) -> str:
    """What specialist `name` is shown of dialogue d.

    chosen: argument grounding and cross-turn consistency judge relations between ANY two turns (a value used in
    the last call may come from the first output; a reply must match its outputs), so they get the whole
    dialogue. Task completion reads the requests, the calls and the replies: it gets every turn with tool
    outputs clipped to `DIGEST_OUTPUT_CHARS` (errors and statuses survive). Naturalness reads only how the
    user and assistant speak: it gets their texts, calls by name, no tool outputs. Plan fidelity judges whether
    the calls do what the tasks say (which ids, which values): it gets every call in full, no tool outputs."""
    if name in ("argument_grounding", "cross_turn_consistency"):
        return show_dialogue(d.messages)
    if name == "task_completion":
        return context.digest(d, DIGEST_OUTPUT_CHARS, calls="full")
    if name == "plan_fidelity":
        return context.digest(d, None, calls="full")
    return context.digest(d, None, calls="name")


def _tasks(d: WorkDialogue, name: str | None = None) -> list[str]:
    """The user's task descriptions (the plan's), shown where plan fidelity is judged."""
    if name not in (None, "plan_fidelity"):
        return []
    return [s.description or "" for s in d.plan.subtasks] if d.plan is not None else []


def _tool_names(d: WorkDialogue) -> list[str]:
    return sorted({t["function"]["name"] for t in d.tools} | d.held_tools())


def run_specialists(ds: list[WorkDialogue], names: list[str], client, llm_cfg=None,
                    batched: bool = True) -> dict[int, dict[str, tuple[bool, str]]]:
    """Dialogue position -> specialist -> (passed, reason).

    chosen: `batched` asks all specialists of a dialogue in ONE request over the whole transcript (the largest
    view any of them needs), instead of one request per specialist: the questions stay separate verdicts, the
    transcript is sent once. Both generation methods are verified the same way."""
    if batched and len(names) > 1:
        return _run_batched(ds, names, client, llm_cfg)
    items, who = [], []
    for k, d in enumerate(ds):
        for name in names:
            payload = {"specialist": name, "dialogue_id": d.id, "verification": "model"}
            req = llm_io.request("verify.jinja", "verify", payload, llm_io.VERDICT_SCHEMA, llm_cfg, specialist=name,
                                 tool_names=_tool_names(d), dialogue=view(d, name), tasks=_tasks(d, name))
            items.append((d, req))
            who.append((k, name))
    out: dict[int, dict[str, tuple[bool, str]]] = {}
    for (k, name), (val, err) in zip(who, llm_io.ask(client, items, "verify")):
        if err is not None:
            out.setdefault(k, {})[name] = (False, f"verifier answer unusable [{err['kind']}]: {err['message'][:160]}")
        else:
            out.setdefault(k, {})[name] = (bool(val["pass"]), str(val["reason"])[:300])
    return out


def _run_batched(ds, names, client, llm_cfg) -> dict[int, dict[str, tuple[bool, str]]]:
    schema = {"type": "object", "required": ["verdicts"], "additionalProperties": False, "properties": {
        "verdicts": {"type": "array", "items": {
            "type": "object", "required": ["specialist", "pass", "reason"], "additionalProperties": False,
            "properties": {"specialist": {"type": "string"}, "pass": {"type": "boolean"}, "reason": {"type": "string"}}}}}}
    items = []
    for d in ds:
        payload = {"specialists": list(names), "dialogue_id": d.id, "verification": "model"}
        items.append((d, llm_io.request("verify_all.jinja", "verify", payload, schema, llm_cfg, specialists=list(names),
                                        tool_names=_tool_names(d), dialogue=show_dialogue(d.messages),
                                        tasks=_tasks(d) if "plan_fidelity" in names else [])))
    out: dict[int, dict[str, tuple[bool, str]]] = {}
    for k, (val, err) in enumerate(llm_io.ask(client, items, "verify")):
        res = out.setdefault(k, {})
        if err is not None:
            for name in names:
                res[name] = (False, f"verifier answer unusable [{err['kind']}]: {err['message'][:160]}")
            continue
        got = {v["specialist"]: v for v in val["verdicts"] if v.get("specialist") in names}
        for name in names:
            v = got.get(name)
            res[name] = (bool(v["pass"]), str(v["reason"])[:300]) if v else (False, "the verifier gave no verdict")
    return out
