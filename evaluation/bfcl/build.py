"""Our own BFCL-layout multi-turn task sets, built from `toolace_mt.envs` (``toolace-mt bfcl-tasks``).

Each task is one JSON line in the layout of the official entries::

    {"id", "category", "backend": "own", "question": [[{"role": "user", "content"}], ...],
     "initial_config": {domain: state}, "involved_classes": [domain, ...], "ground_truth": [["f(a=1)"], [], ...],
     "missed_function": {"k": [name]}, "long_context": bool, "seed": int, "heldout": bool, "path": [...]}

How a task is made (seeded per task, so any task can be rebuilt from its recorded ``seed``): 1-2 domains are
sampled with their state; each turn picks 1-2 tools whose arguments can be filled from the live state
(``consumes`` entity values) or the domain's ``VALUE_POOLS``, executes them (a call that fails is not kept),
and writes the user message from the tool's ``phrases``. Categories:

* ``base``: 2-4 such turns;
* ``miss_param``: one turn asks for an action without its arguments (ground truth ``[]``), the next turn gives
  them (ground truth: the call) -- one extra turn;
* ``miss_func``: one turn asks for an action whose function is held out (ground truth ``[]``); the next turn
  has no user text (the harness adds the function and the official "I have updated..." message) and its
  ground truth is the call (``missed_function`` records it);
* ``long_context``: like base, with distractor records added to the starting state by the domain's
  ``add_distractors(state, rng, n)``.

``chain_prob`` (default 0: no such turn, and the task sets built before it existed are unchanged): the share of
ordinary turns that ask for a *dependent* second step -- a call whose output holds exactly one value of an
entity kind, then a call that consumes that value, which the user names only by reference ("... the card id from
that result"). The value is not in the user's words, so the second call can only be made after the first one's
result; ``gt_steps`` records such a turn's steps (``{"turn": [1, 1]}``), so the oracle and the gold dialogue answer
in two steps. The official checker reads the turn's calls as one unordered list, as for any turn.

Every task is replayed on fresh envs before it is written: all ground-truth calls must succeed.
``manifest.json`` records the seed, domains, held-out domains (tasks in them carry ``heldout: true``), counts
and what was skipped and why.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any, Optional

from toolace_mt.pycalls import format_python_call
from toolace_mt.runs import atomic_write_json, atomic_write_text

from . import CATEGORIES

VERSION = "own-bfcl-v1"
MAX_TRIES = 40  # chosen: attempts per task before the builder gives up on that slot and records it


class CannotBuild(Exception):
    pass


def task_seed(seed: int, category: str, index: int) -> int:
    return int(hashlib.sha256(f"{seed}:{category}:{index}".encode()).hexdigest()[:12], 16)


def _has_distractors(cls: type) -> bool:
    """Whether the domain implements `Env.add_distractors` (the base raises NotImplementedError)."""
    from toolace_mt.envs import Env

    fn = getattr(cls, "add_distractors", None)
    base = getattr(Env, "add_distractors", None)
    return fn is not None and getattr(fn, "__func__", fn) is not getattr(base, "__func__", None)


def _fill_args(env, spec, rng: random.Random, phrase: str) -> Optional[dict[str, Any]]:
    """Arguments for every required parameter and every parameter the phrase mentions, or None."""
    props = spec.parameters.get("properties", {})
    wanted = list(dict.fromkeys(spec.required + [p for p in re.findall(r"{(\w+)}", phrase) if p in props]))
    args = {}
    for p in wanted:
        kind = spec.consumes.get(p)
        pool = env.entity_values(kind) if kind else []
        if not pool:
            pool = list(type(env).VALUE_POOLS.get(p, []))
        if not pool and "enum" in props.get(p, {}):
            pool = list(props[p]["enum"])
        if not pool:
            return None
        args[p] = rng.choice(sorted(pool, key=repr))
    return args


def _render(phrase: str, args: dict[str, Any]) -> str:
    return re.sub(r"{(\w+)}", lambda m: str(args.get(m.group(1), m.group(0))), phrase)


def _vague(spec) -> str:
    """A request for the tool's action that names none of its arguments (for miss_param)."""
    desc = (spec.func.__doc__ or spec.name).strip().splitlines()[0].rstrip(".")
    return f"Please {desc[0].lower()}{desc[1:]}."


