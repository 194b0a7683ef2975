"""The `generate` recipe: `GenerateConfig` and its strict parser (`parse_recipe`).

One dataclass holds every knob of the ToolACE-MT pipeline (and of the MAS baseline, which reuses stage-1
plans, the verifier and the run directory). Paper constants are marked ``# paper §x`` (section numbers of
the ToolACE-MT paper, arXiv 2508.12685); everything the paper leaves open is marked ``# chosen: <reason>``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from toolace_mt.config import RECIPE_KINDS, RecipeError, dataclass_from_dict
from toolace_mt.registry import Registry, RegistryError
from toolace_mt.llm.client import LLMConfig

from .injections import INJECTIONS, Injection, default_weights, injection_types

# chosen: plan_fidelity added after live runs paired model-written task descriptions with unrelated calls
MODEL_VERIFIERS = ("argument_grounding", "cross_turn_consistency", "plan_fidelity", "task_completion", "naturalness")
# method -> the module that generates its dialogues (``STAGES`` and ``run_stage``); a new method is one module
# registered here or from its own package.
METHODS: Registry = Registry("generation method")
METHODS.register("toolace_mt", "toolace_mt.generation.pipeline")
METHODS.register("mas", "toolace_mt.generation.mas")


def _pair(name: str, v: Any, lo: int, hi: Optional[int] = None) -> tuple[int, int]:
    if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)):
        raise ValueError(f"key {name!r}: expected [min, max] integers, got {v!r}")
    a, b = v
    if a > b or a < lo or (hi is not None and b > hi):
        raise ValueError(f"key {name!r}: need {lo} <= min <= max" + (f" <= {hi}" if hi is not None else "") + f", got {v!r}")
    return int(a), int(b)


@dataclass
class GenerateConfig:
    """Recipe `task: generate`. Every default is commented with where it comes from."""

    name: str = "generate"  # recipe name; default run dir is runs/generate/<name>
    method: str = "toolace_mt"  # toolace_mt | mas (mas: implemented in generation/mas.py by the MAS work)
    engine: str = "rules"  # rules (deterministic, offline) | llm (the paper's method, through toolace_mt.llm)
    llm: LLMConfig = field(default_factory=LLMConfig)  # used when engine == llm
    domains: Union[list[str], str] = "all"  # env domains to draw from (round-robin by dialogue index), or "all"
    tool_pool: Optional[str] = None  # schema-only API pool JSON (list of OpenAI tool dicts); outputs simulated by the LLM
    n_dialogues: int = 100  # dialogues to generate (before verification)
    seed: int = 0  # master seed; dialogue i uses a seed derived from (seed, i)
    # the env samplers' id style: "long" (ACC27131) or "short" (ACC27, copyable by a tiny model); None = long
    id_style: Optional[str] = None
    subtasks: list[int] = field(default_factory=lambda: [2, 5])  # paper §2.1: m in [2, 5]
    steps: list[int] = field(default_factory=lambda: [1, 6])  # paper §2.1: tool-calling steps per subtask in [1, 6]
    injections: list[int] = field(default_factory=lambda: [1, 3])  # paper §2.2(a): 1-3 complexity types per dialogue
    # every registered type (generation/injections/), in its order; each module sets its default weight
    # (chosen there: uniform over the paper's four types, which give no mix; long_context, beyond the paper, at half)
    injection_types: list[str] = field(default_factory=lambda: list(injection_types()))
    injection_weights: dict[str, float] = field(default_factory=default_weights)
    distractors: int = 12  # chosen: entities added to the state of a long_context dialogue (Env.add_distractors)
    refinement_steps: int = 5  # paper §2.2(b): up to 5 reasonability refinements (scaling study: up to 15); 0 = ablation
    mask_turns: int = 2  # chosen: "several non-adjacent turns" per refinement pass; 2 keeps each judge decision local
    decay: float = 0.5  # chosen: a turn's selection weight is multiplied by this once chosen (paper: "decays")
    parallel_prob: float = 0.25  # chosen: chance that a step holds two independent read calls (parallel calls)
    chain_prob: float = 0.7  # chosen: chance that a step's tool consumes a value an earlier output produced
    # chosen: no call (tool + arguments) planned twice in one dialogue. Off by default so the committed rules-engine
    # results stay byte-identical; on in the paper/live recipes, where a model reading "get_event(EV1)" twice in one
    # goal writes an unnatural request (live runs showed repeated identical steps)
    distinct_calls: bool = False
    # what a skeleton part request shows of the plan: "calls" (the subtask's description AND its planned calls, which
    # then run on the environment: the same goal the MAS user agent's prompt shows) or "description" (the description
    # only; the model writes the part's calls, pointing at outputs of earlier calls with "$k.key", paper §2.1).
    # chosen: "calls" by default -- a ToolACE-MT vs MAS comparison then gives both methods the same information, and
    # live (results/live_generation/, 3 runs x 12 dialogues) it kept 17 / 36 vs 14 / 36 for "description", whose
    # model cannot know the output keys its "$k.key" references need (5 of 36 dialogues failed on one)
    skeleton_goal: str = "calls"
    verify: bool = True  # run stage 3 (export keeps only passing dialogues; statistics keep all)
    model_verifiers: Optional[list[str]] = None  # None = all four specialists for engine llm, none for rules
    batch_specialists: bool = True  # chosen: all specialists of a dialogue in one request (one transcript); False = one each
    shard: Optional[str] = None  # "i/N": this process generates chunks c with c % N == i (merge with merge-shards)
    batch_size: int = 64  # dialogues per chunk: one batched LLM call per stage step, one JSONL file per stage
    progress: bool = True  # tqdm bars (may differ between a run and its resume)
    max_plan_tries: int = 8  # chosen: attempts to find an executable call for a step before dropping that step

    def __post_init__(self):
        from toolace_mt.envs.base import ID_STYLES

        if self.id_style is not None and self.id_style not in ID_STYLES:
            raise ValueError(f"key 'id_style': {self.id_style!r} is not one of {', '.join(ID_STYLES)}")
        if self.method not in METHODS:
            raise ValueError(f"key 'method': {self.method!r} is not one of {', '.join(METHODS.names())}")
        if self.engine not in ("rules", "llm"):
            raise ValueError(f"key 'engine': {self.engine!r} is not one of rules, llm")
        self.subtasks = list(_pair("subtasks", self.subtasks, 1))
        self.steps = list(_pair("steps", self.steps, 1))
        self.injections = list(_pair("injections", self.injections, 0, 5))
        for t in self.injection_types:
            if t not in INJECTIONS:
                raise ValueError(f"key 'injection_types': {t!r} is not one of {', '.join(injection_types())}")
        for t, w in self.injection_weights.items():
            if t not in INJECTIONS:
                raise ValueError(f"key 'injection_weights': {t!r} is not one of {', '.join(injection_types())}")
            if w < 0:
                raise ValueError(f"key 'injection_weights': weight of {t!r} is negative")
        if self.method == "mas":  # MAS acts each type out through its module's `mas_user` hook, or cannot
            lacking = [t for t in self.injection_types if type(INJECTIONS.get(t)).mas_user is Injection.mas_user]
            if lacking and self.injections[1] > 0:
                raise ValueError(f"key 'injection_types': method mas cannot act out {', '.join(lacking)} (no "
                                 f"`mas_user` hook in the type's module); list only types MAS realises, or add the hook")
        if self.injections[1] > 0 and not self.injection_types:
            raise ValueError("key 'injection_types': empty while injections max > 0")
        if self.n_dialogues < 0:
            raise ValueError("key 'n_dialogues': must be >= 0")
        if self.refinement_steps < 0:
            raise ValueError("key 'refinement_steps': must be >= 0")
        if self.skeleton_goal not in ("description", "calls"):
            raise ValueError(f"key 'skeleton_goal': {self.skeleton_goal!r} is not one of description, calls")
        if self.mask_turns < 1:
            raise ValueError("key 'mask_turns': must be >= 1")
        if not 0.0 <= self.decay <= 1.0:
            raise ValueError("key 'decay': must be in [0, 1]")
        if self.batch_size < 1:
            raise ValueError("key 'batch_size': must be >= 1")
        if self.model_verifiers is not None:
            for v in self.model_verifiers:
                if v not in MODEL_VERIFIERS:
                    raise ValueError(f"key 'model_verifiers': {v!r} is not one of {', '.join(MODEL_VERIFIERS)}")
        if self.shard is not None:
            parse_shard(self.shard)
        if self.tool_pool is not None and self.engine != "llm":
            raise ValueError("key 'tool_pool': a schema-only pool needs engine: llm (its outputs are simulated by the LLM)")

    # --- derived ---------------------------------------------------------------------------------
    def domain_list(self) -> list[str]:
        from toolace_mt.envs import all_envs

        known = list(all_envs())
        if self.domains == "all":
            return known
        doms = [self.domains] if isinstance(self.domains, str) else list(self.domains)
        bad = [d for d in doms if d not in known]
        if bad:
            raise RecipeError(f"key 'domains': unknown domain(s) {bad}; known: {', '.join(known)}")
        return doms

    def verifiers(self) -> list[str]:
        if self.model_verifiers is not None:
            return list(self.model_verifiers)
        return list(MODEL_VERIFIERS) if self.engine == "llm" else []

    def check(self) -> None:
        """Deeper checks for `toolace-mt validate`: domains exist, the pool file exists, the method is built."""
        self.domain_list()
        if self.engine == "llm" and self.llm.backend == "vllm":
            from toolace_mt.deps import require

            require("vLLM", "llm.backend vllm")
            if (self.llm.extra or {}).get("distributed_executor_backend") == "ray":
                require("Ray", "llm.extra.distributed_executor_backend ray")
        if self.tool_pool is not None and not Path(self.tool_pool).is_file():
            raise RecipeError(f"key 'tool_pool': file {self.tool_pool} not found")
        method_module(self.method)


def parse_shard(s: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in str(s).split("/"))
    except ValueError:
        raise ValueError(f"shard {s!r}: expected i/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard {s!r}: need 0 <= i < N")
    return i, n


def method_module(method: str):
    """The module generating dialogues for `method` (a RecipeError if it cannot be imported)."""
    try:
        return METHODS.get(method)
    except RegistryError as e:
        raise RecipeError(str(e)) from None


def parse_recipe(raw: dict[str, Any]) -> GenerateConfig:
    raw = dict(raw)
    name = raw.get("name", "generate")
    cfg = dataclass_from_dict(GenerateConfig, {k: v for k, v in raw.items() if k != "task"}, ignore=("task",))
    cfg.name = str(name)
    return cfg


RECIPE_KINDS.register("generate", parse_recipe)
