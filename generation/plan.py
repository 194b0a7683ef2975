"""Stage 1a, task initialization: the `TaskPlan` of a dialogue and the rules planner (paper §2.1).

A plan fixes the environment (domain + state seed + distractors), the candidate tools, the m subtasks with
their tools and step counts, and the concrete calls of every step with their argument values. The rules
planner finds those calls by executing them on the environment for real, chaining tools along the declared
data dependencies (`Env.dependency_edges`), so later calls use ids and values earlier outputs produced.

`plan_rules` is the stage-1a planner both methods share (`pool.plan_for` picks it or the pool planner).
"""
from __future__ import annotations

import functools
from collections import Counter
import json
import hashlib
import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from toolace_mt.envs import Env, extract, get_env

PLACEHOLDER = re.compile(r"\{(\w+)\}")


@functools.lru_cache(maxsize=None)
def tool_info(cls: type[Env], name: str) -> tuple[dict[str, Any], tuple[str, ...], str]:
    """(parameters schema, required names, first line of the description) of a tool, computed once.

    `ToolSpec.schema` hands out a fresh deep copy on every access; the generators only read it, often.
    """
    spec = cls.tool_specs()[name]
    fdef = spec.schema["function"]
    params = fdef.get("parameters", {})
    desc = fdef.get("description", "").strip().split("\n")[0].split(". ")[0].rstrip(".")  # first sentence
    return params, tuple(params.get("required", [])), desc


def derive_seed(*parts: Any) -> int:
    """A stable 63-bit seed from any parts (seed, index, stage...): independent of chunking and sharding."""
    h = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "big") >> 1


@dataclass
class CallPlan:
    tool: str
    arguments: dict[str, Any]
    # parameter -> index (in the dialogue-wide call list) of the call whose output produced the value, for
    # values the user does not state because an earlier step of the same subtask produced them
    refs: dict[str, int] = field(default_factory=dict)


@dataclass
class SubtaskPlan:
    description: str
    tools: list[str]
    n_steps: int
    steps: list[list[CallPlan]] = field(default_factory=list)  # steps[s] = calls sent together (parallel)


@dataclass
class TaskPlan:
    domain: str
    state_seed: int
    tools: list[str]  # candidate tools offered to the assistant (the dialogue's tool list)
    subtasks: list[SubtaskPlan]
    injections: list[str] = field(default_factory=list)  # injection types planned for stage 2
    distractors: int = 0  # entities added to the initial state (long_context), via Env.add_distractors
    seed: int = 0  # the dialogue's own seed
    planner: str = "rules"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaskPlan":
        subs = []
        for s in d["subtasks"]:
            steps = [[CallPlan(**c) for c in step] for step in s.get("steps", [])]
            subs.append(SubtaskPlan(description=s["description"], tools=list(s["tools"]), n_steps=int(s["n_steps"]),
                                    steps=steps))
        return cls(domain=d["domain"], state_seed=int(d["state_seed"]), tools=list(d["tools"]), subtasks=subs,
                   injections=list(d.get("injections", [])), distractors=int(d.get("distractors", 0)),
                   seed=int(d.get("seed", 0)), planner=d.get("planner", "rules"))

    def calls(self) -> list[CallPlan]:
        return [c for s in self.subtasks for step in s.steps for c in step]


# ------------------------------------------------------------------------------------------------ env
def initial_state(plan_or_meta: dict[str, Any] | TaskPlan) -> tuple[type[Env], dict[str, Any]]:
    """The environment class and initial state a plan (or a dialogue's meta["plan"]) starts from."""
    p = plan_or_meta.to_dict() if isinstance(plan_or_meta, TaskPlan) else plan_or_meta
    cls = get_env(p["domain"])
    state = cls.sample_state(random.Random(int(p["state_seed"])))
    n = int(p.get("distractors") or 0)
    add = getattr(cls, "add_distractors", None)
    if n and add is not None:
        try:
            res = add(state, random.Random(derive_seed(p["state_seed"], "distractors")), n)
            state = res if isinstance(res, dict) else state
        except NotImplementedError:  # a domain without distractors: long context comes from its own listings
            state = cls.sample_state(random.Random(int(p["state_seed"])))
    return cls, state


def make_env(plan_or_meta: dict[str, Any] | TaskPlan) -> Env:
    cls, state = initial_state(plan_or_meta)
    return cls(state=state)


