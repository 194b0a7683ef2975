"""Stage 2b, reasonability refinement by mask-and-fill (paper §2.2(b)), and the stage-2 schedule.

A pass masks several non-adjacent text turns (user requests, assistant replies), refills them, and a judge
keeps the new or the old version. Selection: every turn starts with weight 1; a chosen turn's weight is
multiplied by `decay` (chosen, the paper says only that it drops); a turn whose edit was ACCEPTED enters the
edit log and is never edited again (as are injected turns). `rules`: refills are other realisations from
phrases/templates, the judge is the rule verifier's score. `llm`: one batched refill request and one batched
judge request per pass, each showing only the masked turns' bounded local context and their subtasks' plan
(`context.py`), so a pass costs the same at any dialogue length. Schedule (chosen; the paper says the two operations alternate): injection 1, pass 1,
injection 2, pass 2, ..., then the remaining passes; a pass with no selectable turn ends refinement early.
"""
from __future__ import annotations

import copy
import json
import random
from typing import Any, Optional

from toolace_mt.envs import get_env

from . import context, inject, llm_io, text
from .dialogue import RefinementStep, WorkDialogue
from .plan import derive_seed
from .work import call_outputs

EDITABLE = ("query", "reply")


def select(d: WorkDialogue, rng: random.Random, k: int, decay: float) -> list[int]:
    """Up to k non-adjacent editable message indices, drawn by weight; chosen weights decay."""
    ref = d.refinement
    log = d.edit_log
    if ref.weights is None:
        ref.weights = {}
    w = ref.weights
    cands = [i for i, tg in enumerate(d.turns) if tg.kind in EDITABLE and tg.uid not in log]
    chosen: list[int] = []
    while cands and len(chosen) < k:
        weights = [float(w.get(str(d.turns[i].uid), 1.0)) for i in cands]
        if sum(weights) <= 0:
            break
        i = rng.choices(cands, weights=weights)[0]
        chosen.append(i)
        cands = [c for c in cands if abs(c - i) > 1]  # non-adjacent
    for i in chosen:
        u = str(d.turns[i].uid)
        w[u] = float(w.get(u, 1.0)) * decay
    return sorted(chosen)


def _results(d: WorkDialogue, t: int) -> list[tuple[str, Any]]:
    out = []
    for m, tg in zip(d.messages, d.turns):
        if m["role"] == "tool" and tg.subtask == t and tg.kind in ("output", "corrected_output"):
            try:
                out.append((m["name"], json.loads(m["content"])))
            except (json.JSONDecodeError, TypeError):
                out.append((m["name"], m["content"]))
    return out


def refill_rules(d: WorkDialogue, idx: list[int], rng: random.Random) -> dict[int, str]:
    plan = d.plan
    cls = get_env(plan.domain)
    fills = {}
    for i in idx:
        tg = d.turns[i]
        if tg.kind == "query" and tg.subtask < len(plan.subtasks):
            fills[i] = text.render_query(cls, plan.subtasks[tg.subtask].steps, rng, outputs=call_outputs(d, tg.subtask))
        elif tg.kind == "reply":
            fills[i] = text.render_reply(cls, _results(d, tg.subtask), rng)
    return fills


def score(d: WorkDialogue) -> int:
    """The rules judge: minus the number of rule-verifier problems a text refill can change (grounding of
    every argument value, injected complexities still present). Format and schema checks cannot change when
    only the text of user/assistant turns does, so the judge skips them (they dominate its cost)."""
    from .verify.rules import grounding_problems, injection_problems

    return -len(grounding_problems(d)) - len(injection_problems(d))


def _with(d: WorkDialogue, fills: dict[int, str]) -> WorkDialogue:
    """The dialogue with the refilled texts, for the rules judge (`d` itself is not changed)."""
    new = copy.copy(d)  # shallow: only the message list and the refilled messages are new (the judge only reads)
    msgs = list(d.messages)
    for i, txt in fills.items():
        msgs[i] = dict(d.messages[i], content=txt)
    object.__setattr__(new, "messages", msgs)
    return new


def _accept(d: WorkDialogue, fills: dict[int, str], keep_new: bool, judge: str, reason: str, step: int) -> None:
    uids = [d.turns[i].uid for i in sorted(fills)]
    if keep_new:
        for i, txt in fills.items():
            d.messages[i]["content"] = txt
        d.refinement.edit_log.extend(uids)
    d.refinement.steps.append(RefinementStep(step, uids, keep_new, judge, reason[:200]))


def refill_request(d: WorkDialogue, idx: list[int], llm_cfg=None):
    """The refill request for masks `idx` of dialogue d.

    chosen: Mask-Predict at the turn level -- the prompt shows each masked turn's bounded local context (the
    request, calls and outputs it depends on, its neighbours) and the plan of its subtasks, not the whole
    transcript, so its size does not grow with the number of subtasks. The payload is bookkeeping for logs."""
    masks = {i: f"<MASK {k}>" for k, i in enumerate(idx)}
    payload = {"masked": [{"mask": k, "index": i, "kind": d.turns[i].kind, "subtask": d.turns[i].subtask,
                           "original": d.messages[i]["content"]} for k, i in enumerate(idx)]}
    return llm_io.request("refill.jinja", "refine", payload, llm_io.FILLS_SCHEMA, llm_cfg,
                          context=context.local_context(d, idx, masks), summary=context.task_summary(d, idx),
                          masks=list(range(len(idx))), originals=[d.messages[i]["content"] for i in idx])