def _pick_call(envs: dict[str, Any], rng: random.Random, exclude: set[str], need_args: bool = False):
    """Pick a tool of some domain and arguments that succeed now; returns (domain, spec, args, phrase)."""
    options = [(d, s) for d, e in envs.items() for s in e.tool_specs().values() if s.name not in exclude]
    rng.shuffle(options)
    for dom, spec in options:
        if need_args and not spec.required:
            continue
        env = envs[dom]
        phrase = rng.choice(spec.phrases) if spec.phrases else ""
        args = _fill_args(env, spec, rng, phrase)
        if args is None:
            continue
        if not phrase:
            phrase = f"Please use {spec.name} with " + ", ".join(f"{k}={{{k}}}" for k in args) + "."
        snap = env.snapshot()
        res = env.execute(spec.name, args)
        if res.ok:
            return dom, spec, args, phrase
        env.restore(snap)
    return None


def _ref_request(spec, args: dict[str, Any], ref: str) -> str:
    """The dependent request, its value `ref` named only as "the <param> from that result". Not the tool's phrase:
    "Did order {order_id} go through?" would read "Did order the order id from that result go through?", which a
    live model's answerers flagged (2026-12-07); the tool's description names the action, the values follow it:
    "Please get the status of an order (the order id from that result)." The phrase still picks the arguments."""
    d = spec.schema["function"].get("description", "").strip().split("\n")[0].rstrip(".") or spec.name.replace("_", " ")
    words = [f"{k.replace('_', ' ')} {v}" for k, v in args.items() if k != ref]
    words.append("the " + ref.replace("_", " ") + " from that result")
    return f"Please {d[:1].lower() + d[1:]} ({', '.join(words)})."


def _pick_chain(envs: dict[str, Any], rng: random.Random):
    """A dependent pair on one domain's live env: (user text, [call1, call2], [path entries]), or None. The first
    call's output holds exactly one value of a kind the second call consumes; the user names that value only as
    "the <param> from that result". Both calls are executed (the state moves on), or neither."""
    from toolace_mt.envs import extract

    firsts = [(d, s) for d, e in envs.items() for s in e.tool_specs().values() if s.produces and s.phrases]
    rng.shuffle(firsts)
    for dom, first in firsts:
        env = envs[dom]
        phrase1 = rng.choice(first.phrases)
        args1 = _fill_args(env, first, rng, phrase1)
        seconds = [s for s in env.tool_specs().values()
                   if s.name != first.name and any(k in first.produces for k in s.consumes.values())]
        if args1 is None or not seconds:
            continue
        snap = env.snapshot()
        res1 = env.execute(first.name, args1)
        if not res1.ok:
            env.restore(snap)
            continue
        text1 = _render(phrase1, args1)
        rng.shuffle(seconds)
        for second in seconds:
            for p, kind in second.consumes.items():
                if kind not in first.produces:
                    continue
                vals = list(dict.fromkeys(v for v in extract(res1.output, first.produces[kind])
                                          if isinstance(v, (str, int)) and not isinstance(v, bool)))
                phrases = [ph for ph in second.phrases if "{" + p + "}" in ph]
                if len(vals) != 1 or str(vals[0]) in text1 or not phrases:
                    continue  # ambiguous, already in the user's words, or no way to say it
                phrase2 = rng.choice(phrases)
                args2 = _fill_args(env, second, rng, phrase2)
                if args2 is None:
                    continue
                args2[p] = vals[0]
                snap2 = env.snapshot()
                res2 = env.execute(second.name, args2)
                if not res2.ok:
                    env.restore(snap2)
                    continue
                text2 = _ref_request(second, args2, p)
                calls = [format_python_call(first.name, args1), format_python_call(second.name, args2)]
                return f"{text1} Then: {text2}", calls, [f"{dom}.{first.name}", f"{dom}.{second.name}"]
        env.restore(snap)
    return None


