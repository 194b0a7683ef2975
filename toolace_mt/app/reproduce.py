"""`toolace-mt reproduce RECIPE`: generate -> train -> evaluate for every arm, then a report like the paper's.

Arms (paper §7.1): ``base`` (the start model, never fine-tuned on multi-turn data),
``mas`` (fine-tuned on MAS data), ``toolace_mt`` (fine-tuned on ToolACE-MT data). A reproduce recipe does not
repeat the sub-recipes: it names a generate recipe per data arm, a train recipe for the arms (and optionally
one that first builds the base model, e.g. a tiny model trained on single-turn tool calls), and a list of
evaluate recipes; each reference may carry ``set:`` overrides. The wiring (which dataset a train step reads,
which model an evaluation loads) is done here, through the same ``--set`` mechanism a user has.

Every step runs in its own run directory under ``runs/reproduce/<name>/`` and is skipped when its
``summary.json`` exists, so an interrupted or repeated reproduce reuses every finished step (and each
sub-run resumes on its own). The report is written from saved summaries only: `toolace-mt report RUN_DIR`
rebuilds it without running anything.

An ablation (``ablation:`` block) sweeps one generate-recipe key (the paper's refinement-step scaling,
Fig. 5) times verification on/off for the ToolACE-MT arm, and plots accuracy against the swept value.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ..config import RecipeError, dataclass_from_dict, load_recipe, to_plain
from ..runs import atomic_write_json, machine_info, prepare_run_dir

ARM_LABELS = {"base": "Base", "mas": "MAS", "toolace_mt": "ToolACE-MT"}  # paper §7.1 column names


@dataclass
class StepRef:
    """A sub-recipe and its overrides (``set``: key -> value, dotted keys reach nested blocks)."""

    recipe: str
    set: dict[str, Any] = field(default_factory=dict)

    def overrides(self, extra: Optional[dict[str, Any]] = None) -> list[str]:
        items = dict(self.set)
        items.update(extra or {})
        return [f"{k}={json.dumps(v)}" for k, v in items.items()]


@dataclass
class AblationConfig:
    """Sweep ``key`` of the ToolACE-MT generate recipe over ``values``, each with verification on and off."""

    key: str = "refinement_steps"
    values: list[Any] = field(default_factory=lambda: [0, 1, 3, 5, 10, 15])  # paper §7.2 (Fig. 5 goes to 15)
    verify: list[bool] = field(default_factory=lambda: [True, False])
    evaluate: list[str] = field(default_factory=list)  # names of evaluate steps to run (empty = all)


def _recipe_named(name: str) -> Optional[str]:
    """The shipped reproduce recipe (under ./recipes) whose ``name:`` is `name`, for a hint; None if none."""
    import re

    for p in sorted(Path("recipes").rglob("*.yaml")):
        try:
            text = p.read_text()
        except OSError:
            continue
        if re.search(r"^task:\s*reproduce\s*$", text, re.M) and re.search(rf"^name:\s*{re.escape(name)}\s*$", text, re.M):
            return str(p)
    return None


@dataclass
class ReproduceConfig:
    name: str = "reproduce"
    arms: list[str] = field(default_factory=lambda: ["base", "mas", "toolace_mt"])
    generate: dict[str, StepRef] = field(default_factory=dict)  # data arm -> generate recipe
    # generate recipe(s) of the base model's own training data; a list (e.g. plain dialogues built by each method,
    # so the base leans to neither generator's phrasing) is one dataset per recipe, all in the base's training
    base_data: list[StepRef] = field(default_factory=list)
    base_train: Optional[StepRef] = None  # train recipe that builds the base model (None: use base_model as is)
    base_model: Optional[str] = None  # start model when there is no base_train (e.g. an HF checkpoint path)
    arm_train: Optional[StepRef] = None  # train recipe for every data arm (dataset and start model are wired)
    evaluate: dict[str, StepRef] = field(default_factory=dict)  # eval name -> evaluate recipe
    ablation: Optional[AblationConfig] = None
    runs_dir: str = "runs/reproduce"
    results_dir: str = "results"
    notes: str = ""  # free text put at the top of the report (scale, what it can and cannot show)
    # id style of the env samplers (long | short), passed to every generate step and recorded in its recipe;
    # a BFCL-style task set built by an evaluate step takes its own (options.build.id_style)
    id_style: Optional[str] = None
    train_seeds: list[int] = field(default_factory=list)  # extra arm trainings per seed (the seed spread)
    smoke: list[str] = field(default_factory=list)  # evaluate names the report marks as smoke rows

    def __post_init__(self):
        for arm in self.arms:
            if arm not in ARM_LABELS:
                raise ValueError(f"arms: {arm!r} is not one of {', '.join(ARM_LABELS)}")
        for arm in self.arms:
            if arm != "base" and arm not in self.generate:
                raise ValueError(f"arm {arm!r} needs a generate recipe under 'generate:'")
        if any(a != "base" for a in self.arms) and self.arm_train is None:
            raise ValueError("arm_train: a train recipe is required for the fine-tuned arms")
        if self.base_train is None and not self.base_model:
            raise ValueError("give either base_train (a train recipe that builds the base) or base_model")
        if self.base_train is not None and not self.base_data:
            raise ValueError("base_train needs base_data (the generate recipe of its training data)")
        if not self.evaluate:
            raise ValueError("evaluate: at least one evaluate recipe is required")
        from ..envs.base import ID_STYLES

        bad = [n for n in self.smoke if n not in self.evaluate]
        if bad:
            raise ValueError(f"smoke: {bad} are not names under 'evaluate:'")

        if self.id_style is not None and self.id_style not in ID_STYLES:
            raise ValueError(f"id_style: {self.id_style!r} is not one of {', '.join(ID_STYLES)}")

    def step_refs(self) -> list[tuple[str, StepRef, str]]:
        out = [(f"generate/{a}", r, "generate") for a, r in self.generate.items()]
        out += [(f"generate/{n}", r, "generate") for n, r in zip(self.base_data_names(), self.base_data)]
        if self.base_train:
            out.append(("train/base", self.base_train, "train"))
        if self.arm_train:
            out.append(("train/arm", self.arm_train, "train"))
        out += [(f"evaluate/{n}", r, "evaluate") for n, r in self.evaluate.items()]
        return out

    def base_data_names(self) -> list[str]:
        """Run folders under ``generate/`` of the base data: ``base_data`` (then ``base_data_2``, ... for a list)."""
        return ["base_data" if i == 0 else f"base_data_{i + 1}" for i in range(len(self.base_data))]

    def base_datasets(self, run: Path) -> list[dict[str, str]]:
        return [{"path": str(run / "generate" / n / "dataset")} for n in self.base_data_names()]

    def check(self, run_dir: Optional[Path] = None) -> None:
        """`toolace-mt validate` (and `reproduce` before it starts): every sub-recipe parses as its kind and passes
        its own checks (input paths, optional dependencies) with the wiring reproduce gives it, in step order: a
        path an earlier step of this recipe writes (under `run_dir`, default runs_dir/name) is not yet required."""
        from ..config import produced_paths

        run = Path(run_dir) if run_dir is not None else Path(self.runs_dir) / self.name
        written: list[Path] = []

        def sub(where: str, ref: StepRef, kind: str, extra: Optional[dict[str, Any]], writes: Path) -> None:
            try:
                _, c, _ = load_recipe(ref.recipe, ref.overrides(extra), expect=kind)
                check = getattr(c, "check", None)
                if callable(check):
                    with produced_paths(written):
                        check()
            except RecipeError as e:
                raise RecipeError(f"{where} ({ref.recipe}): {e}") from None
            written.append(writes)

        from ..config import is_produced

        if self.base_train is None and self.base_model and not Path(self.base_model).exists() and \
                Path(self.base_model).is_relative_to(Path(self.runs_dir)) and not is_produced(self.base_model):
            # a model another reproduce recipe trains (e.g. the quickstart's base): say which command makes it
            other = Path(self.base_model).relative_to(Path(self.runs_dir)).parts[0]
            maker = _recipe_named(other)
            how = f"`toolace-mt reproduce {maker}`" if maker else f"the reproduce recipe named {other!r}"
            raise RecipeError(f"base_model: {self.base_model} does not exist yet: run {how} first, in this "
                              f"checkout (this recipe starts from the model that run trains)")
        ids = {"id_style": self.id_style} if self.id_style else None
        for arm, ref in self.generate.items():
            sub(f"generate/{arm}", ref, "generate", ids, run / "generate" / arm)
        for n, ref in zip(self.base_data_names(), self.base_data):
            sub(f"generate/{n}", ref, "generate", ids, run / "generate" / n)
        if self.base_train is not None:
            sub("train/base", self.base_train, "train", {"datasets": self.base_datasets(run)}, run / "train" / "base")
            base_start = str(run / "train" / "base")
            policies = {"base": {"policy.model": str(run / "train" / "base" / "model"), "policy.adapter": None}}
        else:
            base_start = self.base_model
            policies = {"base": {"policy.model": self.base_model, "policy.adapter": None}}
        for arm in [a for a in self.arms if a != "base"]:
            sub(f"train/{arm}", self.arm_train, "train", {
                "datasets": [{"path": str(run / "generate" / arm / "dataset")}], "model_name_or_path": base_start},
                run / "train" / arm)
            policies[arm] = {"policy.model": str(run / "train" / arm / "merged"), "policy.adapter": None}
        for arm in self.arms:
            for name, ref in self.evaluate.items():
                sub(f"evaluate/{arm}/{name}", ref, "evaluate", {**policies[arm], "policy.name": ARM_LABELS[arm]},
                    run / "evaluate" / arm / name)
        if self.ablation is not None and "toolace_mt" in self.generate:
            for value in self.ablation.values:
                sub(f"ablation/{self.ablation.key}={value}", self.generate["toolace_mt"], "generate",
                    {self.ablation.key: value, **(ids or {})}, run / "ablation")


def _parse_ref(v: Any, where: str) -> StepRef:
    if isinstance(v, str):
        return StepRef(recipe=v)
    return dataclass_from_dict(StepRef, v, where=where)


def parse_recipe(raw: dict[str, Any]) -> ReproduceConfig:
    raw = dict(raw)
    for key in ("generate", "evaluate"):
        if key in raw:
            if not isinstance(raw[key], dict):
                raise RecipeError(f"{key}: expected a mapping of name -> recipe")
            raw[key] = {k: _parse_ref(v, f"{key}.{k}.") for k, v in raw[key].items()}
    for key in ("base_train", "arm_train"):
        if raw.get(key) is not None:
            raw[key] = _parse_ref(raw[key], f"{key}.")
    if raw.get("base_data") is not None:  # one recipe or a list of them
        refs = raw["base_data"] if isinstance(raw["base_data"], list) else [raw["base_data"]]
        raw["base_data"] = [_parse_ref(v, f"base_data[{i}].") for i, v in enumerate(refs)]
    if isinstance(raw.get("ablation"), dict):
        raw["ablation"] = dataclass_from_dict(AblationConfig, raw["ablation"], where="ablation.")
    return dataclass_from_dict(ReproduceConfig, raw, ignore=("task",))


# ------------------------------------------------------------------------------------------------ steps
def _summary_file(p: Path) -> Optional[dict[str, Any]]:
    try:
        return json.loads(p.read_text()) if p.is_file() else None
    except (OSError, ValueError):
        return None


def _summary(out: Path) -> Optional[dict[str, Any]]:
    p = out / "summary.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _log(msg: str) -> None:
    print(f"[reproduce {time.strftime('%H:%M:%S')}] {msg}", flush=True)


NOT_RUN = "not_run.json"  # an evaluation whose benchmark data is missing: the reason; the report lists it
# run directory -> {kind, wall_s, reused} of every step `run_step` handled in this process (steps.json's step_times)
STEP_TIMES: dict[str, dict[str, Any]] = {}


class TimedSteps:
    """A step runner that records each batch's (phase's) wall time around the runner it wraps."""

    def __init__(self, inner: "StepRunner"):
        self.inner, self.phases = inner, []

    def __call__(self, jobs: list) -> list:
        # steps that run now (no summary yet), counted before the runner: the report tells an invocation that only
        # reused finished steps from one that ran some, whatever their wall time (a fast step rounds to 0.0 s)
        ran = sum(not (Path(j[2]) / "summary.json").is_file() for j in jobs)  # the test run_step reuses by
        t0 = time.time()
        res = self.inner(jobs)
        kinds = sorted({j[0] for j in jobs})
        self.phases.append({"kind": "+".join(kinds), "steps": len(jobs), "ran": ran,
                            "wall_s": round(time.time() - t0, 1)})
        return res

    def timed(self, name: str, fn: Callable[[], Any]) -> Any:
        """Time a phase that is not a batch of steps (teacher-forced scoring, learning curves, seeds)."""
        t0 = time.time()
        res = fn()
        self.phases.append({"kind": name, "wall_s": round(time.time() - t0, 1)})
        return res

    def describe(self) -> Optional[dict[str, Any]]:
        d = getattr(self.inner, "describe", None)
        return d() if callable(d) else None


def run_step(kind: str, ref: StepRef, out: Path, extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Run one sub-recipe into `out` unless it already finished there; return its summary. An evaluation whose
    benchmark data is not on this machine is skipped with ``not_run.json`` (a later run with the data runs it,
    since no summary was written)."""
    done = _summary(out)
    if done is not None:
        _log(f"reuse   {kind:8s} {out}")
        STEP_TIMES[str(out)] = {"kind": kind, "reused": True}
        return done
    _, cfg, _ = load_recipe(ref.recipe, ref.overrides(extra), expect=kind)
    _log(f"run     {kind:8s} {ref.recipe} -> {out}")
    t0 = time.time()
    if kind == "generate":
        from ..generation.run import run_generation

        s = run_generation(cfg, out)
    elif kind == "train":
        from ..training.launch import launch_training, needs_launch
        from ..training.train import run_training

        gb = cfg.global_batch()
        _log(f"train   global batch {gb['global']} = {gb['per_device']} per device x {gb['accumulation']} "
             f"accumulation x {gb['devices']} device(s)" + (" (accelerate launch)" if needs_launch(cfg) else ""))
        if needs_launch(cfg):  # one process per GPU; the sub-run writes the same summary.json
            s = launch_training(ref.recipe, ref.overrides(extra), out, cfg)
        else:
            s = run_training(cfg, out)
    elif kind == "evaluate":
        from ..evaluation.ace.data import DataUnavailable
        from ..evaluation.run import run_evaluation

        try:
            s = run_evaluation(cfg, out)
        except DataUnavailable as e:  # benchmark data not on this machine: recorded, the run goes on
            _log(f"skip    evaluate {out}: not run: {e}")
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(out / NOT_RUN, {"recipe": ref.recipe, "reason": str(e)})
            return {"not_run": str(e)}
        (out / NOT_RUN).unlink(missing_ok=True)  # an earlier run lacked the data; this one had it
    else:  # pragma: no cover - guarded by the callers
        raise ValueError(kind)
    _log(f"done    {kind:8s} {out} in {time.time() - t0:.0f}s")
    STEP_TIMES[str(out)] = {"kind": kind, "wall_s": round(time.time() - t0, 1)}
    return s


