"""`toolace-mt bench generation` on a tiny setting: the table's fields, bench.json and the plot."""
from __future__ import annotations

import json

from toolace_mt.app.cli import build_parser, main


def test_bench_generation_tiny(tmp_path, capsys):
    rc = main(["bench", "generation", "--n", "3", "--subtasks", "2,3", "--out", str(tmp_path / "b")])
    assert rc == 0
    res = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert (tmp_path / "b" / "bench.png").stat().st_size > 10_000
    assert {(r["method"], r["subtasks"]) for r in res["rows"]} == {(m, k) for m in ("toolace_mt", "mas") for k in (2, 3)}
    for r in res["rows"]:
        assert r["dialogues"] == 3 and 0 <= r["kept"] <= 3
        for k in ("calls_per_kept", "prompt_tokens_per_kept", "completion_tokens_per_kept", "wall_s_per_kept",
                  "pass_rate"):
            assert k in r
        assert r["calls"] > 0 and r["prompt_tokens"] > r["completion_tokens"] > 0
        assert (tmp_path / "b" / f"{r['method']}-m{r['subtasks']}" / "dataset").is_dir()  # the real run machinery
    mas = {r["subtasks"]: r for r in res["rows"] if r["method"] == "mas"}
    assert mas[3]["calls"] > mas[2]["calls"]  # MAS pays per turn: longer dialogues, more calls
    assert set(res["ratios"]) == {"2", "3"} and "calls_per_kept" in res["ratios"]["3"]
    assert "o200k_base" in res["tokenizer"]
    out = capsys.readouterr().out
    assert "TMT/MAS" in out and "prompt tok" in out


def test_bench_generation_arguments():
    p = build_parser()
    a = p.parse_args(["bench", "generation", "--subtasks", "4,5", "--n", "7"])
    assert a.subtasks == (4, 5) and a.n == 7
