"""BFCL decoding modes: our port of the official prompting decoder against bfcl-eval's own, the official
executor's handling of qualified names, official decoding during play, and per-entry agreement of
decoder+checker with the official decoder+checker on oracle, perturbed and text-edited trajectories."""
from __future__ import annotations

import importlib.util

import pytest

from toolace_mt.evaluation.bfcl.decoding import decode_text, own_decode_execute, step_calls
from toolace_mt.evaluation.policy import PolicyOutput

HAVE_BFCL = importlib.util.find_spec("bfcl_eval") is not None
needs_bfcl = pytest.mark.skipif(not HAVE_BFCL, reason="bfcl-eval not installed (pip install --no-deps "
                                "bfcl-eval==2026.3.23, plus the bfcl-decoder extra for its decoder)")

TEXTS = [
    "[cd(folder='documents'), ls()]", "cd(folder='documents')", "cd(folder=documents)",
    "```python\n[cd(folder='x')]\n```", "```\n[cd(folder='x')]\n```", "`cd(folder='x')`",
    "GorillaFileSystem.cd(folder='x')", "Sure: [cd(folder='x')]", "[cd(folder='x')]\nDone.", "cd('x')",
    "cd('x', y=2)", "'[cd(folder=\"x\")]'", "[f(a=-1, b=2+3, c=[1, (2, 3)], d={'k': [True, None]})]",
    "[f(a=g(b=1))]", "[f(a=g())]", "[f(a={})]", "[f(a={'x': {}})]", "[f(a=x[0])]", "[f(a=...)]", "[f(a=not 1)]",
    "[f(a=lambda: 1)]", "[f(a=x.y)]", "[f(a=f'{x}')]", "[f(**k)]", "[1, f()]", "x", "", "Done.", "[]", "[f()]",
    "[f(a='a' * 2)]", "[a.b.c(d=1)]", "f(a=1), g(b=2)", "[f(a=1)] [g()]", "f(a={1: 'x'})",
]


@needs_bfcl
@pytest.mark.parametrize("text", TEXTS)
def test_port_equals_the_official_decoder(text):
    from toolace_mt.evaluation.bfcl.decoding import bfcl_decode_execute, official_decoder_available

    if not official_decoder_available():
        pytest.skip("bfcl-eval's decoder needs tree-sitter 0.21 + tenacity (the bfcl-decoder extra)")

    def run(fn):
        try:
            return ("ok", fn(text))
        except Exception:  # noqa: BLE001 - only whether it raises matters
            return ("error", None)

    assert run(own_decode_execute) == run(bfcl_decode_execute)


def test_official_semantics_of_realistic_texts():
    names = lambda t: [(c["name"], c["arguments"]) for c in decode_text(t, "own")]  # noqa: E731
    assert names("tail(file_name='x')") == [("tail", {"file_name": "x"})]  # bare call: accepted
    assert names("mkdir(dir_name=Projects)") == [("mkdir", {"dir_name": "Projects"})]  # unquoted identifier
    assert names("```python\n[mkdir(dir_name='P')]\n```") == []  # a tagged fence fails
    assert names("```\n[mkdir(dir_name='P')]\n```") == [("mkdir", {"dir_name": "P"})]  # a plain fence is stripped
    assert names("I will create it: [mkdir(dir_name='P')]") == []  # prose fails the step
    assert names("cd('x', y=1)") == [("cd", {"y": 1})]  # positional arguments dropped
    assert names("GorillaFileSystem.cd(folder='x')") == [("GorillaFileSystem.cd", {"folder": "x"})]
    # official mode reads pythonic raw text; structured calls (FC path) and lenient mode use the parsed calls
    step = {"raw": "cd(folder='x')", "tool_calls": [], "content": "cd(folder='x')"}
    assert step_calls(step, "official", "pythonic", "own") == [{"name": "cd", "arguments": {"folder": "x"}}]
    assert step_calls(step, "lenient", "pythonic") == [] and step_calls(step, "official", "structured") == []