# One step to run: (kind, sub-recipe, run directory, extra overrides wired in by reproduce).
Job = tuple[str, StepRef, Path, Optional[dict[str, Any]]]
StepRunner = Callable[[list[Job]], list[dict[str, Any]]]


def run_steps_local(jobs: list[Job]) -> list[dict[str, Any]]:
    """The default step runner: the steps of one phase one after another, in this process."""
    return [run_step(kind, ref, out, extra) for kind, ref, out, extra in jobs]


def policy_for_train_run(train_out: Path) -> dict[str, Any]:
    """`policy.model`/`policy.adapter` overrides for a finished train run (merged > full model > base+adapter)."""
    from ..training.train import find_run_model

    found = find_run_model(train_out)
    if found is None:
        raise RuntimeError(f"{train_out} holds no trained model")
    kind, d = found
    if kind == "adapter":
        # tiny / chained runs keep their start model in base_model/; a hub checkpoint is named in the summary
        base = train_out / "base_model"
        if not (base / "config.json").is_file():
            base = json.loads((train_out / "summary.json").read_text())["start_model"]
        return {"policy.model": str(base), "policy.adapter": str(d)}
    return {"policy.model": str(d), "policy.adapter": None}


def run_reproduce(cfg: ReproduceConfig, out_dir: Path, restart: bool = False,
                  results: Optional[Path] = None, run_steps: Optional[StepRunner] = None) -> dict[str, Any]:
    """Run every step (reusing finished ones) and write the report to ``<out_dir>/report/``, and also to
    `results` when given (e.g. ``results/quickstart``, the committed copy).

    Each phase hands its independent steps to `run_steps` as one batch (default: one after another in this
    process; `reproduce_ray.RaySteps` runs them as Ray tasks); a phase starts when the one before it is done."""
    run_steps = run_steps or run_steps_local
    out = prepare_run_dir(out_dir, to_plain(cfg), restart=restart)
    return _run_reproduce(cfg, out, results, run_steps)


