"""Reading and writing dialogues: JSONL, Hugging Face datasets (no struct merging), ShareGPT/ToolACE import."""
from __future__ import annotations

import json

import pytest

from toolace_mt.io import (from_hf_dataset, from_sharegpt, load_dataset_dialogues, read_dialogues, save_dataset,
                           to_hf_dataset, write_dialogues)
from toolace_mt.schema import Dialogue, validate_dialogue

TOOLS = [
    {"type": "function", "function": {"name": "f", "description": "F.", "parameters": {
        "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}},
    {"type": "function", "function": {"name": "g", "description": "G.", "parameters": {
        "type": "object", "properties": {"b": {"type": "array", "items": {"type": "integer"}},
                                         "c": {"type": "object"}}}}},
]


def _dialogue(i: int, name: str, args: dict) -> Dialogue:
    return Dialogue.model_validate({
        "id": f"d{i}", "tools": [TOOLS[0]] if name == "f" else TOOLS, "meta": {"n": i, "tags": ["x"] * i},
        "messages": [
            {"role": "user", "content": f"request {i}"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": name, "arguments": args}}]},
            {"role": "tool", "tool_call_id": "c1", "name": name, "content": json.dumps({"ok": True})},
            {"role": "assistant", "content": "done"}]})


@pytest.fixture
def dialogues():
    # heterogeneous argument dicts: struct merging would add b/c keys (as null) to f's call and vice versa
    return [_dialogue(0, "f", {"a": 1}), _dialogue(1, "g", {"b": [1, 2], "c": {"x": "y", "n": 3}}),
            _dialogue(2, "g", {"c": {"deep": {"z": [True]}}})]


def test_jsonl_round_trip(tmp_path, dialogues):
    p = tmp_path / "d.jsonl"
    assert write_dialogues(p, dialogues) == 3
    back = read_dialogues(p)
    assert [d.to_dict() for d in back] == [d.to_dict() for d in dialogues]
    assert all(validate_dialogue(d) == [] for d in back)


def test_jsonl_bad_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"id": "a", "messages": []}\n{not json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        read_dialogues(p)


def test_hf_dataset_keeps_heterogeneous_arguments(dialogues):
    ds = to_hf_dataset(dialogues)
    assert set(ds.column_names) >= {"id", "messages", "tools"}
    assert isinstance(ds[0]["tools"], str)  # TRL reads a JSON string column
    back = from_hf_dataset(ds)
    assert [d.to_dict() for d in back] == [d.to_dict() for d in dialogues]
    assert back[0].messages[1].tool_calls[0].arguments == {"a": 1}  # no b=None, c=None merged in
    assert back[2].messages[1].tool_calls[0].arguments == {"c": {"deep": {"z": [True]}}}


def test_save_and_load_dataset_jsonl_and_parquet(tmp_path, dialogues):
    paths = save_dataset(dialogues, tmp_path / "out")
    assert "parquet" in paths, paths
    for p in (tmp_path / "out", paths["jsonl"], paths["parquet"]):
        back = load_dataset_dialogues(p)
        assert [d.to_dict() for d in back] == [d.to_dict() for d in dialogues], p


SYSTEM = ("You are an expert in composing functions. Here is a list of functions in JSON format:\n"
          + json.dumps([{"name": "get_weather", "description": "Weather of a city.",
                         "parameters": {"type": "dict", "properties": {"city": {"type": "string"},
                                                                       "days": {"type": "integer"}},
                                        "required": ["city"]}},
                        {"name": "convert", "description": "Convert currency.",
                         "parameters": {"type": "dict", "properties": {"amount": {"type": "float"},
                                                                       "to": {"type": "string"}},
                                        "required": ["amount", "to"]}}]))


def test_sharegpt_pythonic_calls_and_outputs_validate():
    row = {"id": "tace1", "system": SYSTEM, "conversations": [
        {"from": "user", "value": "Weather in Paris for 3 days, and 20 EUR in USD?"},
        {"from": "assistant", "value": "[get_weather(city='Paris', days=3), convert(amount=20.0, to='USD')]"},
        {"from": "tool", "value": json.dumps([{"temp": 18}, {"result": 21.7}])},
        {"from": "assistant", "value": "It's 18°C; 20 EUR is 21.7 USD."}]}
    d = from_sharegpt(row)
    assert validate_dialogue(d) == [], [str(p) for p in validate_dialogue(d)]
    calls = d.messages[2].tool_calls
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Paris", "days": 3}),
                                                       ("convert", {"amount": 20.0, "to": "USD"})]
    tool_msgs = [m for m in d.messages if m.role == "tool"]
    assert [json.loads(m.content) for m in tool_msgs] == [{"temp": 18}, {"result": 21.7}]
    assert [m.tool_call_id for m in tool_msgs] == [c.id for c in calls]
    # BFCL types (dict, float) became JSON Schema
    assert d.tools[1].function.parameters["properties"]["amount"]["type"] == "number"


def test_sharegpt_json_calls_and_tools_field_validate():
    row = {"tools": json.dumps(TOOLS), "conversations": [
        {"from": "human", "value": "call f"},
        {"from": "gpt", "value": json.dumps({"name": "f", "arguments": {"a": 5}})},
        {"from": "observation", "value": "{\"ok\": true}"},
        {"from": "gpt", "value": "f said ok"},
        {"from": "human", "value": "and g"},
        {"from": "gpt", "value": json.dumps([{"name": "g", "parameters": {"b": [1]}}])},
        {"from": "function", "value": "[]"},
        {"from": "gpt", "value": "g done"}]}
    d = from_sharegpt(row, id_="x")
    assert d.id == "x" and validate_dialogue(d) == [], [str(p) for p in validate_dialogue(d)]
    assert d.messages[1].tool_calls[0].arguments == {"a": 5}
    assert d.messages[5].tool_calls[0].arguments == {"b": [1]}


def test_sharegpt_errors_are_clear():
    with pytest.raises(ValueError, match="unknown ShareGPT role"):
        from_sharegpt({"conversations": [{"from": "narrator", "value": "x"}]})
    with pytest.raises(ValueError, match="no pending call"):
        from_sharegpt({"conversations": [{"from": "user", "value": "x"}, {"from": "tool", "value": "{}"}]})


def test_read_dialogues_imports_sharegpt_rows(tmp_path):
    p = tmp_path / "sg.jsonl"
    p.write_text(json.dumps({"id": "s", "tools": TOOLS, "conversations": [
        {"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}) + "\n")
    (d,) = read_dialogues(p)
    assert d.id == "s" and validate_dialogue(d) == []


def test_bad_data_file_is_a_clear_cli_error(tmp_path, capsys):
    from toolace_mt.app.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "messages": []}\nnot json\n')
    # verify rejects the unreadable record with its file and line and verifies the others (never aborts)
    assert main(["verify", str(bad), "--out", str(tmp_path / "out")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert any(f"{bad}:2: not valid JSON" in r for r in res["malformed"]["reasons"])
    assert (tmp_path / "out" / "train.jsonl").exists()


# ------------------------------------------------------------------------------------------------ issue 24 item 4
def _good_line(i) -> str:
    return json.dumps(_dialogue(i, "f", {"a": i}).to_dict()) + "\n"


def test_reader_refuses_bad_rows_one_by_one_and_reads_the_rest(tmp_path):
    """Too deep (raw and inside a JSON-string column), too large, not UTF-8, not an object, a list id, a
    duplicate id: each is one refused row with its line and reason; the good rows around them are read."""
    from toolace_mt.io import MAX_ROW_BYTES, read_dataset

    big = json.dumps({"id": "big", "messages": [{"role": "user", "content": "x" * (MAX_ROW_BYTES + 10)}]})
    lines = [_good_line(0),
             '{"id": "deep", "messages": ' + "[" * 10000 + "]" * 10000 + "}\n",
             json.dumps({"id": "deep2", "messages": [], "tools": "[" * 100 + "]" * 100}) + "\n",
             big + "\n",
             '[1, 2]\n',
             json.dumps({"id": ["list", "id"], "messages": []}) + "\n",
             _good_line(1),
             _good_line(1),  # duplicate id d1
             ]
    p = tmp_path / "d.jsonl"
    p.write_text("".join(lines), encoding="utf-8")
    with open(p, "ab") as f:
        f.write(b'{"id": "bin", "messages": "\xff\xfe"}\n')
    got = read_dataset(p)
    assert [d.id for d in got.dialogues] == ["d0", "d1"]
    reasons = {r["line"]: r["reason"] for r in got.rejected}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 8, 9]
    assert "nested deeper" in reasons[2] and "nested deeper" in reasons[3]
    assert "over the" in reasons[4] and f"{len(big) + 1:,} bytes" in reasons[4]
    assert "expected a JSON object" in reasons[5]
    assert "id must be a string or an integer, got list" in reasons[6]  # no "['list', 'id']" coercion
    assert "duplicate id 'd1' (first at line 7)" in reasons[8]
    assert "not UTF-8" in reasons[9]
    assert all(r["reason"].startswith(f"{p}:{r['line']}: ") for r in got.rejected)


def test_reader_names_rows_without_id_by_line_and_says_so(tmp_path):
    from toolace_mt.io import read_dataset

    rows = [_dialogue(i, "f", {"a": i}).to_dict() for i in range(3)]
    for r in rows[:2]:
        del r["id"]
    rows[2]["id"] = 7  # an integer id is kept, written in decimal
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    got = read_dataset(p)
    assert [d.id for d in got.dialogues] == ["line-1", "line-2", "7"]
    assert got.notes == ["2 row(s) without an id were named line-N by their line number"]
    with pytest.raises(ValueError, match="no 'id'"):  # below the reader, a row without id is no dialogue
        from toolace_mt.io import row_to_dialogue
        row_to_dialogue(rows[0])


def test_strict_reader_and_training_mixture_use_the_same_rules(tmp_path):
    """read_dialogues (strict) refuses at the first bad row; training reads the rest and records the refusal."""
    from toolace_mt.io import DataFileError
    from toolace_mt.training.data import DataError, load_mixture

    p = tmp_path / "d.jsonl"
    p.write_text(_good_line(0) + '{"id": "deep", "messages": ' + "[" * 100 + "]" * 100 + "}\n" + _good_line(1))
    with pytest.raises(DataFileError, match=r"d.jsonl:2: nested deeper than 64 levels"):
        read_dialogues(p)
    refused: list = []
    mixed = load_mixture([{"path": str(p)}], seed=0, refused=refused)
    assert sorted(d.id for _, d in mixed) == ["d0", "d1"]
    assert [r["line"] for r in refused] == [2]
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text('{"id": "deep", "messages": ' + "[" * 100 + "]" * 100 + "}\n")
    with pytest.raises(DataError, match="no row could be read as a dialogue"):
        load_mixture([{"path": str(only_bad)}])


def test_large_line_is_skipped_in_bounded_chunks(tmp_path, monkeypatch):
    """The reader never asks for more than MAX_ROW_BYTES + 1 bytes of a line at once (a 50 MB row is never
    held whole), and the line after it is read normally."""
    import toolace_mt.io as tio

    p = tmp_path / "d.jsonl"
    p.write_text('{"id": "big", "messages": "' + "x" * (3 * tio.MAX_ROW_BYTES) + '"}\n' + _good_line(0))
    sizes = []

    class Spy:  # the file object the reader gets, recording every readline size it asks for
        def __init__(self, f):
            self.f = f

        def readline(self, size=-1):
            sizes.append(size)
            return self.f.readline(size)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(tio, "open", lambda path, mode="r": Spy(open(path, mode)), raising=False)
    got = tio.read_dataset(p)
    assert [d.id for d in got.dialogues] == ["d0"] and len(got.rejected) == 1
    assert sizes and all(0 < s <= tio.MAX_ROW_BYTES + 1 for s in sizes)


def _mutations(good: dict, rng) -> list[tuple[str, bytes]]:
    """(class, raw line) of one broken variant per class of a good row."""
    deep = rng.randint(65, 3000)
    enc = lambda o: json.dumps(o).encode()  # noqa: E731
    return [
        ("deep_raw", b'{"id": "x", "messages": ' + b"[" * deep + b"]" * deep + b"}"),
        ("deep_column", enc({**good, "id": "dc", "tools": "[" * deep + "]" * deep})),
        ("not_object", enc(rng.choice([[good], "row", 7, None, True]))),
        ("broken_json", enc(good)[:rng.randint(5, 60)]),
        ("bad_id", enc({**good, "id": rng.choice([["l", "i"], {"k": 1}, True, 1.5, "", "  "])})),
        ("nan", enc(good).replace(b'"a": ', b'"a": NaN, "b0": ', 1) if b'"a": ' in enc(good) else b'{"x": NaN}'),
        ("no_messages", enc({k: v for k, v in good.items() if k != "messages"})),
        ("messages_wrong_type", enc({**good, "messages": rng.choice([5, {"role": "user"}, [1, 2]])})),
        ("not_utf8", enc(good).replace(b"request", b"requ\xff\xfest", 1)),
    ]


def test_dataset_fuzz_every_bad_row_refused_every_good_row_read(tmp_path):
    """Seeded: 40 good rows with 9 classes of broken rows between them, through the reader and `verify`."""
    import random

    from toolace_mt.app.cli import main
    from toolace_mt.io import read_dataset

    rng = random.Random("dataset-fuzz")
    lines, want_bad, good_ids = [], {}, []
    for i in range(40):
        good = _dialogue(i, "f", {"a": i}).to_dict()
        lines.append(json.dumps(good).encode())
        good_ids.append(good["id"])
        cls, raw = rng.choice(_mutations(good, rng))
        lines.append(raw)
        want_bad[len(lines)] = cls
    lines.append(json.dumps(_dialogue(0, "f", {"a": 0}).to_dict()).encode())  # a duplicate id
    want_bad[len(lines)] = "duplicate"
    p = tmp_path / "fuzz.jsonl"
    p.write_bytes(b"\n".join(lines) + b"\n")
    got = read_dataset(p)
    assert [d.id for d in got.dialogues] == good_ids
    assert {r["line"]: r["reason"] for r in got.rejected}.keys() == want_bad.keys()
    assert len(set(want_bad.values())) >= 8  # the seed drew most classes
    assert main(["verify", str(p), "--out", str(tmp_path / "v")]) == 0
    summary = json.loads((tmp_path / "v" / "verify_summary.json").read_text())
    assert summary["malformed"]["count"] == len(want_bad)
    assert summary["counts"]["kept"] + summary["counts"]["rejected"] == len(good_ids)
