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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("name")
    ap.add_argument("--n", type=int, default=3)
    a = ap.parse_args()
    recipe = yaml.safe_load((a.run / "recipe.yaml").read_text())
    recipe["n_dialogues"] = a.n
    recipe.pop("progress", None)
    ids = set()
    keys = set()
    for line in (a.run / "requests.jsonl").read_text().splitlines():
        r = json.loads(line)
        did = r.get("dialogue_id") or ""
        try:
            idx = int(did.rsplit("-", 1)[-1])
        except ValueError:
            continue
        if idx < a.n:
            ids.add(did)
            keys.add(r["key"])
    dst = HERE / a.name
    if dst.exists():
        shutil.rmtree(dst)
    (dst / "llm_cache").mkdir(parents=True)
    for k in sorted(keys):
        src = a.run / "llm_cache" / k[:2] / f"{k}.json"
        if src.exists():
            (dst / "llm_cache" / k[:2]).mkdir(exist_ok=True)
            shutil.copy2(src, dst / "llm_cache" / k[:2] / f"{k}.json")
    (dst / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    sys.path.insert(0, str(HERE.parents[1] / "generation"))
    import pytest  # noqa: F401  (the test module imports it)
    from test_live_recordings import _sha, replay, verdicts  # type: ignore

    class MP:  # a minimal monkeypatch for one offline replay outside pytest
        def __init__(self):
            self.undo = []

        def setattr(self, obj, name, val):
            self.undo.append((obj, name, getattr(obj, name)))
            setattr(obj, name, val)

        def setenv(self, k, v):
            import os
            os.environ[k] = v

    mp = MP()
    with tempfile.TemporaryDirectory() as tmp:
        out, missed = replay(a.name, Path(tmp), mp, root=HERE)
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
    for obj, name, val in reversed(mp.undo):
        setattr(obj, name, val)
    (dst / "expected.json").write_text(json.dumps(exp, indent=1) + "\n")
    print(f"{dst}: {len(keys)} answers, verdicts {exp['verdicts']}")


if __name__ == "__main__":
    main()
