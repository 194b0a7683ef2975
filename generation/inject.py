"""Stage 2a, complexity injection by mask-and-extend (paper §2.2(a)): one observation becomes o', a', o''.

The types live in `injections/` (one module each, discovered through the `INJECTIONS` registry). This module is
the type-independent part: it asks a type to `find` a place (code, both engines; it fixes everything the
environment decides), gets the texts of the new turns (the type's templates for `rules`, one batched LLM request
for `llm`, whose payload is the spec) and lets the type `apply` them, recording the injection.
"""
from __future__ import annotations

import copy
import random
from typing import Any, Optional

from toolace_mt.envs import get_env

from . import context, llm_io
from .injections import INJECTIONS
from .pool import is_pool
from .dialogue import InjectionRecord, SkippedInjection, WorkDialogue


# ------------------------------------------------------------------------------------------------ find
def find(d: WorkDialogue, itype: str, rng: random.Random) -> Optional[dict]:
    """A spec for one injection of `itype`, or None when the dialogue offers no place for it."""
    return INJECTIONS.get(itype).find(d, rng)


# ------------------------------------------------------------------------------------------------ realise
def realise_rules(d: WorkDialogue, spec: dict, rng: random.Random) -> list[str]:
    """Template texts for the spec's new turns (in `spec["roles"]` order)."""
    cls = get_env(d.domain)
    i = d.index_of_uid(spec["uid"])
    orig = d.messages[i]["content"] if i is not None else ""
    return INJECTIONS.get(spec["type"]).realise(d, spec, rng, cls, orig)


def check_texts(spec: dict, texts: list[str]) -> Optional[str]:
    """Why LLM-written texts do not realise the spec (None = fine)."""
    if len(texts) != len(spec["roles"]) or any(not (t or "").strip() for t in texts):
        return f"expected {len(spec['roles'])} non-empty turns, got {len(texts)}"
    return INJECTIONS.get(spec["type"]).check_texts(spec, texts)


def request_llm(d: WorkDialogue, spec: dict, llm_cfg=None):
    i = d.index_of_uid(spec["uid"])
    payload = {k: v for k, v in spec.items() if not k.startswith("_")}
    payload["masked_index"] = i
    payload["original"] = d.messages[i]["content"] if i is not None else None
    schema = copy.deepcopy(llm_io.TURNS_SCHEMA)
    schema["properties"]["turns"].update(minItems=len(spec["roles"]), maxItems=len(spec["roles"]))
    # chosen: the new turns depend on the masked observation's local context (its request, the calls and outputs
    # of its subtask, its neighbours) and the plan of its subtask; the spec's instruction carries every value the
    # environment fixed (withheld argument, held-back tool, real error, listings), so the whole transcript adds
    # nothing the edit needs
    idx = [i] if i is not None else []
    return llm_io.request("inject.jinja", "inject", payload, schema, llm_cfg,
                          context=context.local_context(d, idx, {i: "X"} if i is not None else None),
                          summary=context.task_summary(d, idx), itype=spec["type"], original=payload["original"],
                          instruction=spec["instruction"], roles=spec["roles"], n_turns=len(spec["roles"]),
                          facts=facts(d, spec))


def facts(d: WorkDialogue, spec: dict) -> dict[str, Any]:
    """What the environment fixed for this injection, shown to the model as data (the instruction says it too)."""
    out = {k: spec[k] for k in ("tool", "param", "value", "good_value", "what") if k in spec}
    if "error" in spec:
        out["error_message"] = spec["error"].get("message")
    out["domain"] = d.domain
    out.update(INJECTIONS.get(spec["type"]).facts(d, spec))
    return out


# ------------------------------------------------------------------------------------------------ apply
def apply(d: WorkDialogue, spec: dict, texts: list[str]) -> None:
    """Splice the new turns in and record the injection (uids of its turns; positions are set at export)."""
    rec = InjectionRecord.from_spec(spec)
    new = INJECTIONS.get(spec["type"]).apply(d, spec, texts, rec)
    rec.uids = [tg.uid for tg in new]
    d.injections.append(rec)
    d.refinement.edit_log.extend(rec.uids)  # paper §2.2: the log stops a turn being edited twice


def run_round(ds: list[WorkDialogue], itypes: list[Optional[str]], rngs: list[random.Random], engine: str, client=None,
              llm_cfg=None, fallback: tuple[str, ...] = ()) -> None:
    """One injection round over a batch: each dialogue gets the injection named in `itypes` (None = none).

    When the dialogue offers no place for that type, another type of `fallback` not yet used in the dialogue
    is tried (chosen: keeps the paper's 1-3 injections per dialogue; the skip is recorded either way)."""
    pending = []
    for d, it, rng in zip(ds, itypes, rngs):
        if it is None or d.failure is not None:
            continue
        used = {r.type for r in d.injections} | {it}
        alts = [t for t in fallback if t not in used and t not in d.plan.injections]
        rng.shuffle(alts)
        spec = None
        for t in [it] + alts:
            if is_pool(d.domain) and INJECTIONS.get(t).needs_env:
                why = "needs an executable environment"
            else:
                spec = find(d, t, rng)
                why = "no suitable turn"
            if spec is not None:
                break
            d.injections_skipped.append(SkippedInjection(t, why))
            d.touch("injections_skipped")
        if spec is None:
            continue
        if engine == "rules":
            apply(d, spec, realise_rules(d, spec, rng))
        else:
            pending.append((d, spec))
    if pending:
        answers = llm_io.ask(client, [(d, request_llm(d, s, llm_cfg)) for d, s in pending], "inject")
        for (d, spec), (val, err) in zip(pending, answers):
            if err is not None:
                d.fail("inject", err["kind"], err["message"])
                continue
            why = check_texts(spec, val["turns"])
            if why is not None:
                d.fail("inject", "injection_not_realised", f"{spec['type']}: {why}")
                continue
            apply(d, spec, val["turns"])
