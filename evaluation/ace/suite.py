"""The `ace` suite: ACEBench-style normal, special and agent categories.

Sources: ``own`` (our deterministic items: `own_tasks` + `agent_tasks`) and ``official`` (any directory in the
ACEBench layout: the recipe's ``tasks``, else ``$TOOLACE_ACEBENCH_DIR``, else ``data/acebench``, which
`toolace-mt data acebench` fills; see `data.py`). The official
agent categories need executable copies of ACEBench's own scenario classes, which we do not ship: they are
skipped and listed under ``not_run`` in the summary; our agent categories run on our own environments.

Every item is scored twice: ``correct`` by our corrected checker (the headline), and ``compat_correct`` by a
re-implementation of the official scorer's behaviour (`checker.py`), so numbers can be compared with published
ones. Summary: per category (multi-turn normal categories count whole conversations; agent categories are
end-to-end accuracy, with process accuracy beside), normal = mean of its categories, special = mean of 3,
agent = mean of the 2 end-to-end accuracies, overall = 0.2676 special + 0.578 normal + 0.1545 agent computed as
ACEBench's Summary does (a category not run counts 0; rounded to 3 decimals), ``overall_renormalised`` over the
groups present (labelled: not ACEBench's figure), and the same under ``compat_acebench``. The comparison
report's ACEBench rows (`report_rows`, `paper_rows`) read ``compat_acebench`` (the official scorer's verdicts,
item for item); the corrected checker's figures are extra rows, labelled.

``options``: ``language`` (en), ``user`` (scripted | llm) and ``user_llm`` for agent_multi_turn.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Optional

from toolace_mt.pycalls import format_python_calls

from ...config import RecipeError
from ..policy import PolicyInput
from ..stats import category_intervals
from ..suites import Suite, mean, register_suite, save_trajectory, summarize_diagnostics
from ..episodes.domain import Task
from ..episodes.orchestrator import run_episodes
from ..episodes.users import STOP, ScriptedUser, make_user
from . import official_agent
from .agent_envs import AGENT_ENVS
from .agent_tasks import build_agent_tasks
from .data import official_dir
from .checker import (compat_normal, corrected_normal, gt_function_name, names_match, special_phrase_said,
                      special_reasons)
from .official import AGENT, NORMAL, SPECIAL, load_official, question_to_messages
from .own_tasks import build_normal_special, special_gold_text
from .schema_map import to_tool

WEIGHTS = {"special": 0.2676, "normal": 0.578, "agent": 0.1545}  # ACEBench's overall weights (its leaderboard formula)
USER_STOP = "finish conversation"  # ACEBench's user-simulator stop phrase
DEFAULT_AGENT_STEPS = 30  # chosen: every own agent task needs <= 6 actions + 3 replies
CHUNK = 64  # chosen: single-step items go to the policy in chunks, saved as each chunk finishes
_OPTION_KEYS = {"language", "user", "user_llm"}

SYSTEM = """You are a helpful assistant that can call functions.{time}{profile}

