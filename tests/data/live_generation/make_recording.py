"""Cut a regression recording out of a finished live generation run (tests/generation/test_live_recordings.py).

    python tests/data/live_generation/make_recording.py RUN_DIR NAME --n 3

RUN_DIR is a `toolace-mt generate` run made with `llm.log_requests: true` against the live endpoint
(results/live_generation/README.md says how). The recording keeps the run's recipe with `n_dialogues` = N, the
cache entries of the requests of its first N dialogues (each request's `key` in requests.jsonl) and, after one
offline replay, the verdicts and row hashes the test asserts. Nothing here reaches a server.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


sys.path.insert(0, str(HERE.parents[1] / "generation"))
from test_live_recordings import _sha, replay, verdicts  # type: ignore  # noqa: E402


class _MP:
    """A minimal monkeypatch for one offline replay outside pytest (undone on exit)."""

    def __init__(self):
        self.undo = []

    def setattr(self, obj, name, val):
        self.undo.append((obj, name, getattr(obj, name)))
        setattr(obj, name, val)

    def setenv(self, k, v):
        import os
        os.environ[k] = v


def _replay_outside_pytest(name: str, tmp: Path, root: Path):
    mp = _MP()
    try:
        return replay(name, tmp, mp, root=root)
    finally:
        for obj, attr, val in reversed(mp.undo):
            setattr(obj, attr, val)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("name")
    ap.add_argument("--n", type=int, default=3)
    a = ap.parse_args()
    missing = [f for f in ("recipe.yaml", "requests.jsonl", "llm_cache") if not (a.run / f).exists()]
    if missing:  # a run made without llm.log_requests, or not a run directory at all
        print(f"error: {a.run} lacks {', '.join(missing)} (a live run with llm.log_requests: true is needed)",
              file=sys.stderr)
        sys.exit(2)
    recipe = yaml.safe_load((a.run / "recipe.yaml").read_text())
    recipe["n_dialogues"] = a.n
    recipe.pop("progress", None)
    recipe = {"task": "generate", **{k: v for k, v in recipe.items() if k != "task"}}  # runnable as it is
    # the cache keys of the first N dialogues' requests: replay them over the whole cache and note every hit
    from toolace_mt.llm.cache import ResponseCache

    dst = HERE / a.name
    if dst.exists():
        shutil.rmtree(dst)
    full = Path(tempfile.mkdtemp()) / a.name
    full.mkdir(parents=True)
    shutil.copytree(a.run / "llm_cache", full / "llm_cache")
    (full / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    (full / "expected.json").write_text("{}")
    hits: set[str] = set()
    orig_get = ResponseCache.get

    def get(self, key):  # noqa: ANN001
        hit = orig_get(self, key)
        if hit is not None:
            hits.add(key)
        return hit

    ResponseCache.get = get
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _replay_outside_pytest(a.name, Path(tmp), full.parent)
    finally:
        ResponseCache.get = orig_get
    (dst / "llm_cache").mkdir(parents=True)
    for k in sorted(hits):
        src = a.run / "llm_cache" / k[:2] / f"{k}.json"
        (dst / "llm_cache" / k[:2]).mkdir(exist_ok=True)
        shutil.copy2(src, dst / "llm_cache" / k[:2] / f"{k}.json")
    keys = hits
    (dst / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    with tempfile.TemporaryDirectory() as tmp:
        out, missed = _replay_outside_pytest(a.name, Path(tmp), HERE)
        if missed:
            raise SystemExit(f"the cut recording misses {len(missed)} request(s): {sorted(set(missed))[:5]}")
        live = {k: v for k, v in verdicts(a.run).items() if k in verdicts(out)}
        if live != verdicts(out):  # the replay must rebuild what the live run decided, not just itself
            raise SystemExit(f"the offline replay disagrees with the live run: {live} vs {verdicts(out)}")
        exp = {"source_run": str(a.run.name), "n_dialogues": a.n,
               "record": f"python tests/data/live_generation/make_recording.py RUN_DIR {a.name} --n {a.n} "
                         f"(RUN_DIR: a live run of results/live_generation/{a.name.split('-')[0]}.yaml)",
               "verdicts": verdicts(out),
               "sha256": {"kept": _sha(out / "dataset" / "train.jsonl"), "rejected": _sha(out / "rejected.jsonl")}}
    (dst / "expected.json").write_text(json.dumps(exp, indent=1) + "\n")
    print(f"{dst}: {len(keys)} answers, verdicts {exp['verdicts']}")


if __name__ == "__main__":
    main()