# ------------------------------------------------------------------------------------------------ values
def produced_values(env_cls: type[Env], tool: str, output: Any) -> dict[str, list[Any]]:
    """Entity kind -> values a tool's output holds, per the tool's `produces` declaration."""
    spec = env_cls.tool_specs()[tool]
    out: dict[str, list[Any]] = {}
    for kind, path in spec.produces.items():
        vals = [v for v in extract(output, path) if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
        if not vals and isinstance(output, dict) and kind in output:
            vals = [output[kind]]
        if vals:
            out.setdefault(kind, []).extend(vals)
    return out


def _schema_value(name: str, prop: dict[str, Any], rng: random.Random) -> Any:
    """A value for a parameter that consumes no entity and has no VALUE_POOLS entry, from its schema."""
    if "enum" in prop:
        return rng.choice(prop["enum"])
    t = prop.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if t == "integer":
        return rng.randint(1, 5)  # chosen: small counts/limits read naturally
    if t == "number":
        return rng.choice([10.0, 25.0, 50.0, 99.5])
    if t == "boolean":
        return rng.choice([True, False])
    if t == "array":
        item = prop.get("items", {"type": "string"})
        return [_schema_value(name, item, rng)]
    return f"{name.replace('_', ' ')} {rng.randint(1, 99)}"  # chosen: recognisable placeholder text


def phrase_params(phrase: str) -> set[str]:
    return set(PLACEHOLDER.findall(phrase))


class _Planner:
    """Finds executable, chained calls for one dialogue on a live environment."""

    def __init__(self, env: Env, rng: random.Random, chain_prob: float, parallel_prob: float, max_tries: int,
                 distinct: bool = False):
        self.env, self.rng = env, rng
        self.distinct = distinct
        self.seen: set[str] = set()  # (tool, arguments) of the calls planned so far, for `distinct`
        self.cls = type(env)
        self.specs = self.cls.tool_specs()
        self.chain_prob, self.parallel_prob, self.max_tries = chain_prob, parallel_prob, max_tries
        self.produced: dict[str, list[tuple[Any, int, int]]] = {}  # kind -> [(value, call index, subtask)]
        self.n_calls = 0

    def _fill(self, name: str, subtask: int, prefer_chain: bool) -> Optional[CallPlan]:
        spec = self.specs[name]
        params, req, _ = tool_info(self.cls, name)
        props = params.get("properties", {})
        required = set(req)
        phrases = spec.phrases or [""]
        phrase = self.rng.choice(phrases)
        wanted = [p for p in props if p in required or p in phrase_params(phrase)]
        args: dict[str, Any] = {}
        refs: dict[str, int] = {}
        for p in wanted:
            kind = spec.consumes.get(p)
            if kind is not None:
                chained = self.produced.get(kind, [])
                if chained and (prefer_chain or not self.env.entity_values(kind)):
                    v, ci, st = self.rng.choice(chained)
                    args[p] = v
                    if st == subtask:
                        refs[p] = ci
                    continue
                vals = self.env.entity_values(kind)
                if not vals:
                    return None
                args[p] = self.rng.choice(vals)
            elif p in self.cls.VALUE_POOLS:
                args[p] = self.rng.choice(self.cls.VALUE_POOLS[p])
            else:
                args[p] = _schema_value(p, props[p], self.rng)
        return CallPlan(tool=name, arguments=args, refs=refs)

    def _candidates(self, allowed: list[str], reads_only: bool = False) -> list[tuple[str, bool]]:
        """(tool, chains) pairs: tools whose consumed kinds an earlier output produced come first."""
        out = []
        for n in allowed:
            s = self.specs[n]
            if reads_only and s.writes:
                continue
            chains = any(k in self.produced for k in s.consumes.values())
            out.append((n, chains))
        return out

    def step(self, allowed: list[str], subtask: int) -> list[tuple[CallPlan, Any]]:
        """One step: 1 call (or 2 independent read calls); each executed for real. [] if nothing runs."""
        calls: list[tuple[CallPlan, Any]] = []
        want = 2 if self.rng.random() < self.parallel_prob else 1
        used: set[str] = set()
        for k in range(want):
            cands = [c for c in self._candidates(allowed, reads_only=(want == 2)) if c[0] not in used]
            if not cands:
                break
            for _ in range(self.max_tries):
                chain = [c for c in cands if c[1]]
                pool = chain if chain and self.rng.random() < self.chain_prob else cands
                name = self.rng.choice(pool)[0]
                cp = self._fill(name, subtask, prefer_chain=bool(chain))
                if cp is None:
                    continue
                if k == 1 and cp.refs:  # parallel calls must be independent of each other's outputs
                    continue
                key = json.dumps([cp.tool, cp.arguments], sort_keys=True, default=str)
                if self.distinct and key in self.seen:  # a user does not ask for the same call twice
                    continue
                res = self.env.execute(cp.tool, cp.arguments)
                if not res.ok:
                    continue
                calls.append((cp, res.output))
                self.seen.add(key)
                used.add(name)
                break
        for cp, out in calls:  # register produced values only after the step (parallel calls are independent)
            idx = self.n_calls
            self.n_calls += 1
            for kind, vals in produced_values(self.cls, cp.tool, out).items():
                lst = self.produced.setdefault(kind, [])
                known = {v for v, _, _ in lst}
                lst.extend((v, idx, subtask) for v in vals if v not in known)
        return calls


def _describe(env_cls: type[Env], tools: list[str]) -> str:
    specs = env_cls.tool_specs()
    parts = []
    for t in tools:
        d = tool_info(env_cls, t)[2]
        parts.append(d[:1].lower() + d[1:] if d else t.replace("_", " "))
    return "; then ".join(parts)


def plan_rules(cfg, index: int, domain: str) -> TaskPlan:
    """The rules planner for dialogue `index` (deterministic in (cfg.seed, index))."""
    seed = derive_seed(cfg.seed, index)
    rng = random.Random(seed)
    cls = get_env(domain)
    m = rng.randint(*cfg.subtasks)  # paper §2.1: uniform integer (chosen: the distribution is not stated)
    steps = [rng.randint(*cfg.steps) for _ in range(m)]  # paper §2.1
    k = rng.randint(*cfg.injections)
    weights = cfg.injection_weights
    types = [t for t in cfg.injection_types if weights.get(t, 1.0) > 0]
    inj: list[str] = []
    while types and len(inj) < k:  # chosen: distinct types per dialogue (the paper injects 1-3 "types")
        t = rng.choices(types, weights=[weights.get(x, 1.0) for x in types])[0]
        inj.append(t)
        types.remove(t)
    plan = TaskPlan(domain=domain, state_seed=derive_seed(seed, "state"), tools=[], subtasks=[], injections=inj,
                    distractors=cfg.distractors if "long_context" in inj else 0, seed=seed)
    env = make_env(plan)
    all_tools = sorted(cls.tool_specs())
    planner = _Planner(env, rng, cfg.chain_prob, cfg.parallel_prob, cfg.max_plan_tries,
                       distinct=getattr(cfg, "distinct_calls", False))
    outputs: list[Any] = []
    for t in range(m):
        calls: list[list[CallPlan]] = []
        for _ in range(steps[t]):
            got = planner.step(all_tools, t)
            if got:
                calls.append([cp for cp, _ in got])
                outputs.extend(out for _, out in got)
        if not calls:
            continue
        used = sorted({c.tool for step in calls for c in step}, key=[c.tool for step in calls for c in step].index)
        plan.subtasks.append(SubtaskPlan(description=_describe(cls, used).capitalize(), tools=used,
                                         n_steps=len(calls), steps=calls))
    used_all = sorted({c.tool for c in plan.calls()})
    # chosen: the candidate tool list = the tools used plus up to 3 unused distractor tools of the domain
    extra = [t for t in all_tools if t not in used_all]
    rng.shuffle(extra)
    plan.tools = sorted(used_all + extra[:3])
    # the planner already executed every call once, in order, from the plan's initial state: the skeleton
    # reuses these outputs instead of executing again (verification replays them independently)
    plan._executed = (outputs, env.state_hash())  # type: ignore[attr-defined]
    return plan


def domain_for(cfg, index: int) -> str:
    doms = cfg.domain_list()
    return doms[index % len(doms)]  # chosen: round-robin so every domain gets an equal share


# ------------------------------------------------------------------------------------------------ the goal
def goal_view(plan_or_dict: dict[str, Any] | TaskPlan) -> list[list[list[dict[str, Any]]]]:
    """The plan's calls as a user's goal: per subtask, per step, {"tool", "arguments"}, where an argument whose
    value an EARLIER call of the plan returns is not a literal but a reference string
    ``"<the <param> returned by <tool> (call k)>"``.

    Why: a user cannot state an id that does not exist yet ("complete reminder RMN001" before the create that
    returns RMN001), nor should a goal make a model copy a value that a search in the same part will return. A
    value is a reference when the call's plan records it as one (`CallPlan.refs`, same subtask) or when it is not
    an entity of the initial state but some earlier call's output produced it (created by an earlier subtask).
    Shared by both methods: ToolACE-MT's plan and skeleton prompts and the MAS user agent's goal. Computed by
    replaying the plan's calls on a fresh environment (cheap; deterministic), so it needs no stored outputs."""
    p = plan_or_dict if isinstance(plan_or_dict, TaskPlan) else TaskPlan.from_dict(plan_or_dict)
    env = make_env(p)
    cls = type(env)
    specs = cls.tool_specs()
    initial = {k: {json.dumps(v, sort_keys=True) for v in env.entity_values(k)} for k in cls.ENTITIES}
    # json(value) -> (task number, tool, rank in that output, how many values of its kind that output lists,
    # which call of that tool in its task)
    produced: dict[str, tuple[int, str, int, int, int]] = {}
    out: list[list[list[dict[str, Any]]]] = []
    # how often each tool runs in each task: a reference to one of two write_file calls of a task must say which
    per_task = [Counter(c.tool for st in sub.steps for c in st) for sub in p.subtasks]
    for t_no, sub in enumerate(p.subtasks, start=1):
        seen_here: Counter = Counter()
        steps = []
        for step in sub.steps:
            calls = []
            for c in step:
                args: dict[str, Any] = {}
                spec = specs.get(c.tool)
                for k, v in c.arguments.items():
                    key = json.dumps(v, sort_keys=True)
                    kind = spec.consumes.get(k) if spec is not None else None
                    created = key in produced and kind is not None and key not in initial.get(kind, set())
                    if k in c.refs or created:
                        src = produced.get(key)
                        # chosen: named by task, not by a global call number (live answerers misread "call 10",
                        # which counts parallel calls one by one, as a step of the current task)
                        where = "in this task" if src and src[0] == t_no else f"in task {src[0]}" if src else ""
                        nth_call = f"the {ordinal(src[4])} " if src and per_task[src[0] - 1][src[1]] > 1 else ""
                        who = (f"{nth_call}{src[1]}{' call' if nth_call else ''} {where}".strip() if src
                               else "an earlier call")
                        many = bool(src) and src[3] > 1
                        nth = f"{ordinal(src[2])} " if many else ""
                        # named by the entity kind (a transfer's from_account is an account_id the list returned)
                        what = kind or k
                        args[k] = f"<the {nth}{what} {'listed' if many else 'returned'} by {who}>"
                    else:
                        args[k] = v
                calls.append({"tool": c.tool, "arguments": args})
            for c in step:  # outputs register after the step: calls of one step are independent
                occ = seen_here[c.tool]
                seen_here[c.tool] += 1
                r = env.execute(c.tool, c.arguments)
                if r.ok and c.tool in specs:
                    for vals in produced_values(cls, c.tool, r.output).values():
                        uniq = list(dict.fromkeys(json.dumps(v, sort_keys=True) for v in vals))
                        for rank, v in enumerate(uniq):
                            produced.setdefault(v, (t_no, c.tool, rank, len(uniq), occ))
            steps.append(calls)
        out.append(steps)
    return out


ORDINAL_WORDS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]


def ordinal(rank: int) -> str:
    """0 -> "first", ..., 9 -> "tenth", 10 -> "11th" (a list of 15 orders still names one)."""
    if rank < len(ORDINAL_WORDS):
        return ORDINAL_WORDS[rank]
    n = rank + 1
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
REF_VALUE = re.compile(r"^<the (?:[a-z0-9]+ )?(\w+) (?:returned|listed) by .*>$")  # also "by the second x call"


def is_goal_ref(v: Any) -> bool:
    """Is `v` a reference string of `goal_view` (a value the user does not state)?"""
    return isinstance(v, str) and bool(REF_VALUE.match(v))
