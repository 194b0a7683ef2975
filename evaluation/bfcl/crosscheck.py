"""Cross-check: our BFCL verdicts vs the official `multi_turn_checker` on the same trajectories.

For every entry, the trajectory's calls are written as the official decoder's output (one list of
``f(k=v)`` strings per step that made calls; steps without calls dropped, as its runner drops them), the
runner's turn-count rule is applied (a length mismatch is ``force_terminated``), and the official checker
runs with a fresh model name (its env instances are cached in module globals per name and entry, so each
verdict gets its own name and the cache is cleared afterwards). Agreement must be total.

Sources: a finished evaluation run on ``source: official`` (``run_dir``), or -- by default -- fresh oracle
trajectories plus seeded perturbations of a fraction of them (`perturb.py`).

Raw-text mode (``raw=True``): every step is given to both sides as text -- the official side decodes it with
bfcl-eval's prompting decoder (a step that fails to decode or is empty is dropped, as its runner does), our
side with our decoding modes (`decoding.py`): ``official`` (bfcl-eval's decoder), ``port`` (our port of it) and
``lenient`` (our own parser's calls). Fresh raw mode writes the oracle and perturbed trajectories as text and
adds text-level edits (`textedits.py`: bare calls, unquoted identifiers, fences, qualified names, prose,
split steps, positional arguments). Agreement is reported per decoding; ``agree`` is the first one's.
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any, Optional

from toolace_mt.pycalls import format_python_call

from . import CATEGORIES, official_category
from .checker import check_entry, decode_turns

_counter = [0]


def _call_text(c: dict[str, Any]) -> str:
    """A call as the official decoder would write it; malformed calls become a call to a missing function."""
    args = c.get("arguments")
    if not isinstance(c.get("name"), str) or not (args is None or isinstance(args, dict)):
        return "malformed_call()"
    return format_python_call(c["name"], args or {})


def _official_decode_raw(turns: list[list[dict[str, Any]]]) -> list[list[list[str]]]:
    """As the official eval runner: each step's text through bfcl-eval's decoder; failures and empties dropped."""
    from .decoding import bfcl_decode_execute

    out = []
    for turn in turns:
        steps = []
        for st in turn:
            text = st.get("raw") or st.get("content") or ""
            try:
                dec = bfcl_decode_execute(text)
            except Exception:  # noqa: BLE001 - the official runner ignores any decoding failure
                continue
            if dec and not (len(dec) == 1 and not dec[0]):
                steps.append(dec)
        out.append(steps)
    return out


def official_checker(task: dict[str, Any], decoded: list[list[list[str]]]) -> dict[str, Any]:
    """bfcl-eval's `multi_turn_checker` on decoded call strings (per turn, per step), with a fresh model name
    (its env instances are cached in module globals per name and entry; the cache is cleared afterwards)."""
    from . import official

    official.ensure_project_root()
    from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

    _counter[0] += 1
    name = f"toolacexchk{_counter[0]}"
    entry = {"id": task["id"], "initial_config": task["initial_config"], "involved_classes": task["involved_classes"]}
    try:
        res = multi_turn_checker(decoded, task["ground_truth"], entry, official_category(task["category"]), name)
    except AssertionError as e:  # the official checker asserts on inconsistent instance sets
        res = {"valid": False, "error_type": f"assertion: {e}"}
    finally:
        g = vars(multi_turn_utils)
        for k in [k for k in g if k.startswith(name)]:
            del g[k]
    return {"valid": bool(res.get("valid")), "error_type": res.get("error_type")}


def official_verdict(task: dict[str, Any], turns: list[list[dict[str, Any]]], raw: bool = False) -> dict[str, Any]:
    """The official checker's verdict on our trajectory turns: {"valid", "error_type"} (``raw``: decoded from
    each step's text by the official decoder, else re-encoded from the parsed calls)."""
    if len(turns) != len(task["ground_truth"]):  # the official runner's rule, applied before its checker
        return {"valid": False, "error_type": "multi_turn:force_terminated"}
    decoded = _official_decode_raw(turns) if raw else [[[_call_text(c) for c in st["tool_calls"]]
                                                        for st in turn if st.get("tool_calls")] for turn in turns]
    return official_checker(task, decoded)


