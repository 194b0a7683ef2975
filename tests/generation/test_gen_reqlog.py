"""`llm.log_requests: true`: every request's rendered messages, tools and raw answer in requests.jsonl, once."""
from __future__ import annotations

import json

import pytest

from toolace_mt.generation.config import parse_recipe
from toolace_mt.generation.run import run_generation
from toolace_mt.llm.client import make_client


def _cfg(method):
    return parse_recipe({"name": "log", "method": method, "engine": "llm", "n_dialogues": 4, "batch_size": 2,
                         "seed": 1, "domains": ["banking"], "subtasks": [2, 2], "refinement_steps": 1,
                         "progress": False, "llm": {"backend": "simulated", "model": "rules", "log_requests": True}})


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.parametrize("method", ["toolace_mt", "mas"])
def test_requests_are_logged_once_across_a_kill_and_resume(tmp_path, method):
    cfg = _cfg(method)
    fresh = run_generation(cfg, tmp_path / "fresh", client=make_client(cfg.llm))
    log = _lines(tmp_path / "fresh" / "requests.jsonl")
    ledger = json.loads((tmp_path / "fresh" / "llm_ledger.json").read_text())
    assert len(log) == ledger["total"]["requests"] > 0
    rec = log[0]
    assert rec["messages"] and rec["answer"] and rec["prompt"] and rec["stage"]
    assert all(r["messages"][-1]["content"] for r in log)
    stages = {r["stage"] for r in log}
    assert ("skeleton" in stages) if method == "toolace_mt" else ("mas_assistant" in stages)

    def hook(stage, chunk):
        if chunk == 1:
            raise KeyboardInterrupt  # killed after chunk 1's first stage
    with pytest.raises(KeyboardInterrupt):
        run_generation(cfg, tmp_path / "run", client=make_client(cfg.llm), hook=hook)
    run_generation(cfg, tmp_path / "run", client=make_client(cfg.llm))
    resumed = _lines(tmp_path / "run" / "requests.jsonl")
    assert len({r["key"] for r in resumed}) == len(resumed)  # nothing twice
    assert sorted(r["key"] for r in resumed) == sorted(r["key"] for r in log)  # nothing lost
    assert fresh["counts"] == json.loads((tmp_path / "run" / "summary.json").read_text())["counts"]
    # the ledger sums the killed process and the resumed one: the same requests and tokens as the fresh run
    # (before, the resumed process's ledger replaced the file and the killed one's calls vanished from it)
    led = json.loads((tmp_path / "run" / "llm_ledger.json").read_text())
    for k in ("requests", "calls", "prompt_tokens", "completion_tokens", "failures"):
        assert led["total"][k] == ledger["total"][k], k
    assert led["by_stage"].keys() == ledger["by_stage"].keys()
