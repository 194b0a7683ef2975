"""Bounded prompt context for turn-level edits (refill, judge, injection), as Mask-Predict works on tokens.

Why: a refinement pass rewrites two or three turns, yet a prompt carrying the whole transcript grows with the
dialogue's length and was about half of ToolACE-MT's prompt tokens. What a masked turn depends on is local:

- a user request (``query``): the calls of its own subtask (they carry every value the request must state),
  and, for values an EARLIER turn introduced (ids an earlier tool returned), a short snippet of the first
  turn that introduced each of them;
- an assistant reply (``reply``): the request it answers (the nearest user turn before it) and the calls and
  tool outputs of its subtask, which it reports;
- any turn: its neighbours (the turn before and after it), so the edit reads on from what precedes it.

`local_context` renders exactly these messages (others elided as ``...``), tool outputs clipped to
`OUTPUT_CHARS`; `task_summary` is the plan of the masked turns' subtasks only (description, tools, argument
values), so neither grows with the number of subtasks. The dialogue's other subtasks are named only by count.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Optional

from .dialogue import WorkDialogue
from .resolve import atoms, value_in_text

# chosen: keeps a tool output's ids and leading fields; long listings (long_context) are clipped. 800, not 400: a
# live model rewriting a reply must see the results it reports (answerers flagged clipped listings)
OUTPUT_CHARS = 800
SNIPPET_CHARS = 60  # chosen: characters either side of a value in the snippet of the turn that introduced it
# chosen: a user/assistant text longer than this is clipped (long_context requests restate a lot); 1200, not 600,
# since a live model's replies list their results (one ran to ~1,300 characters) and a judge must see what the
# next turn answers
TEXT_CHARS = 1200


def _clip(s: Any, n: int) -> str:
    s = "" if s is None else str(s)
    return s if len(s) <= n else s[:n] + f" ...[{len(s) - n} chars clipped]"


def _calls_text(m: dict) -> str:
    return "; ".join(f"{tc['function']['name']}({json.dumps(tc['function']['arguments'], ensure_ascii=False)})"
                     for tc in m.get("tool_calls") or [])


def render_message(i: int, m: dict, placeholder: Optional[str] = None, output_chars: int = OUTPUT_CHARS) -> str:
    """One transcript line in the format of `llm_io.show_dialogue` (same indices), tool outputs clipped."""
    if placeholder is not None:
        return f"[{i}] {m['role']}: {placeholder}"
    if m["role"] == "assistant" and m.get("tool_calls"):
        txt = _clip((m.get("content") or "").strip(), TEXT_CHARS)
        return f"[{i}] assistant: {txt + ' ' if txt else ''}CALLS {_calls_text(m)}"
    if m["role"] == "tool":
        return f"[{i}] tool {m.get('name')}: {_clip(m.get('content'), output_chars)}"
    return f"[{i}] {m['role']}: {_clip(m.get('content'), TEXT_CHARS)}"


def _text_of(m: dict) -> str:
    return (m.get("content") or "") + (" " + _calls_text(m) if m.get("tool_calls") else "")


def _literal(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _snippet(i: int, m: dict, v: Any) -> Optional[str]:
    """The part of message i around value v (None when v is not written there literally)."""
    txt = _text_of(m)
    lit = _literal(v)
    k = txt.lower().find(lit.lower())
    if k < 0:
        return None
    a, b = max(0, k - SNIPPET_CHARS), min(len(txt), k + len(lit) + SNIPPET_CHARS)
    who = f"tool {m.get('name')}" if m["role"] == "tool" else m["role"]
    return f"[{i}] {who}: {'...' if a else ''}{txt[a:b]}{'...' if b < len(txt) else ''}"


def _subtask_range(d: WorkDialogue, t: int) -> list[int]:
    return [j for j, tg in enumerate(d.turns) if tg.subtask == t]


def depends_on(d: WorkDialogue, i: int) -> tuple[set[int], dict[int, Any]]:
    """Messages turn i depends on: (indices shown whole, {index: value} shown as a snippet of that value)."""
    msgs, turns = d.messages, d.turns
    tg = turns[i]
    whole = {j for j in (i - 1, i + 1) if 0 <= j < len(msgs)}
    snips: dict[int, Any] = {}
    sub = _subtask_range(d, tg.subtask) if tg.subtask >= 0 else []
    if msgs[i]["role"] == "user":
        calls = [j for j in sub if j > i and msgs[j]["role"] == "assistant" and msgs[j].get("tool_calls")]
        whole.update(calls)
        # values of those calls that a turn before the request introduced: show where (grounding needs it)
        for j in calls:
            for tc in msgs[j]["tool_calls"]:
                for v in atoms(tc["function"]["arguments"]):
                    if not isinstance(v, str) or len(v) < 3:
                        continue  # chosen: ids and names only; numbers match too much text ("2" is in "221B")
                    src = first_mention(msgs, v, before=i)
                    if src is not None:
                        snips.setdefault(src, v)
    else:
        users = [j for j in range(i - 1, -1, -1) if msgs[j]["role"] == "user"]
        if users:
            whole.add(users[0])
        whole.update(j for j in sub if j < i and msgs[j]["role"] in ("assistant", "tool")
                     and (msgs[j].get("tool_calls") or msgs[j]["role"] == "tool"))
    for j in whole:
        snips.pop(j, None)
    return whole, snips


def first_mention(msgs: list[dict], v: Any, before: int) -> Optional[int]:
    for j in range(before):
        if value_in_text(v, _text_of(msgs[j])):
            return j
    return None


def local_context(d: WorkDialogue, idx: Iterable[int], placeholders: Optional[dict[int, str]] = None) -> str:
    """A transcript of only the messages the turns `idx` depend on, in order, gaps shown as '...'."""
    msgs = d.messages
    placeholders = placeholders or {}
    whole: set[int] = set(idx)
    snips: dict[int, Any] = {}
    for i in idx:
        w, s = depends_on(d, i)
        whole |= w
        for j, v in s.items():
            snips.setdefault(j, v)
    lines, last = [], -1
    for j in sorted(whole | set(snips)):
        if j > last + 1:
            lines.append(f"... ({j - last - 1} turns not shown)")
        if j in whole:
            lines.append(render_message(j, msgs[j], placeholders.get(j)))
        else:
            lines.append(_snippet(j, msgs[j], snips[j]) or render_message(j, msgs[j]))
        last = j
    if last < len(msgs) - 1:
        lines.append(f"... ({len(msgs) - 1 - last} turns not shown)")
    return "\n".join(lines)


def task_summary(d: WorkDialogue, idx: Iterable[int]) -> str:
    """The plan of the subtasks the turns `idx` belong to: description, tools, the argument values per call."""
    subs = d.plan.subtasks
    ts = sorted({d.turns[i].subtask for i in idx if 0 <= d.turns[i].subtask < len(subs)})
    head = f"Domain {d.plan.domain}; the user's task has {len(subs)} subtasks."
    lines = [head]
    for t in ts:
        s = subs[t]
        calls = [f"{c.tool}({json.dumps(c.arguments or {}, ensure_ascii=False)})" for st in s.steps for c in st]
        lines.append(f"Subtask {t + 1}: {s.description} | tools {', '.join(s.tools)}"
                     + (f" | calls {'; '.join(calls)}" if calls else ""))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ verifier digests
def digest(d: WorkDialogue, output_chars: Optional[int], calls: str = "full") -> str:
    """The whole dialogue with tool outputs clipped to `output_chars` (None: dropped) and calls shown
    `full` (name and arguments) or by `name` only. For specialists that do not read every value."""
    lines = []
    for i, m in enumerate(d.messages):
        if m["role"] == "tool":
            if output_chars is not None:
                lines.append(render_message(i, m, output_chars=output_chars))
            continue
        if m["role"] == "assistant" and m.get("tool_calls") and calls == "name":
            txt = (m.get("content") or "").strip()
            names = ", ".join(tc["function"]["name"] for tc in m["tool_calls"])
            lines.append(f"[{i}] assistant: {txt + ' ' if txt else ''}CALLS {names}")
            continue
        lines.append(render_message(i, m))
    return "\n".join(lines)