def run_pass(ds: list[WorkDialogue], active: list[bool], rngs: list[random.Random], cfg, client=None) -> None:
    """One refinement pass over the dialogues flagged `active`."""
    work = []
    for d, on, rng in zip(ds, active, rngs):
        if not on or d.failure is not None:
            continue
        idx = select(d, rng, cfg.mask_turns, cfg.decay)
        step = len(d.refinement.steps) + 1
        if not idx:
            d.refinement.exhausted = True  # every turn refined: paper's other stop condition
            continue
        if cfg.engine == "rules":
            fills = refill_rules(d, idx, rng)
            if not fills:
                continue
            keep = score(_with(d, fills)) >= score(d)  # chosen: ties keep the new text (more variety)
            _accept(d, fills, keep, "rules", "rule score not worse" if keep else "rule score dropped", step)
        else:
            work.append((d, idx, step))
    if not work:
        return
    reqs = [(d, refill_request(d, idx, cfg.llm)) for d, idx, step in work]
    judged = []
    for (d, idx, step), (val, err) in zip(work, llm_io.ask(client, reqs, "refine")):
        if err is not None:
            d.fail("refine", err["kind"], err["message"])
            continue
        fills = {}
        for f in val["fills"]:
            if 0 <= f["mask"] < len(idx):
                fills[idx[f["mask"]]] = f["content"]
        if set(fills) != set(idx):
            d.fail("refine", "bad_fill", f"fills for masks {sorted(f['mask'] for f in val['fills'])}, expected "
                                          f"{list(range(len(idx)))}")
            continue
        if all((fills[i] or "").strip() == (d.messages[i].get("content") or "").strip() for i in fills):
            # chosen: a refill that changes nothing needs no judge (live runs: ~1 judge request in 4 compared two
            # identical versions)
            _accept(d, fills, False, "rules", "no change", step)
            continue
        old_s, new_s = score(d), score(_with(d, fills))
        if new_s < old_s:  # chosen: a refill that breaks a rule check is refused without spending a judge call
            _accept(d, fills, False, "rules", f"rule score dropped {old_s} -> {new_s}", step)
            continue
        judged.append((d, fills, step))
    jreqs = []
    for d, fills, step in judged:
        order = sorted(fills)
        payload = {"changed": order, "old": [d.messages[i]["content"] for i in order],
                   "new": [fills[i] for i in order]}
        # chosen: the judge compares old vs new versions of the masked turns in the same local context the
        # refill saw (the rest of the dialogue is identical in both versions, so it cannot decide anything)
        slots = {i: f"<CHANGED {k}>" for k, i in enumerate(order)}
        jreqs.append((d, llm_io.request("judge.jinja", "judge", payload, llm_io.JUDGE_SCHEMA, cfg.llm,
                                        changed=list(range(len(order))), old=payload["old"], new=payload["new"],
                                        context=context.local_context(d, order, slots),
                                        summary=context.task_summary(d, order))))
    for (d, fills, step), (val, err) in zip(judged, llm_io.ask(client, jreqs, "judge")):
        if err is not None:
            d.fail("judge", err["kind"], err["message"])
            continue
        _accept(d, fills, val["keep"] == "new", "llm", val["reason"], step)


def schedule(d: WorkDialogue, refinement_steps: int) -> list[tuple[str, Optional[str]]]:
    """The stage-2 operations of one dialogue, in order: ("inject", type) and ("refine", None)."""
    ops: list[tuple[str, Optional[str]]] = []
    inj = list(d.plan.injections)
    r = refinement_steps
    for it in inj:
        ops.append(("inject", it))
        if r > 0:
            ops.append(("refine", None))
            r -= 1
    ops += [("refine", None)] * r
    return ops


def run_stage2(ds: list[WorkDialogue], cfg, client=None) -> None:
    """Injections and refinement passes over a batch, one batched operation per round."""
    plans = [schedule(d, cfg.refinement_steps) for d in ds]
    rounds = max((len(p) for p in plans), default=0)
    for r in range(rounds):
        rngs = [random.Random(derive_seed(d.seed, "stage2", r)) for d in ds]
        ops = [p[r] if r < len(p) else (None, None) for p in plans]
        itypes = [it if op == "inject" else None for op, it in ops]
        if any(itypes):
            fallback = tuple(t for t in cfg.injection_types if cfg.injection_weights.get(t, 1.0) > 0)
            inject.run_round(ds, itypes, rngs, cfg.engine, client, cfg.llm, fallback)
        active = [op == "refine" and not d.refinement.exhausted for (op, _), d in zip(ops, ds)]
        if any(active):
            run_pass(ds, active, rngs, cfg, client)