def official_step_decode(step: Any, fc: bool) -> Optional[list[str]]:
    """One recorded step as BFCL's evaluation decodes it (its FC handler's `convert_to_function_call`, or the
    prompting decoder); None when it is skipped (a decoding error, or no call)."""
    from ..policies.replay import fc_decode_execute
    from .decoding import bfcl_decode_execute

    try:
        dec = fc_decode_execute(step) if fc else bfcl_decode_execute(step)
    except Exception:  # noqa: BLE001 - the official runner ignores any decoding failure
        return None
    return None if not dec or (len(dec) == 1 and not dec[0]) else dec


def official_result_verdict(task: dict[str, Any], result: Any, fc: bool) -> dict[str, Any]:
    """The official evaluation of one RAW recorded multi-turn entry (``result`` as the result file holds it):
    its inference-error and turn-count rules, every step decoded on its own, then its checker."""
    if not isinstance(result, list):
        return {"valid": False, "error_type": "multi_turn:inference_error"}
    if len(result) != len(task["ground_truth"]):
        return {"valid": False, "error_type": "multi_turn:force_terminated"}
    decoded = [[d for d in (official_step_decode(st, fc) for st in turn) if d is not None] for turn in result]
    return official_checker(task, decoded)


RAW_DECODINGS = {"official": ("official", "auto"), "port": ("official", "own"), "lenient": ("lenient", "auto")}


def compare(task: dict[str, Any], traj: dict[str, Any], variant: str, raw: bool = False) -> dict[str, Any]:
    if "recorded" in traj:  # a replay run: the official verdict on the raw recorded entry
        return _compare_recorded(task, traj, variant)
    theirs = official_verdict(task, traj["turns"], raw=raw)
    row = {"id": task["id"], "category": task["category"], "variant": variant,
           "perturbation": traj.get("perturbation"), "text_edit": traj.get("text_edit"),
           "official": theirs["valid"], "official_error": theirs["error_type"]}
    if not raw:
        ours = check_entry(task, decode_turns(traj["turns"]))
        row.update({"ours": ours["valid"], "ours_error": ours["error_type"], "agree": ours["valid"] == theirs["valid"]})
        return row
    for label, (mode, impl) in RAW_DECODINGS.items():
        ours = check_entry(task, decode_turns(traj["turns"], mode, "pythonic", impl))
        row[f"ours_{label}"] = ours["valid"]
        row[f"agree_{label}"] = ours["valid"] == theirs["valid"]
    row["ours"], row["agree"] = row["ours_official"], row["agree_official"]
    return row


def _compare_recorded(task: dict[str, Any], traj: dict[str, Any], variant: str) -> dict[str, Any]:
    result, fc = traj["recorded"]
    theirs = official_entry_verdict(task, result, fc)
    ours = our_verdict(task, traj)
    row = {"id": task["id"], "category": task["category"], "variant": variant, "perturbation": None,
           "text_edit": None, "fc": fc, "official": theirs["valid"], "official_error": theirs["error_type"],
           "ours": ours["correct"], "ours_error": ours.get("error_type"), "agree": ours["correct"] == theirs["valid"]}
    for label in RAW_DECODINGS:
        row[f"agree_{label}"] = row["agree"]
    return row


def our_verdict(task: dict[str, Any], traj: dict[str, Any]) -> dict[str, Any]:
    """Our verdict on a played trajectory, decoded as the run decoded it ({"correct", "error_type"})."""
    if task["category"] not in CATEGORIES:
        from .single import score_single

        return score_single(task, traj)
    v = check_entry(task, decode_turns(traj.get("turns") or [], task.get("decoding", "lenient"),
                                       traj.get("call_format", "structured"), task.get("decoder", "auto")))
    return {"correct": v["valid"], "error_type": v["error_type"]}


def official_entry_verdict(task: dict[str, Any], result: Any, fc: bool) -> dict[str, Any]:
    """The official verdict on one raw recorded entry of any category this suite runs."""
    if task["category"] in CATEGORIES:
        return official_result_verdict(task, result, fc)
    from .single import official_single_verdict

    return official_single_verdict(task, result, fc)