When the user's request can be done with the functions, call them with argument values taken from the
conversation. If the request lacks a value for a required parameter, call nothing and answer exactly:
"Missing necessary parameters (<parameter>, ...) for the api (<function name>)". If a value the user gave is
invalid for its parameter, call nothing and answer exactly: "There is incorrect value (<value>) for the
parameters (<parameter>) in the conversation history." If none of the functions can do what is asked, answer
exactly: "Due to the limitations of the function, I cannot solve this problem." """

AGENT_SYSTEM = """You are an assistant operating a {what} through functions. Work out which calls the request
needs, make them one at a time, and reply to the user in plain text when the request is done. Current time:
2025-03-01 09:00."""


def item_messages(task: dict[str, Any]) -> list[dict[str, Any]]:
    time = f" Current time: {task['time']}." if task.get("time") else ""
    prof = f"\nUser profile: {task['profile']}" if task.get("profile") else ""
    return [{"role": "system", "content": SYSTEM.format(time=time, profile=prof).strip()}] + \
        question_to_messages(task["question"])


def item_gold(task: dict[str, Any]) -> dict[str, Any]:
    gt, cat = task["ground_truth"], task["category"]
    if cat.startswith("special"):
        return {"content": task.get("gold_text") or special_gold_text(cat, gt)}
    alt = gt[0] if isinstance(gt, list) else gt
    names = {f["name"] for f in task["functions"]}
    return {"tool_calls": [{"name": gt_function_name(k, names), "arguments": v} for k, v in alt.items()]}


def _agent_env(task: Task):
    cls = AGENT_ENVS[task.domain]
    env = cls()
    what = "phone (wifi, messages, reminders, food delivery)" if task.domain == "phone" else "travel booking system"
    return env, cls.tool_schemas(), AGENT_SYSTEM.format(what=what)


def _class_states(env_name: str, classes: list[str], actions: list[dict[str, Any]]) -> dict[str, Any]:
    env = AGENT_ENVS[env_name]()
    for a in actions:
        env.execute(a["name"], a.get("kwargs") or {})
    return {c: env.state.get(c) for c in classes}


def _compat_state_ok(gt: dict[str, Any], got: dict[str, Any]) -> bool:
    """The official end-to-end rule: each attribute equal; for dict attributes, each GT key equal (extra keys in
    the model's dict are not penalised)."""
    for cls, attrs in gt.items():
        mine = got.get(cls)
        if not isinstance(mine, dict) or set(mine) - set(attrs):
            return False
        for k, v in attrs.items():
            if isinstance(v, dict):
                if not isinstance(mine.get(k), dict) or any(kk not in mine[k] or mine[k][kk] != vv
                                                            for kk, vv in v.items()):
                    return False
            elif mine.get(k) != v:
                return False
    return True


def _in_order(milestones: list, process: list, same) -> float:
    """ACEBench's process accuracy: the share of milestones found one after another in the executed calls
    (the longest prefix of the milestones that is a subsequence of the process), 1.0 when there are none."""
    if not milestones:
        return 1.0
    i = 0
    for p in process:
        if i < len(milestones) and same(milestones[i], p):
            i += 1
    return i / len(milestones)


# ACEBench's "Multi-turn" and "Agent PA" columns of the paper's Table 1 (paper §7.1), from our categories
PAPER_MULTI_TURN = ["normal_multi_turn_user_adjust", "normal_multi_turn_user_switch"]
PAPER_AGENT = ["agent_multi_turn", "agent_multi_step"]


def official_overall(categories: dict[str, float]) -> float:
    """ACEBench's Summary (`model_eval/evaluation_helper.py`, `generate_result_csv`): each group is the unweighted
    mean over ALL its categories, a category not run counting 0; the summary is the weighted sum of the three
    groups (the weights sum to 1.0001), rounded to 3 decimals."""
    groups = {g: mean(categories.get(c, 0.0) for c in members)
              for g, members in (("normal", NORMAL), ("special", SPECIAL), ("agent", AGENT))}
    return round(sum(w * groups[g] for g, w in WEIGHTS.items()), 3)


def renormalised_overall(groups: dict[str, float]) -> float:
    """The weighted mean over the groups present only, each the mean of its categories run (NOT ACEBench's
    figure; shown labelled as renormalised)."""
    w = sum(WEIGHTS[g] for g in groups)
    return sum(WEIGHTS[g] * v for g, v in groups.items()) / w if w else 0.0


def official_agent_root(data_dir: Path) -> Optional[Path]:
    """The repository root of an ACEBench download, from its data directory (``<root>/data_all/data_en``), when
    the source files are there too (`toolace-mt data acebench` puts both under one root)."""
    for cand in (Path(data_dir), *Path(data_dir).parents):
        if (cand / "model_inference").is_dir() or (cand / "data_all").is_dir():
            return cand if (cand / "model_inference").is_dir() else None
    return None


def _official_agent_task(t: dict[str, Any]) -> dict[str, Any]:
    """The episode fields (`Task`) of an official agent item: the question is the user's instruction (and the
    scripted user's one line); the oracle's gold is the first alternative of the milestones."""
    gold = official_agent.gold_actions(t)
    return {"task_id": t["id"], "domain": t["category"], "user_id": "", "instruction": t["question"],
            "script": [{"say": t["question"], "actions": gold, "reply": "Done."}], "outputs": []}


def _compat(summary: dict[str, Any]) -> dict[str, Any]:
    """The official-compatible half of an ACE summary (older summaries without it: the top level)."""
    return summary.get("compat_acebench") or summary


def _process_items(scores: list[dict[str, Any]], key: str) -> dict[str, list[float]]:
    """Per agent category, every item's process accuracy (for the interval of PA)."""
    out: dict[str, list[float]] = {}
    for s in scores:
        if s["category"].startswith("agent"):
            out.setdefault(s["category"], []).append(float(s.get(key, 0.0)))
    return out


def _mean_of(xs: list[Any]) -> Optional[float]:
    xs = [x for x in xs if isinstance(x, (int, float))]
    return sum(xs) / len(xs) if xs else None


@register_suite("ace")
class AceSuite(Suite):
    table_rank = 1  # the paper's table: BFCL, ACEBench, tau-bench

    def overall_row(self, by_arm: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        """The headline as ACEBench's own Summary computes it: official-compatible verdicts, a group not run
        counting 0."""
        return ("overall (official-compatible; a group not run counts 0)",
                {a: _compat(s).get("overall") for a, s in by_arm.items()})

    def report_rows(self, by_arm: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """The paper reports ACEBench's groups and two headline metrics, not the 17 categories (those stay in
        the evaluation's own report.md). The paper's rows use the official-compatible scores (those the official
        scorer gives, item for item); the corrected checker's figures follow as clearly labelled extra rows."""
        any_s = next(iter(by_arm.values()))
        rows = [(g, {a: _compat(s).get("groups", {}).get(g) for a, s in by_arm.items()})
                for g in _compat(any_s).get("groups") or {}]
        for metric, cats, key in (("multi-turn (paper)", PAPER_MULTI_TURN, "categories"),
                                  ("agent PA (paper)", PAPER_AGENT, "process_accuracy")):
            vals = {a: _mean_of([(_compat(s).get(key) or {}).get(c) for c in cats]) for a, s in by_arm.items()}
            if any(v is not None for v in vals.values()):
                rows.append((metric, vals))
        if any(_compat(s).get("groups_missing", s.get("groups_missing")) for s in by_arm.values()):
            rows.append(("overall renormalised over the groups run (not ACEBench's figure)",
                         {a: _compat(s).get("overall_renormalised") for a, s in by_arm.items()}))
        extra = "(corrected checker, extra; not the official scorer)"
        rows.append((f"overall {extra}", {a: s.get("overall") for a, s in by_arm.items()}))
        for metric, cats, key in ((f"multi-turn {extra}", PAPER_MULTI_TURN, "categories"),
                                  (f"agent PA {extra}", PAPER_AGENT, "process_accuracy")):
            vals = {a: _mean_of([(s.get(key) or {}).get(c) for c in cats]) for a, s in by_arm.items()}
            if any(v is not None for v in vals.values()):
                rows.append((metric, vals))
        return rows

    def paper_rows(self, summary: dict[str, Any]) -> list[dict[str, Any]]:
        """The paper's ACEBench cells (multi-turn, agent end-to-end, agent PA) from one summary, official-
        compatible, each with its n and a 95% interval: for the means of two categories' rates the interval of a
        mean of rates (`stats.mean_of_rates_interval`; Wilson for one category); PA is a mean of per-item
        fractions, so its interval is a percentile bootstrap over items."""
        from ..stats import bootstrap_mean, mean_of_rates_interval

        c = _compat(summary)
        ivs = c.get("intervals") or {}
        rows = []
        mt = [cat for cat in PAPER_MULTI_TURN if cat in (c.get("categories") or {})]
        if mt:
            rows.append({"metric": "multi-turn", "value": _mean_of([c["categories"][x] for x in mt]),
                         **mean_of_rates_interval([ivs.get(x) or {} for x in mt])})
        ag = [cat for cat in PAPER_AGENT if cat in (c.get("categories") or {})]
        if ag:
            rows.append({"metric": "agent end-to-end", "value": _mean_of([c["categories"][x] for x in ag]),
                         **mean_of_rates_interval([ivs.get(x) or {} for x in ag])})
            items = ((summary.get("process_items") or {}).get("compat_acebench") or {})
            pooled = [v for x in ag for v in items.get(x, [])]
            rows.append({"metric": "agent PA", "value": _mean_of([c["process_accuracy"].get(x) for x in ag]),
                         **bootstrap_mean(pooled)})
        return rows

    def check_config(self, cfg) -> None:
        if cfg.source not in ("own", "official"):
            raise RecipeError(f"suite ace: source must be 'own' or 'official' (got {cfg.source!r})")
        bad = set(cfg.options) - _OPTION_KEYS
        if bad:
            raise RecipeError(f"suite ace: unknown options {sorted(bad)}; known: {sorted(_OPTION_KEYS)}")
        unknown = set(cfg.categories) - set(NORMAL + SPECIAL + AGENT)
        if unknown:
            raise RecipeError(f"suite ace: unknown categories {sorted(unknown)}")

    def load_tasks(self, cfg) -> list[dict[str, Any]]:
        self.check_config(cfg)
        if cfg.source == "own":
            return build_normal_special() + build_agent_tasks()
        path = official_dir(cfg.tasks, cfg.options.get("language", "en"))
        tasks = load_official(path, NORMAL + SPECIAL, language=cfg.options.get("language", "en"))
        wanted = [c for c in AGENT if not cfg.categories or c in cfg.categories]
        if wanted and cfg.options.get("language", "en") == "en":
            root = official_agent_root(path)
            why = official_agent.importable(root) if root else "the ACEBench source is not beside the data"
            if why is None:  # ACEBench's own scenario classes and evaluation are here: its agent items run
                for t in load_official(path, wanted, language="en"):
                    tasks.append({**t, "acebench_dir": str(root), **_official_agent_task(t)})
            else:
                self.agent_not_run = why
        missing = [t["id"] for t in tasks if t["missing_answer"]]
        if missing:
            raise RecipeError(f"suite ace: items without a possible answer: {missing[:5]}")
        return tasks

    def version(self, cfg) -> str:
        tasks = [{k: v for k, v in t.items() if k != "acebench_dir"} for t in self.load_tasks(cfg)]  # not where
        blob = json.dumps(tasks, sort_keys=True).encode()
        return f"ace-{cfg.source}-" + hashlib.sha256(blob).hexdigest()[:12]

    # ---- running ------------------------------------------------------------------------------------------
    def run(self, policy, tasks, cfg, out_dir, trial: int = 0):
        single = [t for t in tasks if not t["category"].startswith("agent")]
        agent = [t for t in tasks if t["category"].startswith("agent")]
        trajs = self._run_single(policy, single, cfg, out_dir, trial)
        if agent:
            trajs += self._run_agent(policy, agent, cfg, out_dir, trial)
        return trajs

    def _run_single(self, policy, tasks, cfg, out_dir, trial):
        out = []
        bar = None
        if cfg.progress and tasks:
            from tqdm import tqdm

            bar = tqdm(total=len(tasks), desc=f"ace trial {trial}", unit="item")
        for i in range(0, len(tasks), CHUNK):
            chunk = tasks[i:i + CHUNK]
            inputs = [PolicyInput(messages=item_messages(t), tools=[to_tool(f) for f in t["functions"]],
                                  gold=item_gold(t), task_id=t["id"]) for t in chunk]
            for t, o in zip(chunk, policy.act(inputs)):
                tr = {"task_id": t["id"], "category": t["category"], "trial": trial, "content": o.content,
                      "tool_calls": o.tool_calls, "raw": o.raw, "parse_errors": o.parse_errors,
                      "prompt_tokens": o.prompt_tokens, "completion_tokens": o.completion_tokens}
                save_trajectory(out_dir, tr)
                out.append(tr)
            if bar:
                bar.update(len(chunk))
        if bar:
            bar.close()
        return out

    def _run_agent(self, policy, tasks, cfg, out_dir, trial):
        cats = {t["id"]: t["category"] for t in tasks}
        by_id = {t["id"]: t for t in tasks}
        src_tasks = [t for t in tasks if t.get("acebench_dir")]
        make_env = _agent_env
        if src_tasks:  # the official items: ACEBench's own scenario classes from the download
            src = official_agent.AceSource.load(Path(src_tasks[0]["acebench_dir"]))

            def make_env(task: Task):
                item = by_id[task.task_id]
                if not item.get("acebench_dir"):
                    return _agent_env(task)
                return (official_agent.SourceEnv(src, item), [to_tool(f) for f in item["functions"]],
                        src.system_prompt(item))

        def done(tr):
            tr["category"] = cats[tr["task_id"]]
            save_trajectory(out_dir, tr)

        out = []
        steps = cfg.max_steps or DEFAULT_AGENT_STEPS
        for cat in ("agent_multi_step", "agent_multi_turn"):
            group = [Task.from_dict(t) for t in tasks if t["category"] == cat]
            if group:
                # multi-step has no user: the scripted user only delivers the request and stops after the reply
                user = ScriptedUser() if cat == "agent_multi_step" else make_user(cfg.options, seed=cfg.seed + trial)
                trs = run_episodes(policy, group, user, trial=trial, max_steps=steps, on_done=done,
                                   make_env=make_env, stop_tokens=(STOP, USER_STOP))
                for tr in trs:
                    tr["category"] = cats[tr["task_id"]]
                out += trs
        return out

    def export_results(self, cfg, out_dir) -> dict[str, Any]:
        """Official items: the answers also in ACEBench's result layout (``acebench_result/<model>/``)."""
        if cfg.source != "official":
            return {}
        from ..bfcl.export import model_dir_name

        paths = export_official_results(out_dir, Path(out_dir) / "acebench_result", model_dir_name(cfg.policy.label))
        return {"exported": {"layout": "acebench_result", "files": [str(p.relative_to(out_dir)) for p in paths]}}

    def scoring_info(self, cfg) -> dict[str, Any]:
        return {"decoding": "raw answer text",
                "scoring": "corrected checker; compat_acebench = the official scorer's behaviour on the raw text "
                           "(the paper's figures); official agent items: ACEBench's own agent_eval / "
                           "agent_eval_process (both fields)"}

    # ---- scoring ------------------------------------------------------------------------------------------
    def score(self, task, trajectory):
        cat = task["category"]
        base = {"task_id": task["id"], "category": cat, "trial": trajectory.get("trial", 0)}
        if cat.startswith("agent"):
            return {**base, **self._score_agent(task, trajectory)}
        calls = trajectory.get("tool_calls") or []
        content = trajectory.get("content") or ""
        compat_raw = raw_answer(trajectory)  # the official scorer reads the model's text, not our parse
        if cat.startswith("special"):
            kind = cat[len("special_"):]
            reasons = special_reasons(kind, content, task["ground_truth"])
            if calls:
                reasons = ["called a function instead of answering"] + reasons
            compat = special_reasons(kind, compat_raw, task["ground_truth"])
            # graded, not official: made no call / said the kind's phrase
            diag = {"name_match": float(not calls), "special_phrase": float(special_phrase_said(kind, content))}
        else:
            reasons = corrected_normal(calls, task["ground_truth"], task["functions"])
            compat = compat_normal(compat_raw, task["ground_truth"], task["functions"], "multi_turn" in cat)
            diag = {"name_match": float(names_match(calls, task["ground_truth"], task["functions"]))}
        out = {**base, "correct": not reasons, "score": float(not reasons), "reasons": reasons,
               "compat_correct": not compat, "compat_reasons": compat, "diagnostics": diag}
        if task.get("conversation"):
            out["conversation"] = task["conversation"]
        return out

    def _score_agent(self, task, traj) -> dict[str, Any]:
        if task.get("acebench_dir"):
            return self._score_official_agent(task, traj)
        t = Task.from_dict(task)
        classes = task["involved_classes"]
        done = [a for a in traj.get("actions", []) if a.get("ok", True)]
        got = _class_states(t.domain, classes, traj.get("actions", []))
        want = _class_states(t.domain, classes, t.actions)
        e2e = got == want
        compat_e2e = _compat_state_ok(want, got)
        gold = t.actions
        proc = 1.0 if e2e else _in_order(gold, done, lambda g, p: g["name"] == p["name"] and g["kwargs"] == p["kwargs"])
        fmt = lambda a: format_python_calls([{"name": a["name"], "arguments": a.get("kwargs") or {}}])  # noqa: E731
        compat_proc = 1.0 if compat_e2e else _in_order([fmt(g) for g in gold], [fmt(p) for p in done],
                                                       lambda g, p: g.strip() == p.strip())
        reasons = [] if e2e else [f"final state of {c} differs from the gold replay" for c in classes
                                  if got.get(c) != want.get(c)]
        return {"correct": e2e, "score": float(e2e), "reasons": reasons, "process": proc,
                "compat_correct": compat_e2e, "compat_process": compat_proc,
                "termination": traj.get("termination"),
                "diagnostics": {"process": proc}}  # the corrected process accuracy, surfaced beside the others

    @staticmethod
    def _score_official_agent(task, traj) -> dict[str, Any]:
        """ACEBench's own agent evaluation (end-to-end and process accuracy) on the saved episode: the calls are
        re-run on fresh scenario instances and the agent's call messages written as ACEBench's agents write them.
        The official scorer is the only one here, so the compat and the corrected fields are the same."""
        src = official_agent.AceSource.load(Path(task["acebench_dir"]))
        result = official_agent.replay(src, task, traj.get("actions", []))
        process = [official_agent.message_string([{"name": c["function"]["name"], "kwargs": c["function"]["arguments"]}
                                                  for c in m["tool_calls"]])
                   for m in traj.get("messages") or [] if m.get("role") == "assistant" and m.get("tool_calls")]
        v = official_agent.official_verdict(src, task, result, process)
        reasons = [] if v["correct"] else ["ACEBench agent_eval: the saved class attributes differ from the ground truth"]
        return {"correct": v["correct"], "score": float(v["correct"]), "reasons": reasons, "process": v["process"],
                "compat_correct": v["correct"], "compat_process": v["process"], "termination": traj.get("termination"),
                "assistant_turns": sum(1 for m in traj.get("messages") or [] if m.get("role") == "assistant"),
                "diagnostics": {"process": v["process"]}}

    # ---- summary ------------------------------------------------------------------------------------------
    @staticmethod
    def aggregate(scores: list[dict[str, Any]], key: str = "correct", process_key: str = "process") -> dict:
        by_cat: dict[str, list[dict]] = {}
        for s in scores:
            by_cat.setdefault(s["category"], []).append(s)
        cats, proc, counts = {}, {}, {}
        for cat, rows in sorted(by_cat.items()):
            counts[cat] = len(rows)
            if cat.startswith("normal_multi_turn"):
                convs: dict[str, list[bool]] = {}
                for r in rows:
                    convs.setdefault(r.get("conversation") or r["task_id"], []).append(bool(r[key]))
                cats[cat] = mean(all(v) for v in convs.values())
                proc[cat] = mean(mean(v) for v in convs.values())
            else:
                cats[cat] = mean(bool(r[key]) for r in rows)
                if cat.startswith("agent"):
                    proc[cat] = mean(r.get(process_key, 0.0) for r in rows)
        groups = {}
        for g, members in (("normal", NORMAL), ("special", SPECIAL), ("agent", AGENT)):
            present = [cats[c] for c in members if c in cats]
            if present:
                groups[g] = mean(present)
        return {"categories": cats, "counts": counts, "process_accuracy": proc, "groups": groups,
                "overall": official_overall(cats), "overall_renormalised": renormalised_overall(groups),
                "groups_missing": [g for g in WEIGHTS if g not in groups]}

    def summarize(self, scores):
        main = self.aggregate(scores, "correct", "process")
        compat = self.aggregate(scores, "compat_correct", "compat_process")
        main["n_tasks"] = len(scores)
        main["weights"] = dict(WEIGHTS)
        main["compat_acebench"] = {k: compat[k] for k in ("categories", "process_accuracy", "groups", "overall",
                                                          "overall_renormalised")}
        # n and Wilson intervals on the official-compatible verdicts (the paper's rows are read from these)
        main["compat_acebench"]["intervals"] = category_intervals(
            [{**s, "correct": bool(s.get("compat_correct"))} for s in scores])
        main["process_items"] = {"corrected": _process_items(scores, "process"),
                                 "compat_acebench": _process_items(scores, "compat_process")}
        srcs = {s["task_id"].startswith("own_") for s in scores}
        absent = [c for c in AGENT if c not in main["categories"]]
        if srcs == {False} and absent:
            main["not_run"] = {c: getattr(self, "agent_not_run", None) or "official agent items not selected or "
                               "their ACEBench source (fetched by `toolace-mt data acebench`) not found" for c in absent}
        # graded, not official (never part of `overall`); per category in the table's order, per item
        main["diagnostics"] = summarize_diagnostics(scores, list(main["categories"]))
        main["report_lines"] = report_lines(main)
        return main


def report_lines(summary: dict[str, Any]) -> list[str]:
    """Markdown: groups and overall under both scorers, and per-category compat beside corrected."""
    c = summary["compat_acebench"]
    pct = lambda v: "" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    lines = ["", "## ACE groups (overall = 0.2676 special + 0.578 normal + 0.1545 agent; as ACEBench's Summary, a "
             "group not run counts 0)", "",
             "compat_acebench = the official scorer's verdicts (the paper's figures); corrected = this project's "
             "checker (an extra).", "",
             "| group | corrected | compat_acebench |", "|---|---:|---:|"]
    for g in WEIGHTS:
        lines.append(f"| {g} | {pct(summary['groups'].get(g))} | {pct(c['groups'].get(g))} |")
    lines.append(f"| **overall** | **{pct(summary['overall'])}** | **{pct(c['overall'])}** |")
    if summary.get("groups_missing"):
        lines.append(f"| overall renormalised over the groups run (not ACEBench's figure) | "
                     f"{pct(summary.get('overall_renormalised'))} | {pct(c.get('overall_renormalised'))} |")
    if summary.get("groups_missing"):
        lines.append(f"\nnot run: {', '.join(summary['groups_missing'])}"
                     + (f" ({next(iter(summary['not_run'].values()))})" if summary.get("not_run") else ""))
    lines += ["", "| category | corrected | compat_acebench | process (corrected / compat) |", "|---|---:|---:|---:|"]
    for cat, v in summary["categories"].items():
        p, cp = summary["process_accuracy"].get(cat), c["process_accuracy"].get(cat)
        proc = f"{pct(p)} / {pct(cp)}" if p is not None else ""
        lines.append(f"| {cat} | {pct(v)} | {pct(c['categories'].get(cat))} | {proc} |")
    return lines


def raw_answer(tr: dict[str, Any]) -> str:
    """The answer as the official scorer receives it: the model's raw text; for structured tool calls (FC-style
    policies, the oracle) the pythonic call list ACEBench's FC inference writes; else the text answer."""
    raw = tr.get("raw")
    if isinstance(raw, str) and raw.strip():
        return raw
    calls = tr.get("tool_calls") or []
    return format_python_calls(calls) if calls else (tr.get("content") or "")


def _natural(task_id: str) -> tuple:
    return tuple(int(x) if x.isdigit() else x for x in re.split(r"(\d+)", task_id))


def export_official_results(run_dir: str | Path, out_dir: str | Path, model: str = "toolace_mt") -> list[Path]:
    """Write a run's normal/special answers in ACEBench's result layout (``<out>/<model>/data_<cat>_result.json``,
    rows ``{"id", "result"}`` in the data files' item order; the model's raw answer (`raw_answer`)) so
    the official scorer can re-score them for a per-item cross-check."""
    from ..suites import load_trajectories

    rows: dict[str, list[tuple[tuple, dict[str, Any]]]] = {}
    for tr in load_trajectories(run_dir):
        if tr.get("trial", 0) != 0 or tr["category"].startswith("agent"):
            continue
        row = {"id": tr["task_id"], "result": raw_answer(tr)}
        rows.setdefault(tr["category"], []).append((_natural(tr["task_id"]), row))
    out = []
    for cat, rs in sorted(rows.items()):
        p = Path(out_dir) / model / f"data_{cat}_result.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for _, r in sorted(rs, key=lambda x: x[0])),
                     encoding="utf-8")
        out.append(p)
    return out
