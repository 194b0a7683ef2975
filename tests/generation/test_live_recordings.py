"""Recorded live runs replayed offline: real-model answers as regression fixtures.

Each folder under ``tests/data/live_generation/`` holds a short run of a generation recipe against the
hand-answered OpenAI-compatible endpoint (an assistant model answered every request seeing only that request;
`results/live_generation/README.md`): its ``recipe.yaml`` (the exact recipe that ran), its ``llm_cache/`` (every
answer, keyed by the request) and ``expected.json`` (the verdict of every dialogue and the sha256 of the kept
and rejected rows). Replaying the recipe over a copy of the cache, with no endpoint, must rebuild the same
dialogues byte for byte and the same verdicts.

A request the recording does not hold means a prompt (or anything else the request is built from) changed
since the recording: the test names the recording and the templates whose requests missed, instead of reaching
for a server. Re-record with the command in the recording's ``expected.json`` ("record").
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from toolace_mt.llm.types import ChatResponse, LLMFailure

ROOT = Path(__file__).resolve().parents[1] / "data" / "live_generation"
RECORDINGS = sorted(p.name for p in ROOT.iterdir() if (p / "expected.json").exists()) if ROOT.exists() else []


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def verdicts(out: Path) -> dict[str, dict]:
    """Dialogue id -> {"kept": bool, "reasons": [...]}, from a finished generation run directory."""
    res: dict[str, dict] = {}
    for name, kept in (("dataset/train.jsonl", True), ("rejected.jsonl", False)):
        p = out / name
        if not p.exists():
            continue
        for line in p.read_text().splitlines():
            d = json.loads(line)
            meta = d["meta"] if isinstance(d["meta"], dict) else json.loads(d["meta"])
            res[d["id"]] = {"kept": kept, "reasons": (meta.get("verification") or {}).get("reasons", [])}
    return res


def replay(name: str, tmp: Path, monkeypatch, root: Path = ROOT) -> tuple[Path, list[str]]:
    """Run the recording's recipe over a copy of its cache; return the run dir and the prompts that missed."""
    from toolace_mt.generation.config import parse_recipe
    from toolace_mt.generation.run import run_generation
    from toolace_mt.llm import openai_backend

    src = root / name
    out = tmp / name
    out.mkdir(parents=True)
    shutil.copytree(src / "llm_cache", out / "llm_cache")
    missed: list[str] = []

    def offline(self, requests):  # noqa: ANN001 -- the endpoint is never reached: a miss is a stale recording
        missed.extend(f"{(r.payload or {}).get('prompt')} ({(r.payload or {}).get('prompt_version')})" for r in requests)
        return [ChatResponse(text="", error=LLMFailure(kind="stale_recording", message="not in the recording"))
                for _ in requests]

    monkeypatch.setattr(openai_backend.OpenAIBackend, "generate", offline)
    monkeypatch.setenv("OPENAI_API_KEY", "recorded")  # the backend wants a key; nothing is sent
    raw = yaml.safe_load((src / "recipe.yaml").read_text())
    raw["progress"] = False
    run_generation(parse_recipe(raw), out)
    return out, missed


@pytest.mark.skipif(not RECORDINGS, reason="no recorded live run in tests/data/live_generation")
@pytest.mark.parametrize("name", RECORDINGS)
def test_recorded_live_run_replays_byte_for_byte(name, tmp_path, monkeypatch):
    exp = json.loads((ROOT / name / "expected.json").read_text())
    out, missed = replay(name, tmp_path, monkeypatch)
    assert not missed, (f"stale recording {name!r}: {len(missed)} request(s) are not in its llm_cache -- a prompt "
                        f"changed since it was recorded: {sorted(set(missed))[:6]}. Re-record: {exp.get('record')}")
    got = verdicts(out)
    assert got == exp["verdicts"], f"recording {name!r}: verdicts changed"
    assert _sha(out / "dataset" / "train.jsonl") == exp["sha256"]["kept"], f"recording {name!r}: kept rows changed"
    assert _sha(out / "rejected.jsonl") == exp["sha256"]["rejected"], f"recording {name!r}: rejected rows changed"


def test_a_changed_prompt_names_the_stale_recording(tmp_path, monkeypatch):
    """The staleness check can fail: with one answer removed from a recording, the replay reports the miss."""
    if not RECORDINGS:
        pytest.skip("no recorded live run")
    name = RECORDINGS[0]
    src = tmp_path / "src"
    shutil.copytree(ROOT / name, src / name)
    entries = sorted((src / name / "llm_cache").rglob("*.json"))
    entries[0].unlink()
    _, missed = replay(name, tmp_path / "run", monkeypatch, root=src)
    assert missed, "a removed answer must show up as a missed request"