def _fresh(categories, limit, perturb_frac, seed, text_edits: bool = False):
    from ..policies import PolicyConfig, make_policy
    from .harness import play
    from .official import load_tasks
    from .perturb import perturb

    tasks = load_tasks(categories)
    if limit:
        per: dict[str, int] = {}
        kept = []
        for t in tasks:
            if per.get(t["category"], 0) < limit:
                per[t["category"]] = per.get(t["category"], 0) + 1
                kept.append(t)
        tasks = kept
    trajs = play(make_policy(PolicyConfig(kind="oracle")), tasks, progress=False)
    rng = random.Random(seed)
    pairs = [(t, tr, "oracle") for t, tr in zip(tasks, trajs)]
    for t, tr in zip(tasks, trajs):
        if rng.random() < perturb_frac:
            _, p = perturb(tr, rng)
            pairs.append((t, p, "perturbed"))
    if text_edits:
        from .textedits import edit, owners_of, to_text

        pairs = [(t, to_text(tr), v) for t, tr, v in pairs]
        for t, tr in zip(tasks, trajs):
            pairs.append((t, edit(tr, rng, {"owners": owners_of(t)}, n_edits=rng.choice([1, 2])), "text_edit"))
    return pairs


def _from_run(run_dir):
    from toolace_mt.config import load_recipe

    from ..run import select_tasks
    from ..suites import get_suite, load_trajectories

    _, cfg, _ = load_recipe(Path(run_dir) / "recipe.yaml", expect="evaluate")
    if cfg.suite != "bfcl" or cfg.source != "official":
        raise ValueError("crosscheck --run needs a bfcl run on source: official (the official checker runs only "
                         "on the official env classes)")
    tasks = {t["id"]: t for t in select_tasks(get_suite("bfcl").load_tasks(cfg), cfg)}
    trajs = [tr for tr in load_trajectories(run_dir) if tr["task_id"] in tasks and tr.get("trial", 0) == 0]
    if cfg.policy.kind == "replay" and cfg.policy.format == "bfcl_result":
        # the official side reads the result files themselves, before anything our harness did with them
        from ..policies import make_policy

        rec = make_policy(cfg.policy)
        return [(tasks[tr["task_id"]], {**tr, "recorded": rec.recorded(tr["task_id"])}, "result_file")
                for tr in trajs]
    return [(tasks[tr["task_id"]], tr, "run") for tr in trajs]


def crosscheck(run_dir: Optional[str] = None, categories: Optional[list[str]] = None, limit: Optional[int] = None,
               perturb: float = 0.5, seed: int = 0, out: Optional[str] = None, progress: bool = True,
               raw: bool = False) -> dict[str, Any]:
    from tqdm import tqdm

    cats = categories or CATEGORIES
    t0 = time.perf_counter()
    pairs = _from_run(run_dir) if run_dir else _fresh(cats, limit, perturb, seed, text_edits=raw)
    if raw and run_dir:
        from .textedits import to_text

        pairs = [(t, tr if tr.get("call_format") == "pythonic" else to_text(tr), v) for t, tr, v in pairs]
    rows = [compare(t, tr, v, raw=raw) for t, tr, v in tqdm(pairs, desc="crosscheck", disable=not progress,
                                                             leave=False)]
    by: dict[str, dict[str, int]] = {}
    for r in rows:
        b = by.setdefault(r["variant"], {"n": 0, "agree": 0, "ours_correct": 0, "official_correct": 0})
        b["n"] += 1
        b["agree"] += r["agree"]
        b["ours_correct"] += r["ours"]
        b["official_correct"] += r["official"]
        for label in (RAW_DECODINGS if raw else ()):
            b[f"agree_{label}"] = b.get(f"agree_{label}", 0) + r[f"agree_{label}"]
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    extra = {f"agree_{label}": sum(r[f"agree_{label}"] for r in rows) for label in RAW_DECODINGS} if raw else {}
    return {"n": len(rows), "agree": sum(r["agree"] for r in rows), "raw": raw, **extra,
            "disagreements": sum(not r["agree"] for r in rows), "by_variant": by,
            "disagreeing_ids": [f"{r['id']}:{r['variant']}:{r['perturbation']}" for r in rows if not r["agree"]][:50],
            "seconds": round(time.perf_counter() - t0, 2), "entries": rows}