def _build_one(category: str, seed: int, env_classes: dict[str, type], n_distractors: int,
               max_domains: int = 2, turns: tuple[int, int] = (2, 4), chain_prob: float = 0.0) -> dict[str, Any]:
    rng = random.Random(seed)
    doms = sorted(env_classes)
    k = 2 if len(doms) > 1 and rng.random() < 0.4 else 1  # chosen: ~40% two-domain tasks, as BFCL mixes classes
    k = min(k, max_domains)
    chosen = rng.sample(doms, k)
    states = {d: env_classes[d].sample_state(random.Random(rng.randrange(2**31))) for d in chosen}
    if category == "long_context":
        for d in chosen:
            if not _has_distractors(env_classes[d]):
                raise CannotBuild(f"domain {d} has no add_distractors")
            new = env_classes[d].add_distractors(states[d], random.Random(rng.randrange(2**31)), n_distractors)
            states[d] = new if new is not None else states[d]
    envs = {d: env_classes[d](state=states[d]) for d in chosen}
    n_turns = rng.randint(*turns)
    special = rng.randrange(n_turns) if category in ("miss_param", "miss_func") else -1
    questions, gts, path, missed, steps = [], [], [], {}, {}
    used: set[str] = set()
    for t in range(n_turns):
        if t == special:
            held = used if category == "miss_func" else set()
            pick = _pick_call(envs, rng, exclude=held, need_args=category == "miss_param")
            if pick is None:
                raise CannotBuild("no call for the special turn")
            dom, spec, args, phrase = pick
            call = format_python_call(spec.name, args)
            if category == "miss_param":
                questions.append([{"role": "user", "content": _vague(spec)}])
                gts.append([])
                given = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in args.items())
                questions.append([{"role": "user", "content": f"Sorry, I forgot to say: use {given}."}])
            else:
                questions.append([{"role": "user", "content": _render(phrase, args)}])
                gts.append([])
                questions.append([])
                missed[str(len(questions) - 1)] = [spec.name]
            gts.append([call])
            path.append(f"{dom}.{spec.name}")
            used.add(spec.name)
            continue
        # chosen: the draw only when asked for, so a set built with chain_prob 0 is the one built before it existed
        chain = _pick_chain(envs, rng) if chain_prob and rng.random() < chain_prob else None
        if chain is not None:
            text, calls, where = chain
            questions.append([{"role": "user", "content": text}])
            gts.append(calls)
            steps[str(len(questions) - 1)] = [1, 1]
            path.extend(where)
            used.update(w.split(".", 1)[1] for w in where)
            continue
        n_calls = 1 if rng.random() < 0.6 else 2
        texts, calls = [], []
        for _ in range(n_calls):
            pick = _pick_call(envs, rng, exclude=set())
            if pick is None:
                break
            dom, spec, args, phrase = pick
            texts.append(_render(phrase, args))
            calls.append(format_python_call(spec.name, args))
            path.append(f"{dom}.{spec.name}")
            used.add(spec.name)
        if not calls:
            raise CannotBuild("no executable call")
        questions.append([{"role": "user", "content": " Then: ".join(texts)}])
        gts.append(calls)
    task = {"category": category, "backend": "own", "question": questions,
            "initial_config": {d: states[d] for d in chosen}, "involved_classes": chosen,
            "ground_truth": gts, "missed_function": missed, "long_context": category == "long_context",
            "seed": seed, "path": path}
    if steps:
        task["gt_steps"] = steps
    _replay_ok(task)
    return task


def _replay_ok(task: dict[str, Any]) -> None:
    """Every ground-truth call must succeed when replayed on fresh envs from the recorded state."""
    from toolace_mt.envs import get_env
    from toolace_mt.pycalls import parse_python_calls

    envs = {d: get_env(d)(state=task["initial_config"][d]) for d in task["involved_classes"]}
    owner = {n: e for e in envs.values() for n in e.tool_specs()}
    for turn in task["ground_truth"]:
        for s in turn:
            c = parse_python_calls(s)[0]
            r = owner[c["name"]].execute(c["name"], c["arguments"])
            if not r.ok:
                raise CannotBuild(f"replay failed: {s}: {r.error.message}")
    json.dumps(task)  # must be JSON


