"""Data-level comparison of generation methods: no training, deterministic, read from generation run dirs.

Per method (a `toolace-mt generate` run directory): the verifier pass rate; the cost per generated and per kept
dialogue (LLM calls, prompt and completion tokens, from the run's card); the coverage of the behaviours the
BFCL-style categories test, as the share of kept dialogues that show each one; and diversity.

Coverage is read from the messages themselves (not from generator bookkeeping, which only one method keeps):

* ``tool_update``: tools that become available mid-dialogue (``meta["tool_updates"]``; miss_func);
* ``recovered_error``: a tool result that is an error, followed later by a successful result of the same tool;
* ``clarification``: an assistant question without calls, answered by the user, after which a call uses a value
  that first appears in that answer (miss_param: the user supplies what was missing);
* ``non_function_call``: a user turn answered without any call;
* ``long_context``: a tool result of at least ``LONG_RESULT_CHARS`` characters (long listings to search).

Diversity: distinct user-text n-grams (count and distinct / total, n = 2 and 3, lower-cased word tokens) and the
Shannon entropy (bits) of the dialogues' tool-name sequences.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Optional

from ..schema import Dialogue

LONG_RESULT_CHARS = 1000  # chosen: about 5x a typical single-record result in our domains
COVERAGE = ("tool_update", "recovered_error", "clarification", "non_function_call", "long_context")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _is_error(content: Optional[str]) -> bool:
    try:
        v = json.loads(content or "")
    except (json.JSONDecodeError, TypeError):
        return False
    return isinstance(v, dict) and "error" in v


def _values(args: Any) -> Iterable[str]:
    if isinstance(args, dict):
        for v in args.values():
            yield from _values(v)
    elif isinstance(args, list):
        for v in args:
            yield from _values(v)
    elif args is not None and not isinstance(args, bool):
        yield str(args)


def behaviours(d: Dialogue) -> dict[str, bool]:
    """Which of the `COVERAGE` behaviours the dialogue shows (see module doc)."""
    msgs = d.messages
    names = {}  # tool_call_id -> tool name
    for m in msgs:
        for tc in m.tool_calls or []:
            names[tc.id] = tc.name
    failed: set[str] = set()
    recovered = long_ctx = False
    for m in msgs:
        if m.role != "tool":
            continue
        name = m.name or names.get(m.tool_call_id or "", "")
        if _is_error(m.content):
            failed.add(name)
        elif name in failed:
            recovered = True
        long_ctx = long_ctx or len(m.content or "") >= LONG_RESULT_CHARS
    # user turns: the messages from one user message to the next
    users = [i for i, m in enumerate(msgs) if m.role == "user"]
    non_call = clarification = False
    seen_user_text = ""
    for k, i in enumerate(users):
        end = users[k + 1] if k + 1 < len(users) else len(msgs)
        turn = msgs[i + 1:end]
        calls = [tc for m in turn for tc in (m.tool_calls or [])]
        if turn and not calls:
            non_call = True
            last = next((m for m in reversed(turn) if m.role == "assistant"), None)
            if last is not None and "?" in (last.content or "") and k + 1 < len(users):
                answer = msgs[users[k + 1]].content or ""
                nxt_end = users[k + 2] if k + 2 < len(users) else len(msgs)
                nxt_calls = [tc for m in msgs[users[k + 1] + 1:nxt_end] for tc in (m.tool_calls or [])]
                before = seen_user_text + " " + (msgs[i].content or "")
                if any(v and v in answer and v not in before for tc in nxt_calls for v in _values(tc.arguments)):
                    clarification = True
        seen_user_text += " " + (msgs[i].content or "")
    return {"tool_update": bool(d.meta.get("tool_updates")), "recovered_error": recovered,
            "clarification": clarification, "non_function_call": non_call, "long_context": long_ctx}


def diversity(dialogues: list[Dialogue]) -> dict[str, Any]:
    grams = {2: Counter(), 3: Counter()}
    for d in dialogues:
        for m in d.messages:
            if m.role != "user":
                continue
            words = _WORD.findall((m.content or "").lower())
            for n in grams:
                grams[n].update(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    seqs = Counter(tuple(tc.name for m in d.messages for tc in (m.tool_calls or [])) for d in dialogues)
    total = sum(seqs.values())
    entropy = -sum(c / total * math.log2(c / total) for c in seqs.values()) if total else 0.0
    out: dict[str, Any] = {}
    for n, c in grams.items():
        tot = sum(c.values())
        out[f"distinct_user_{n}grams"] = len(c)
        out[f"distinct_user_{n}gram_ratio"] = round(len(c) / tot, 4) if tot else None
    out["tool_sequence_entropy_bits"] = round(entropy, 3)
    out["distinct_tool_sequences"] = len(seqs)
    return out


def compare_dialogues(dialogues: list[Dialogue]) -> dict[str, Any]:
    n = len(dialogues)
    cov = Counter()
    for d in dialogues:
        for k, v in behaviours(d).items():
            cov[k] += bool(v)
    return {"n": n, "coverage": {k: round(cov[k] / n, 4) if n else None for k in COVERAGE},
            "coverage_counts": {k: cov[k] for k in COVERAGE}, "diversity": diversity(dialogues)}


def compare_run(gen_dir: str | Path) -> dict[str, Any]:
    """The comparison row of one generation run directory (card.json + dataset/)."""
    from ..io import load_dataset_dialogues

    gen_dir = Path(gen_dir)
    card = json.loads((gen_dir / "card.json").read_text())
    counts = card.get("counts") or {}
    gen, kept = int(counts.get("generated") or 0), int(counts.get("kept") or 0)
    cost = card.get("cost") or {}
    per = lambda k, n: round(cost[k] / n, 2) if n and isinstance(cost.get(k), (int, float)) else None  # noqa: E731
    keys = ("llm_calls", "prompt_tokens", "completion_tokens")
    row = {"method": card.get("method"), "engine": card.get("engine"), "generated": gen, "kept": kept,
           "pass_rate": round(kept / gen, 4) if gen else None,
           "cost_per_generated": {k: per(k, gen) for k in keys}, "cost_per_kept": {k: per(k, kept) for k in keys}}
    row.update(compare_dialogues(load_dataset_dialogues(gen_dir / "dataset")))
    return row


def compare_runs(runs: dict[str, str | Path]) -> dict[str, dict[str, Any]]:
    """{name: row} for every run directory that holds a card and a dataset (others are left out)."""
    out = {}
    for name, p in runs.items():
        p = Path(p)
        if (p / "card.json").is_file() and (p / "dataset").exists():
            out[name] = compare_run(p)
    return out


def markdown(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Three tables: pass rate and cost, coverage, diversity."""
    if not rows:
        return []
    pct = lambda v: f"{100 * v:.1f}%" if isinstance(v, (int, float)) else "–"  # noqa: E731
    num = lambda v: f"{v:g}" if isinstance(v, (int, float)) else "–"  # noqa: E731
    L = ["| method | generated | kept | pass rate | LLM calls / gen. | LLM calls / kept | prompt tok. / gen. | "
         "prompt tok. / kept | compl. tok. / gen. | compl. tok. / kept |", "|---|" + "---:|" * 9]
    for name, r in rows.items():
        g, k = r["cost_per_generated"], r["cost_per_kept"]
        L.append(f"| {name} | {r['generated']} | {r['kept']} | {pct(r['pass_rate'])} | {num(g['llm_calls'])} | "
                 f"{num(k['llm_calls'])} | {num(g['prompt_tokens'])} | {num(k['prompt_tokens'])} | "
                 f"{num(g['completion_tokens'])} | {num(k['completion_tokens'])} |")
    L += ["", "Coverage (share of kept dialogues showing the behaviour a BFCL-style category tests):", "",
          "| method | " + " | ".join(COVERAGE) + " |", "|---|" + "---:|" * len(COVERAGE)]
    for name, r in rows.items():
        L.append(f"| {name} | " + " | ".join(pct(r["coverage"][k]) for k in COVERAGE) + " |")
    dk = ["distinct_user_2grams", "distinct_user_2gram_ratio", "distinct_user_3grams", "distinct_user_3gram_ratio",
          "tool_sequence_entropy_bits", "distinct_tool_sequences"]
    L += ["", "| method | " + " | ".join(dk) + " |", "|---|" + "---:|" * len(dk)]
    for name, r in rows.items():
        L.append(f"| {name} | " + " | ".join(num(r["diversity"].get(k)) for k in dk) + " |")
    return L
