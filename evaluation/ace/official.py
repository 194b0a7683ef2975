"""Load ACEBench items from any directory in the official layout.

Layout: ``<dir>/data_<category>.json`` (JSON lines: id, question, function, time | profile | initial_config,
involved_classes, ...) and ``<dir>/possible_answer/data_<category>.json`` (id, ground_truth[, mile_stone]).
`<dir>` may be the language folder itself (``data_all/data_en``) or a folder above it (``data_all`` or the
repository root, with ``language``). Every item becomes one task dict for the ACE suite.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ...config import RecipeError

NORMAL = ["normal_single_turn_single_function", "normal_single_turn_parallel_function",
          "normal_multi_turn_user_adjust", "normal_multi_turn_user_switch", "normal_similar_api",
          "normal_preference", "normal_atom_bool", "normal_atom_enum", "normal_atom_number", "normal_atom_list",
          "normal_atom_object_deep", "normal_atom_object_short"]
SPECIAL = ["special_incomplete", "special_error_param", "special_irrelevant"]
AGENT = ["agent_multi_turn", "agent_multi_step"]
CATEGORIES = NORMAL + SPECIAL + AGENT
_SPEAKER = re.compile(r"^(user|system|assistant):\s?", re.I)


def resolve_dir(path: str | Path, language: str = "en") -> Path:
    p = Path(path)
    for cand in (p, p / f"data_{language}", p / "data_all" / f"data_{language}"):
        if cand.is_dir() and any(cand.glob("data_*.json")) and (cand / "possible_answer").is_dir():
            return cand
    raise RecipeError(f"{path}: no ACEBench data_<category>.json files with a possible_answer/ folder found "
                      f"(looked in it, data_{language}/ and data_all/data_{language}/)")


def question_to_messages(question: str) -> list[dict[str, str]]:
    """``"user: ...\\nsystem: ...\\n"`` -> OpenAI messages (system lines are the assistant's earlier turns).

    A line that does not start with a speaker continues the previous message.
    """
    msgs: list[dict[str, str]] = []
    for line in question.split("\n"):
        m = _SPEAKER.match(line)
        if m:
            role = "user" if m.group(1).lower() == "user" else "assistant"
            msgs.append({"role": role, "content": line[m.end():]})
        elif msgs:
            msgs[-1]["content"] += "\n" + line
        elif line.strip():
            msgs.append({"role": "user", "content": line})
    for m in msgs:
        m["content"] = m["content"].rstrip()
    return [m for m in msgs if m["content"] or m["role"] == "user"]


def _read_jsonl(p: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_official(path: str | Path, categories: list[str] | None = None, language: str = "en") -> list[dict]:
    d = resolve_dir(path, language)
    out = []
    for cat in categories or CATEGORIES:
        if cat not in CATEGORIES:
            raise RecipeError(f"unknown ACEBench category {cat!r}")
        qf, af = d / f"data_{cat}.json", d / "possible_answer" / f"data_{cat}.json"
        if not qf.exists():
            continue
        answers = {a["id"]: a for a in _read_jsonl(af)} if af.exists() else {}
        for item in _read_jsonl(qf):
            ans = answers.get(item["id"])
            task = {"id": item["id"], "category": cat, "source": "official", "functions": item["function"],
                    "question": item["question"], "time": item.get("time", ""), "profile": item.get("profile", ""),
                    "ground_truth": ans.get("ground_truth") if ans else None,
                    "missing_answer": ans is None}
            if cat.startswith("agent"):
                task.update({"initial_config": item.get("initial_config", {}),
                             "involved_classes": item.get("involved_classes", []),
                             "mile_stone": ans.get("mile_stone") if ans else None})
            if "multi_turn" in cat and cat.startswith("normal"):
                task["conversation"] = item["id"].rsplit("_", 1)[0]
            out.append(task)
    return out