def build_task_set(out: Path, per_category: int = 50, seed: int = 0, domains: Optional[list[str]] = None,
                   heldout_domains: Optional[list[str]] = None, n_distractors: int = 40,
                   categories: Optional[list[str]] = None, max_domains: int = 2,
                   turns: Optional[list[int]] = None, id_style: Optional[str] = None,
                   chain_prob: float = 0.0) -> dict[str, Any]:
    """Write ``out/tasks.jsonl`` and ``out/manifest.json``; returns the manifest.

    ``max_domains`` 1 makes single-domain tasks, ``turns`` [lo, hi] the user turns before a special turn's extra
    one (default [2, 4]), ``id_style`` the env samplers' id style (`toolace_mt.envs.base.use_id_style`),
    ``chain_prob`` the share of ordinary turns with a dependent second step (module docstring)."""
    from toolace_mt.envs.base import use_id_style

    with use_id_style(id_style):
        return _build_task_set(out, per_category, seed, domains, heldout_domains, n_distractors, categories,
                               max_domains, tuple(turns or (2, 4)), chain_prob)


def _build_task_set(out, per_category, seed, domains, heldout_domains, n_distractors, categories, max_domains,
                    turns, chain_prob=0.0) -> dict[str, Any]:
    from toolace_mt.envs import all_envs
    from toolace_mt.envs.base import id_style

    if max_domains < 1 or len(turns) != 2 or not 1 <= turns[0] <= turns[1]:
        raise ValueError(f"max_domains must be >= 1 and turns [lo, hi] with 1 <= lo <= hi; got {max_domains}, "
                         f"{list(turns)}")
    if isinstance(chain_prob, bool) or not isinstance(chain_prob, (int, float)) or not 0 <= chain_prob <= 1:
        raise ValueError(f"chain_prob must be a number in [0, 1]; got {chain_prob!r}")

    envs = all_envs()
    if domains:
        unknown = [d for d in domains if d not in envs]
        if unknown:
            raise ValueError(f"unknown domains {unknown}; known: {sorted(envs)}")
        envs = {d: envs[d] for d in domains}
    held = set(heldout_domains or [])
    rows, skipped, counts = [], [], {}
    for cat in categories or CATEGORIES:
        pool = envs
        if cat == "long_context":
            pool = {d: c for d, c in envs.items() if _has_distractors(c)}
            missing = sorted(set(envs) - set(pool))
            if missing:
                skipped.append({"category": cat, "reason": f"domains without add_distractors: {missing}"})
            if not pool:
                counts[cat] = 0
                continue
        n = 0
        for i in range(per_category):
            last = None
            for attempt in range(MAX_TRIES):
                s = task_seed(seed, cat, i * MAX_TRIES + attempt)
                try:
                    task = _build_one(cat, s, pool, n_distractors, max_domains, turns, chain_prob)
                    break
                except CannotBuild as e:
                    last = str(e)
            else:
                skipped.append({"category": cat, "index": i, "reason": last})
                continue
            task = {"id": f"own_{cat}_{i}", **task, "heldout": bool(held & set(task["involved_classes"]))}
            rows.append(task)
            n += 1
        counts[cat] = n
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    out = Path(out)
    atomic_write_text(out / "tasks.jsonl", text)
    manifest = {"version": VERSION, "seed": seed, "per_category": per_category, "domains": sorted(envs),
                "heldout_domains": sorted(held), "n_distractors": n_distractors, "counts": counts,
                "max_domains": max_domains, "turns": list(turns), "id_style": id_style(),
                **({"chain_prob": chain_prob} if chain_prob else {}),
                "n_tasks": len(rows), "sha256": hashlib.sha256(text.encode()).hexdigest(), "skipped": skipped}
    atomic_write_json(out / "manifest.json", manifest)
    return manifest
