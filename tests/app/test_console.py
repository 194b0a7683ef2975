"""The console of a long run (issue 25): one progress bar per training with the loss in its postfix and no raw
log dicts, each warning text once, and a closing summary of the headline numbers."""
from __future__ import annotations

import warnings

from toolace_mt.app.cli import warn_once


def test_a_warning_text_shows_once_even_when_the_registry_is_reset():
    shown: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = lambda m, c, f, n, file=None, line=None: shown.append(str(m))
        warn_once()
        warn_once()  # idempotent: one wrapper
        for _ in range(3):
            with warnings.catch_warnings():  # what libraries do; it resets the per-location registry
                warnings.warn("`x` is deprecated", FutureWarning)
            warnings.warn("`x` is deprecated", FutureWarning)
        warnings.warn("another text", FutureWarning)
    assert shown == ["`x` is deprecated", "another text"]


def test_loss_bar_postfix_and_no_raw_dicts(capsys):
    from types import SimpleNamespace

    from toolace_mt.training.progress import LossBar

    bar = LossBar("train mas")
    state = SimpleNamespace(is_world_process_zero=True, max_steps=10, global_step=0)
    bar.on_train_begin(None, state, None)
    for step in range(1, 11):
        state.global_step = step
        bar.on_step_end(None, state, None)
        if step % 5 == 0:
            bar.on_log(None, state, None, logs={"loss": "1.25", "mean_token_accuracy": 0.5, "grad_norm": 3})
    bar.on_train_end(None, state, None)
    err = capsys.readouterr().err
    assert "train mas" in err and "10/10" in err and "loss=1.250" in err and "acc=0.500" in err
    assert "{'loss'" not in err and "grad_norm" not in err


def test_headline_names_each_arm_with_its_interval():
    from toolace_mt.app.report import headline

    data = {"arms": ["base", "mas"], "recipe": {"smoke": ["tau"]},
            "evaluation": {"bfcl": {"base": {"overall": 0.0}, "mas": {"overall": 0.04}}, "tau": {"base": {}}},
            "uncertainty": {"bfcl": {"official": {"n_tasks": 100, "arms": {
                "base": {"value": 0.0, "ci95": [0.0, 0.0]}, "mas": {"value": 0.04, "ci95": [0.01, 0.08]}}}}},
            "not_run": {"ace": {"reason": "no data/acebench"}}}
    lines = headline(data)
    assert lines[0] == "bfcl official overall (100 tasks, 95% CI): Base 0.0% [0.0, 0.0] | MAS 4.0% [1.0, 8.0]"
    assert lines[1] == "ace: not run (no data/acebench)" and len(lines) == 2  # smoke rows are not headlines