@needs_bfcl
def test_qualified_names_fail_as_in_the_official_executor():
    from toolace_mt.evaluation.bfcl import official
    from toolace_mt.evaluation.bfcl.backends import make_world

    task = next(t for t in official.load_tasks(["base"]) if "GorillaFileSystem" in t["involved_classes"])
    w = make_world(task)
    assert w.execute({"name": "GorillaFileSystem.pwd", "arguments": {}}) == \
        "Error during execution: name 'GorillaFileSystem' is not defined"
    assert not w.execute({"name": "pwd", "arguments": {}}).startswith("Error")
    assert w.execute({"name": "GorillaFileSystem.kill", "arguments": {}}) == \
        "Error during execution: Function call kill is not allowed."


class TextPolicy:
    """Scripted prompting policy: answers the given texts in turn, then plain text."""

    name = "text"

    def __init__(self, texts):
        self.texts = list(texts)

    def act(self, batch):
        from toolace_mt.evaluation.policies.prompting import text_to_output

        return [text_to_output(self.texts.pop(0) if self.texts else "All done.", "auto") for _ in batch]


@needs_bfcl
def test_play_in_official_mode_runs_what_the_official_decoder_reads():
    from toolace_mt.evaluation.bfcl import official
    from toolace_mt.evaluation.bfcl.decoding import step_calls as sc
    from toolace_mt.evaluation.bfcl.harness import play

    task = next(t for t in official.load_tasks(["base"]) if "GorillaFileSystem" in t["involved_classes"])
    dec = lambda st: sc(st, "official", "pythonic", "own")  # noqa: E731
    (tr,) = play(TextPolicy(["pwd()", "```python\n[ls()]\n```"]), [task], progress=False, decode=dec,
                 call_format="pythonic")
    first = tr["turns"][0]
    assert first[0]["tool_calls"] == [{"name": "pwd", "arguments": {}}] and first[0]["results"]  # bare call ran
    assert first[1]["tool_calls"] == [] and len(first) == 2  # the fenced step decodes to nothing: turn ends
    assert tr["call_format"] == "pythonic"
    (tr2,) = play(TextPolicy(["pwd()"]), [task], progress=False)  # lenient: our parser drops the bare call
    assert tr2["turns"][0][0]["tool_calls"] == []


@needs_bfcl
def test_raw_text_agreement_with_the_official_decoder_and_checker_is_total():
    """All 800 official entries: oracle, one perturbation each and text edits (1-2 each), decoded from raw text.
    Official decoding (bfcl-eval's decoder, and our port) agrees on every entry; the lenient parser does not."""
    from toolace_mt.evaluation.bfcl.crosscheck import crosscheck
    from toolace_mt.evaluation.bfcl.decoding import official_decoder_available
    from toolace_mt.evaluation.bfcl.textedits import EDITS

    if not official_decoder_available():
        pytest.skip("bfcl-eval's decoder needs tree-sitter 0.21 + tenacity (the bfcl-decoder extra)")
    rep = crosscheck(perturb=1.0, seed=7, progress=False, raw=True)
    assert rep["n"] == 2400
    assert rep["agree_official"] == rep["agree_port"] == 2400, rep["disagreeing_ids"]
    te = rep["by_variant"]["text_edit"]
    assert 0 < te["official_correct"] < te["n"] == 800
    assert rep["agree_lenient"] < 2400  # the lenient parser is not the official decoder
    kinds = {k for r in rep["entries"] if r["variant"] == "text_edit" for k in r["text_edit"].split("+")}
    assert kinds == set(EDITS)


@needs_bfcl
def test_cli_crosscheck_raw(capsys):
    import json

    from toolace_mt.app.cli import main

    assert main(["crosscheck", "--raw", "--limit", "2", "--perturb", "1.0"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["raw"] and rep["n"] == 24 and rep["agree_official"] == rep["agree_port"] == 24
