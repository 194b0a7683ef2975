"""The dataset card: what a generation run produced, from its verified dialogues (kept and rejected).

Everything here is computed from the (typed) dialogues alone (no wall times), so a resumed run, a sharded run after
merging and an uninterrupted run write the same card. Timings live in summary.json.
"""
from __future__ import annotations

import statistics
from collections import Counter
from typing import Any, Union

from .dialogue import WorkDialogue, as_dialogue


def _dist(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"mean": 0.0, "median": 0.0, "min": 0, "max": 0}
    return {"mean": round(statistics.fmean(xs), 2), "median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def _passed(d: WorkDialogue) -> bool:
    return True if d.verification is None else bool(d.verification.passed)


def build_card(rows: list[Union[WorkDialogue, dict[str, Any]]], cfg_name: str = "", method: str = "toolace_mt",
               engine: str = "rules") -> dict[str, Any]:
    ds = [as_dialogue(d) for d in rows]
    kept = [d for d in ds if _passed(d)]
    reasons = Counter()
    failure_kinds = Counter()
    for d in ds:
        for c in sorted({r.split(":", 1)[0] for r in (d.verification.reasons if d.verification else [])}):
            reasons[c] += 1
        if d.failure is not None:
            failure_kinds[f"{d.failure.stage}/{d.failure.kind}"] += 1
    usage = Counter()
    by_stage: dict[str, Counter] = {}
    for d in ds:
        for stage, u in (d.usage or {}).items():
            by_stage.setdefault(stage, Counter()).update(u)
            usage.update(u)
    n_kept = len(kept)

    def per(x):
        return round(x / n_kept, 2) if n_kept else None

    def per_gen(x):
        return round(x / len(ds), 2) if ds else None

    def stats(sub):
        return {
            "messages": _dist([len(d.messages) for d in sub]),
            "user_turns": _dist([sum(m["role"] == "user" for m in d.messages) for d in sub]),
            "assistant_turns": _dist([sum(m["role"] == "assistant" for m in d.messages) for d in sub]),
            "tool_calls": _dist([sum(len(m.get("tool_calls") or []) for m in d.messages) for d in sub]),
            "subtasks": _dist([len(d.plan.subtasks) if d.plan is not None else 0 for d in sub]),
            "parallel_steps": sum(1 for d in sub for m in d.messages if len(m.get("tool_calls") or []) > 1),
        }

    inj_all = Counter(r.type for d in ds for r in d.injections)
    inj_kept = Counter(r.type for d in kept for r in d.injections)
    skipped = Counter(s.type for d in ds for s in d.injections_skipped)
    ref_steps = [s for d in ds for s in d.refinement.steps]
    return {
        "name": cfg_name, "method": method, "engine": engine,
        "counts": {"generated": len(ds), "kept": n_kept, "rejected": len(ds) - n_kept,
                   "pass_rate": round(n_kept / len(ds), 4) if ds else None},
        "domains": dict(sorted(Counter(d.domain if d.has("domain") else "?" for d in kept).items())),
        "kept_stats": stats(kept),
        "all_stats": stats(ds),
        "injections": {"all": dict(sorted(inj_all.items())), "kept": dict(sorted(inj_kept.items())),
                       "skipped_no_place": dict(sorted(skipped.items())),
                       "per_dialogue_kept": _dist([len(d.injections) for d in kept])},
        "refinement": {"passes": len(ref_steps), "accepted": sum(1 for s in ref_steps if s.accepted),
                       # judge acceptance: of the passes a judge decided, the share it kept (the ablations' lever)
                       "judge_acceptance": round(sum(1 for s in ref_steps if s.accepted) / len(ref_steps), 4)
                       if ref_steps else None,
                       "judged_by": dict(Counter(s.judge for s in ref_steps)),
                       # turns a refinement pass rewrote and the judge kept
                       "turns_changed": sum(len(s.masked) for s in ref_steps if s.accepted),
                       "turns_changed_per_dialogue": _dist([sum(len(s.masked) for s in d.refinement.steps
                                                                if s.accepted) for d in ds])},
        "injections_realised": {"all": sum(inj_all.values()), "per_dialogue": round(sum(inj_all.values()) / len(ds), 3)
                                if ds else None},
        "simulated": any(d.simulated for d in ds),
        "rejection_reasons": dict(reasons.most_common()),
        "failures": dict(failure_kinds.most_common()),
        "cost": {"llm_calls": usage["calls"], "prompt_tokens": usage["prompt_tokens"],
                 "completion_tokens": usage["completion_tokens"],
                 "per_generated_dialogue": {"llm_calls": per_gen(usage["calls"]),
                                            "prompt_tokens": per_gen(usage["prompt_tokens"]),
                                            "completion_tokens": per_gen(usage["completion_tokens"])},
                 "per_kept_dialogue": {"llm_calls": per(usage["calls"]), "prompt_tokens": per(usage["prompt_tokens"]),
                                       "completion_tokens": per(usage["completion_tokens"])},
                 "by_stage": {k: dict(v) for k, v in sorted(by_stage.items())}},
    }


SIMULATED_NOTE = " (simulated backend: a mechanism check, not evidence about the method)"


def card_markdown(card: dict[str, Any]) -> str:
    c = card["counts"]
    k = card["kept_stats"]
    lines = [f"# Dataset card: {card['name']}", "",
             f"Method `{card['method']}`, engine `{card['engine']}`.", "",
             "| | value |", "|---|---|",
             f"| generated | {c['generated']} |", f"| kept | {c['kept']} |",
             f"| pass rate | {c['pass_rate']}{SIMULATED_NOTE if card.get('simulated') else ''} |"]
    for key in ("messages", "user_turns", "assistant_turns", "tool_calls", "subtasks"):
        s = k[key]
        lines.append(f"| {key.replace('_', ' ')} per kept dialogue (mean / median / min-max) | "
                     f"{s['mean']} / {s['median']} / {s['min']}-{s['max']} |")
    lines.append(f"| steps with parallel calls | {k['parallel_steps']} |")
    lines += ["", "## Injection mix (kept / all)", ""]
    for t, n in card["injections"]["all"].items():
        lines.append(f"- {t}: {card['injections']['kept'].get(t, 0)} / {n}")
    if card["injections"]["skipped_no_place"]:
        lines.append(f"- skipped (no suitable turn): {card['injections']['skipped_no_place']}")
    r = card["refinement"]
    lines += ["", f"Injections realised: {card['injections_realised']['all']} "
                  f"({card['injections_realised']['per_dialogue']} per generated dialogue).",
              "", f"Refinement passes: {r['passes']}, accepted: {r['accepted']} (judge acceptance "
                  f"{r['judge_acceptance']}); turns changed by refinement: {r['turns_changed']}.",
              "", "## Rejection reasons (dialogues per failed check)", ""]
    lines += [f"- {why}: {n}" for why, n in card["rejection_reasons"].items()] or ["- none"]
    if card["failures"]:
        lines += ["", "Typed generation failures: " + ", ".join(f"{k} {v}" for k, v in card["failures"].items())]
    cost = card["cost"]
    lines += ["", "## Cost", "", f"LLM calls {cost['llm_calls']}, prompt tokens {cost['prompt_tokens']}, "
              f"completion tokens {cost['completion_tokens']}; per generated dialogue: "
              f"{cost['per_generated_dialogue']}; per kept dialogue: {cost['per_kept_dialogue']}."]
    if card.get("simulated"):
        lines += ["", "Answers came from the `simulated` backend: each stage's offline stand-in answered from what its "
                      "prompt shows; the model verifiers re-check the visible facts of the transcript (grounding as whole "
                      "tokens, replies against outputs, completion, repetition) and are not a copy of the rule verdict. "
                      "Pass rates here are mechanism checks of the pipeline, not evidence about the method."]
    lines += ["", "Domains (kept): " + ", ".join(f"{d} {n}" for d, n in card["domains"].items())]
    return "\n".join(lines) + "\n"