def _run_reproduce(cfg: ReproduceConfig, out: Path, results: Optional[Path], run_steps: StepRunner) -> dict[str, Any]:
    t0 = time.time()
    STEP_TIMES.clear()
    run_steps = timer = TimedSteps(run_steps)
    steps: dict[str, Any] = {}

    # 1. data for each fine-tuned arm (and for the base model, if it is built here)
    ids = {"id_style": cfg.id_style} if cfg.id_style else None  # recorded in each generate run's own recipe
    jobs: list[Job] = [("generate", ref, out / "generate" / arm, ids) for arm, ref in cfg.generate.items()]
    if cfg.base_train is not None:
        jobs += [("generate", ref, out / "generate" / n, ids) for n, ref in zip(cfg.base_data_names(), cfg.base_data)]
    done = run_steps(jobs)
    gen = dict(zip(cfg.generate, done))
    steps["generate"] = gen

    # 2. the base model
    if cfg.base_train is not None:
        base_gen = done[len(cfg.generate):]
        steps["generate_base_data"] = base_gen[0] if len(base_gen) == 1 else base_gen
        base_out = out / "train" / "base"
        steps["train_base"] = run_steps([("train", cfg.base_train, base_out, {
            "datasets": cfg.base_datasets(out)})])[0]
        base_policy = policy_for_train_run(base_out)
        base_start = str(base_out)
    else:
        base_policy = {"policy.model": cfg.base_model, "policy.adapter": None}
        base_start = cfg.base_model

    # 3. one fine-tune per data arm, from the base model
    policies = {"base": base_policy}
    fine_tuned = [arm for arm in cfg.arms if arm != "base"]
    done = run_steps([("train", cfg.arm_train, out / "train" / arm, {
        "datasets": [{"path": str(out / "generate" / arm / "dataset")}],
        "model_name_or_path": base_start}) for arm in fine_tuned])
    steps["train"] = dict(zip(fine_tuned, done))
    for arm in fine_tuned:
        policies[arm] = policy_for_train_run(out / "train" / arm)

    # 4. every evaluation for every arm
    cells = [(arm, name, ref) for arm in cfg.arms for name, ref in cfg.evaluate.items()]
    done = run_steps([("evaluate", ref, out / "evaluate" / arm / name,
                       {**policies[arm], "policy.name": ARM_LABELS[arm]}) for arm, name, ref in cells])
    steps["evaluate"] = {}
    for (arm, name, _), s in zip(cells, done):
        steps["evaluate"].setdefault(arm, {})[name] = s

    # 4a. teacher-forced exact calls on the gold dialogues of the BFCL-style tasks each arm was evaluated on
    timer.timed("teacher_forced", lambda: [teacher_forced_step(out / "evaluate" / arm / name, policies[arm])
                                           for arm in cfg.arms for name in cfg.evaluate])

    # 4b. learning curves: the same teacher-forced measure at every saved checkpoint of each trained model
    bfcl = next((n for n in cfg.evaluate if _own_bfcl_tasks(out / "evaluate" / cfg.arms[0] / n) is not None), None)
    if bfcl is not None:
        tasks = _own_bfcl_tasks(out / "evaluate" / cfg.arms[0] / bfcl)
        trained = (["base"] if cfg.base_train is not None else []) + fine_tuned
        steps["learning_curves"] = timer.timed("learning_curves", lambda: {
            arm: learning_curve_step(out / "train" / arm, tasks) for arm in trained})

    # 4c. the seed spread: each fine-tuned arm trained again per seed (same data, same base), evaluated the same way
    if cfg.train_seeds:
        steps["seeds"] = run_seeds(cfg, out, base_start, run_steps)
        timer.timed("seeds_teacher_forced", lambda: seeds_teacher_forced(cfg, out))

    # 5. the ablation (ToolACE-MT data only)
    if cfg.ablation is not None and cfg.arm_train is not None and "toolace_mt" in cfg.generate:
        steps["ablation"] = run_ablation(cfg, out, base_start, run_steps)

    # a resumed run adds its own invocation: wall_s is the sum of all, so a report rebuilt after a resume (e.g. to
    # add a step) still states what the whole run cost
    prev = _summary_file(out / "steps.json") or {}
    runs = prev.get("invocations") or ([{"wall_s": prev["wall_s"]}] if "wall_s" in prev else [])
    runs.append({"wall_s": round(time.time() - t0, 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
    runs[-1]["phases"] = timer.phases  # this invocation's phases, in order (a batch of steps each, or a named one)
    info = {"wall_s": round(sum(r["wall_s"] for r in runs), 1), "invocations": runs, "machine": machine_info()}
    # per step, as this process ran it (a step run on a Ray worker is in its phase's time only)
    info["step_times"] = {str(Path(k).relative_to(out)) if Path(k).is_relative_to(out) else k: v
                          for k, v in STEP_TIMES.items()}
    if timer.describe() is not None:
        info["executor"] = timer.describe()
    atomic_write_json(out / "steps.json", info)
    from .report import collect, headline, write_report

    report = write_report(out, out / "report")
    if results:
        report = write_report(out, Path(results))
    print(f"\n== {cfg.name}: done in {info['wall_s']:.0f} s (this invocation {runs[-1]['wall_s']:.0f} s)", flush=True)
    for line in headline(collect(out)):
        print("   " + line)
    print(f"   report: {report}" + (f" (also {out / 'report' / 'report.md'})" if results else ""), flush=True)
    return steps


TEACHER_FORCED = "teacher_forced.json"


def teacher_forced_step(eval_out: Path, policy: dict[str, Any]) -> Optional[dict[str, Any]]:
    """``teacher_forced.json`` beside a finished own-task BFCL evaluation (other suites: nothing to do)."""
    target = eval_out / TEACHER_FORCED
    if target.is_file():
        return json.loads(target.read_text())
    from ..evaluation.bfcl.teacher_forced import score_tasks

    tasks = _own_bfcl_tasks(eval_out)
    if tasks is None:
        return None
    t0 = time.time()
    _log(f"run     teacher-forced calls on {len(tasks)} gold dialogues -> {target}")
    per_task = score_tasks(policy["policy.model"], tasks, adapter=policy.get("policy.adapter"))
    res = {**tf_totals(per_task), "per_task": per_task, "wall_s": round(time.time() - t0, 1)}
    atomic_write_json(target, res)
    return res


def tf_totals(per_task: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of `score_tasks`' per-task rows: call messages, exact ones (and their rate), where the others first
    went wrong (`first_miss`), skipped, token accuracy."""
    calls, exact = sum(r["calls"] for r in per_task), sum(r["exact"] for r in per_task)
    first_miss: dict[str, int] = {}
    for r in per_task:  # rows written before first_miss existed have none
        for part, n in (r.get("first_miss") or {}).items():
            first_miss[part] = first_miss.get(part, 0) + n
    # rows written before exact_any_order existed: None (not 0), so an old run is not read as "no call in any order"
    any_order = (sum(r["exact_any_order"] for r in per_task)
                 if per_task and all("exact_any_order" in r for r in per_task) else None)
    chain: dict[str, Any] = {}  # tasks with dependent steps only: [exact, scored] per step kind
    for key in ("chain_first", "chain_dependent"):
        cells = [r[key] for r in per_task if key in r]
        if cells:
            chain[key] = [sum(c[0] for c in cells), sum(c[1] for c in cells)]
    if any("chain_dependent_opened" in r for r in per_task):
        chain["chain_dependent_opened"] = sum(r.get("chain_dependent_opened", 0) for r in per_task)
    return {"calls": calls, "exact": exact, "exact_call_rate": exact / calls if calls else None, **chain,
            "exact_any_order": any_order,
            "exact_any_order_rate": any_order / calls if calls and any_order is not None else None,
            "first_miss": first_miss,
            "skipped": sum(r["skipped"] for r in per_task),
            "token_accuracy": sum(r["tokens_ok"] for r in per_task) / max(1, sum(r["tokens"] for r in per_task))}


def _own_bfcl_tasks(eval_out: Path) -> Optional[list[dict[str, Any]]]:
    """The own-set BFCL-style tasks a finished evaluation scored, or None for any other evaluation."""
    summary, recipe = _summary(eval_out), eval_out / "recipe.yaml"
    if summary is None or summary.get("suite") != "bfcl" or not recipe.is_file():
        return None
    import yaml

    from ..evaluation.bfcl.suite import load_own_tasks
    from ..runs import read_jsonl

    rc = yaml.safe_load(recipe.read_text())
    if rc.get("source") != "own":
        return None
    ids = {r["task_id"] for r in read_jsonl(eval_out / "results.jsonl")}
    return [t for t in load_own_tasks(rc["tasks"]) if t["id"] in ids]


LEARNING_CURVE = "learning_curve.json"


def learning_curve_step(train_out: Path, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """``learning_curve.json`` in a finished train run: teacher-forced exact calls and call-token accuracy on
    `tasks`' gold dialogues at every saved checkpoint (``checkpoints/checkpoint-N``; a LoRA checkpoint is scored
    on the run's start model) and at the final model. Kept points are reused, so a resumed run scores only new
    checkpoints. This is the curve that says how far a budget gets when the official score stays at 0."""
    from ..evaluation.bfcl.teacher_forced import score_tasks

    target = train_out / LEARNING_CURVE
    old = _summary_file(target) or {}  # a missing or unreadable file: score every point again
    done = {p["step"]: p for p in old.get("points", [])} if old.get("tasks") == len(tasks) else {}
    final = policy_for_train_run(train_out)
    summary = json.loads((train_out / "summary.json").read_text())
    cks = sorted((int(c.name.split("-")[1]), c) for c in (train_out / "checkpoints").glob("checkpoint-*")
                 if c.name.split("-")[1].isdigit())
    points = []
    last = int(summary.get("steps") or 0)  # the final model, unless a checkpoint was saved at that very step
    for step, ck in cks + ([(last, None)] if last not in {c for c, _ in cks} else []):
        if step in done:
            points.append(done[step])
            continue
        if ck is None:
            model, adapter = final["policy.model"], final.get("policy.adapter")
        elif (ck / "adapter_config.json").is_file():  # LoRA: the adapter on the run's start model
            start = train_out / "base_model"
            model, adapter = (str(start) if (start / "config.json").is_file() else summary["start_model"]), str(ck)
        else:
            model, adapter = str(ck), None
        per_task = score_tasks(model, tasks, adapter=adapter)
        points.append({"step": step, **tf_totals(per_task)})
        _log(f"curve   {train_out.name} step {step}: exact calls {points[-1]['exact']}/{points[-1]['calls']}, "
             f"call tokens {points[-1]['token_accuracy']:.3f}")
    res = {"tasks": len(tasks), "points": sorted({p["step"]: p for p in points}.values(), key=lambda p: p["step"])}
    atomic_write_json(target, res)
    return res


def _seed_train_outs(cfg: ReproduceConfig, out: Path) -> dict[tuple[int, str], Path]:
    return {(seed, arm): out / "seeds" / f"seed={seed}" / "train" / arm
            for seed in cfg.train_seeds for arm in cfg.arms if arm != "base"}


def _seed_cells(cfg: ReproduceConfig, out: Path) -> list[tuple[int, str, str, Path, dict[str, Any]]]:
    """(seed, arm, suite, evaluation dir, policy) for every seeded fine-tune (its model must exist)."""
    cells = []
    for (seed, arm), t_out in _seed_train_outs(cfg, out).items():
        pol = policy_for_train_run(t_out)
        pol["policy.name"] = f"{ARM_LABELS[arm]} (seed {seed})"
        for name in cfg.evaluate:
            cells.append((seed, arm, name, out / "seeds" / f"seed={seed}" / "evaluate" / arm / name, pol))
    return cells


def run_seeds(cfg: ReproduceConfig, out: Path, base_start: Optional[str],
              run_steps: Optional[StepRunner] = None) -> dict[str, Any]:
    """``seeds/seed=S/{train,evaluate}/ARM``: the arm trainings again with training seed S (data order, LoRA
    init); the base model is the one of the main run, so the spread is that of the fine-tuning alone.

    Two batches of steps, like the main run's phases: every (seed, arm) fine-tune, then every evaluation (under
    ``--executor ray`` the fine-tunes share the cores instead of running one after another)."""
    run_steps = run_steps or run_steps_local
    run_steps([("train", cfg.arm_train, t_out, {"datasets": [{"path": str(out / "generate" / arm / "dataset")}],
                                                "model_name_or_path": base_start, "seed": seed})
               for (seed, arm), t_out in _seed_train_outs(cfg, out).items()])
    cells = _seed_cells(cfg, out)
    done = run_steps([("evaluate", cfg.evaluate[name], e_out, pol) for _, _, name, e_out, pol in cells])
    res: dict[str, Any] = {}
    for (seed, arm, name, _, _), s in zip(cells, done):
        res.setdefault(str(seed), {}).setdefault(arm, {})[name] = s
    return res


def seeds_teacher_forced(cfg: ReproduceConfig, out: Path) -> list[Optional[dict[str, Any]]]:
    """Teacher-forced exact calls of every seeded fine-tune (in this process: a pure function of its saved model)."""
    return [teacher_forced_step(e_out, pol) for _, _, _, e_out, pol in _seed_cells(cfg, out)]


def unfiltered_dataset(gen_out: Path) -> Path:
    """Verification off: the kept dialogues plus the rejected ones that can still be rendered for training.

    A rejected dialogue that breaks the chat format itself (roles, unknown tools, arguments against the schema)
    cannot be templated, so it is left out even here; everything the semantic and replay checks rejected goes in.
    The count of each is written beside the data (`unfiltered.json`).
    """
    from ..io import load_dataset_dialogues, save_dataset
    from ..runs import read_jsonl
    from ..schema import Dialogue, validate_dialogue

    target = gen_out / "dataset_unfiltered"
    if (target / "train.jsonl").is_file():
        return target
    kept = load_dataset_dialogues(gen_out / "dataset", allow_empty=True)
    rejected = read_jsonl(gen_out / "rejected.jsonl") if (gen_out / "rejected.jsonl").is_file() else []
    renderable, broken = [], 0
    for r in rejected:
        if validate_dialogue(r):
            broken += 1
        else:
            renderable.append(Dialogue.model_validate(r))
    save_dataset(kept + renderable, target)
    atomic_write_json(target / "unfiltered.json", {"kept": len(kept), "rejected_added": len(renderable),
                                                   "rejected_unrenderable": broken})
    return target


def run_ablation(cfg: ReproduceConfig, out: Path, base_start: str,
                 run_steps: Optional[StepRunner] = None) -> dict[str, Any]:
    """Generate per swept value, then train per (value, verify), then evaluate each: three phases of steps."""
    run_steps = run_steps or run_steps_local
    ab = cfg.ablation
    names = ab.evaluate or list(cfg.evaluate)
    res: dict[str, Any] = {}
    gref = cfg.generate["toolace_mt"]
    gen_outs = {value: out / "ablation" / f"{ab.key}={value}" / "generate" for value in ab.values}
    ids = {"id_style": cfg.id_style} if cfg.id_style else {}
    run_steps([("generate", gref, gen_outs[value], {ab.key: value, **ids}) for value in ab.values])
    tags = []
    for value in ab.values:
        for verify in ab.verify:
            tag = f"{ab.key}={value}/verify={'on' if verify else 'off'}"
            data_path = gen_outs[value] / "dataset" if verify else unfiltered_dataset(gen_outs[value])
            tags.append((tag, data_path))
    run_steps([("train", cfg.arm_train, out / "ablation" / tag / "train", {
        "datasets": [{"path": str(data_path)}], "model_name_or_path": base_start}) for tag, data_path in tags])
    jobs: list[Job] = []
    cells = []
    for tag, _ in tags:
        pol = policy_for_train_run(out / "ablation" / tag / "train")
        pol["policy.name"] = f"ToolACE-MT {tag}"
        for name in names:
            cells.append((tag, name))
            jobs.append(("evaluate", cfg.evaluate[name], out / "ablation" / tag / "evaluate" / name, pol))
    for (tag, name), s in zip(cells, run_steps(jobs)):
        res.setdefault(tag, {})[name] = s
    return res
