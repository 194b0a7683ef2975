"""The in-flight dialogue both generation methods build: a typed object, JSON only at the stage boundary.

`WorkDialogue` carries the row (``id``, ``tools``, ``messages``: the format a dataset holds) and what generation
knows about it: the typed plan, one `TurnTag` per message (kind, subtask, uid), the injection records, the tool
updates, the refinement log, the usage per stage and a typed `Failure`. Its methods are the only edits of a
dialogue's structure (`append`, `insert`, `replace`, `index_of_uid`, `fail`, `fill_empty`, the uid and call-id
allocators), so the parallel lists cannot drift apart. A tag's uid is stable across insertions, so the edit log
and the refinement weights survive mask-and-extend shifting indices.

Between stages a dialogue is written as JSONL (`to_dict`) and read back on resume (`from_dict`); the two are exact
inverses (same keys, same order: a test checks every stage file of both methods), so the files on disk stay what
they were. A meta key is written once it is set, in the order it was first set, and a key the code does not know
is carried through unchanged.

Every record in the meta is a dataclass whose `to_dict`/`from_dict` are exact inverses (`TurnTag`,
`InjectionRecord`, `ToolUpdate`, `RefinementStep`/`Refinement`, `SkippedInjection`, `AnswerRepair`, `MasCounters`,
`Verification`, `Failure`). Finished rows from anywhere (a dataset on disk, another generator) are read with
`WorkDialogue.read`, which keeps a value that does not parse raw (so the row writes back unchanged and a check
rejects it with a reason); stage 3, the card and export read dialogues only through this class.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from .plan import TaskPlan


@dataclass
class TurnTag:
    """What a message is in the plan: its kind, the subtask it belongs to and a uid stable across insertions."""

    kind: str  # query, call, output, reply, clarify_ask, error_output, long_call, ...
    subtask: int = -1  # -1: none
    uid: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.kind, "t": self.subtask, "u": self.uid}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TurnTag":
        return cls(kind=d["k"], subtask=d["t"], uid=d["u"])


@dataclass
class Failure:
    """Why a dialogue failed (the first failure wins); it is then carried along and rejected with this reason."""

    stage: str
    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "kind": self.kind, "message": self.message}

    @classmethod
    def from_dict(cls, d: Optional[dict[str, Any]]) -> Optional["Failure"]:
        return None if d is None else cls(stage=d["stage"], kind=d["kind"], message=d["message"])


@dataclass
class ToolUpdate:
    """Tools added to the list before message ``at`` (tool awareness: a tool arrives later in the dialogue)."""

    at: int
    tools: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "tools": self.tools}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ToolUpdate":
        return cls(at=d["at"], tools=d["tools"])


@dataclass
class RefinementStep:
    """One refinement pass of stage 2: the uids of the masked turns, whether the new texts were kept, who judged."""

    step: int
    masked: list[int]
    accepted: bool
    judge: str  # "rules" or "llm"
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "masked": self.masked, "accepted": self.accepted, "judge": self.judge,
                "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RefinementStep":
        return cls(step=d["step"], masked=d["masked"], accepted=d["accepted"], judge=d["judge"], reason=d["reason"])


@dataclass
class Refinement:
    """Stage 2's log: one record per refinement step, and the uids of turns already edited or injected (paper
    §2.2: a turn is edited at most once)."""

    steps: list[RefinementStep] = field(default_factory=list)
    edit_log: list[int] = field(default_factory=list)
    weights: Optional[dict[str, float]] = None  # uid (as text) -> selection weight, decayed when chosen
    exhausted: Optional[bool] = None  # True: every editable turn was refined (the paper's other stop condition)
    edited_positions: Optional[list[int]] = None  # message positions of the edited turns, set at export

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"steps": [s.to_dict() for s in self.steps], "edit_log": self.edit_log}
        for k in ("weights", "exhausted", "edited_positions"):  # written once set, in this order
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Refinement":
        return cls(steps=[RefinementStep.from_dict(s) for s in d["steps"]], edit_log=d["edit_log"],
                   weights=d.get("weights"), exhausted=d.get("exhausted"), edited_positions=d.get("edited_positions"))


_INJ_COMMON = ("type", "uid", "t", "uids", "positions")


@dataclass
class InjectionRecord:
    """One realised injection: its type, the uid of the masked turn, the subtask (when the type masks one), the
    facts its type module owns (``details``: tool, param, value, failed/corrected call ids, ...: the type's spec
    without its private keys, plus what its `apply` added), the uids of the turns it added, and their message
    positions (set at export)."""

    type: str
    uid: int
    subtask: Optional[int] = None  # JSON "t"; None: the type masks no subtask turn (error_simulation)
    details: dict[str, Any] = field(default_factory=dict)
    uids: list[int] = field(default_factory=list)
    positions: Optional[list[Optional[int]]] = None

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "InjectionRecord":
        """The record of a spec (`Injection.find`): its public keys, without the texts' instructions."""
        pub = {k: v for k, v in spec.items() if k not in ("roles", "instruction", "outputs") and not k.startswith("_")}
        return cls.from_dict(dict(pub, uids=[]))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "uid": self.uid}
        if self.subtask is not None:
            out["t"] = self.subtask
        out.update(self.details)
        out["uids"] = self.uids
        if self.positions is not None:
            out["positions"] = self.positions
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InjectionRecord":
        return cls(type=d["type"], uid=d["uid"], subtask=d.get("t"),
                   details={k: v for k, v in d.items() if k not in _INJ_COMMON}, uids=d["uids"],
                   positions=d.get("positions"))


@dataclass
class SkippedInjection:
    """A planned injection type the dialogue offered no place for (recorded, not silently dropped)."""

    type: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SkippedInjection":
        return cls(type=d["type"], reason=d["reason"])


@dataclass
class AnswerRepair:
    """A model answer whose JSON was repaired (and whether it was cut at max_tokens): verification gates on it."""

    stage: str
    repairs: str
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "repairs": self.repairs, "truncated": self.truncated}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AnswerRepair":
        return cls(stage=d["stage"], repairs=d["repairs"], truncated=d["truncated"])


@dataclass
class MasCounters:
    """The MAS simulation's counters: agent steps, why it stopped, user turns, and the final message count."""

    steps: int = 0
    stop: Optional[str] = None  # satisfied, failed, turn_limit
    user_turns: int = 0
    n_messages: Optional[int] = None  # set when the simulation ends

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"steps": self.steps, "stop": self.stop, "user_turns": self.user_turns}
        if self.n_messages is not None:
            out["n_messages"] = self.n_messages
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MasCounters":
        return cls(steps=d["steps"], stop=d["stop"], user_turns=d["user_turns"], n_messages=d.get("n_messages"))


@dataclass
class Verification:
    """Stage 3's verdict: passed, the reasons of the failed checks, and check -> True/False/None (not applicable)."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, Optional[bool]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": self.reasons, "checks": self.checks}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Verification":
        return cls(passed=d["passed"], reasons=d["reasons"], checks=d["checks"])


# meta keys in the order a new dialogue writes them; `mas` only for MAS dialogues
_CORE = ("generator", "engine", "index", "seed", "domain", "plan", "turns", "next_uid", "injections", "tool_updates",
         "refinement", "usage", "failure")
# typed meta fields whose JSON form differs from the attribute
_LISTS = {"turns": TurnTag, "injections": InjectionRecord, "tool_updates": ToolUpdate,
          "injections_skipped": SkippedInjection, "answer_repairs": AnswerRepair}
_OPTIONAL = {"plan": TaskPlan, "refinement": Refinement, "failure": Failure, "mas": MasCounters,
             "verification": Verification}
_TO_JSON = {**{k: (lambda xs: [x.to_dict() for x in xs]) for k in _LISTS},
            **{k: (lambda x: None if x is None else x.to_dict()) for k in _OPTIONAL}}
_FROM_JSON = {**{k: (lambda xs, c=c: [c.from_dict(x) for x in xs]) for k, c in _LISTS.items()},
              **{k: (lambda x, c=c: None if x is None else c.from_dict(x)) for k, c in _OPTIONAL.items()}}


@dataclass(eq=False)
class WorkDialogue:
    """A dialogue being generated. See the module docstring."""

    id: str
    tools: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    generator: str = ""
    engine: str = ""
    index: int = 0
    seed: int = 0
    domain: str = ""
    plan: Optional[TaskPlan] = None
    turns: list[TurnTag] = field(default_factory=list)
    next_uid: int = 0
    injections: list[InjectionRecord] = field(default_factory=list)
    tool_updates: list[ToolUpdate] = field(default_factory=list)
    refinement: Refinement = field(default_factory=Refinement)
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    failure: Optional[Failure] = None
    mas: Optional[MasCounters] = None  # the MAS simulation's counters (MAS dialogues only)
    simulated: bool = False  # answered by the `simulated` backend (rules behind real prompts)
    simulated_outputs: bool = False  # a schema-only tool pool: the tool outputs were written by the LLM
    next_call: int = 0  # call ids handed out so far (``call_1``, ``call_2``, ...)
    final_state_hash: Optional[str] = None
    answer_repairs: list[AnswerRepair] = field(default_factory=list)  # JSON answers repaired (verification gates)
    injections_skipped: list[SkippedInjection] = field(default_factory=list)  # no place found
    verification: Optional[Verification] = None
    replay_verdict: Optional[str] = None  # why stage 3 could not replay the dialogue (set only then)
    injection_types: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # meta keys this code does not know, carried through
    _written: list[str] = field(default_factory=list, repr=False)  # meta keys set so far, in the order first set

    def __post_init__(self) -> None:
        object.__setattr__(self, "_written", [])

    def __setattr__(self, name: str, value: Any) -> None:
        written = self.__dict__.get("_written")
        if written is not None and name in _META_FIELDS:
            if name not in written:
                written.append(name)
            self.extra.pop(name, None)  # a typed value replaces a raw one `read` could not parse
        object.__setattr__(self, name, value)

    def touch(self, name: str) -> None:
        """Mark meta field `name` as set (after an in-place edit such as ``d.answer_repairs.append(...)``)."""
        if name not in self._written:
            self._written.append(name)

    # ---- construction and the stage boundary ----------------------------------------------------
    @classmethod
    def new(cls, did: str, tools: list[dict[str, Any]], plan: TaskPlan, index: int, cfg, generator: str,
            mas: Optional[MasCounters] = None) -> "WorkDialogue":
        """An empty dialogue for `plan`; `mas` adds the MAS simulation's counters."""
        d = cls(id=did, tools=tools, messages=[])
        for name, value in (("generator", generator), ("engine", cfg.engine), ("index", index), ("seed", plan.seed),
                            ("domain", plan.domain), ("plan", plan)):
            setattr(d, name, value)
        for name in _CORE[6:]:
            d.touch(name)
        if mas is not None:
            d.mas = mas
        return d

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> "WorkDialogue":
        d = cls(id=row["id"], tools=row["tools"], messages=row["messages"])
        for k, v in (row.get("meta") or {}).items():
            if k in _META_FIELDS:
                setattr(d, k, _FROM_JSON[k](v) if k in _FROM_JSON else v)
            else:
                d.extra[k] = v
                d.touch(k)
        return d

    @classmethod
    def read(cls, row: dict[str, Any]) -> "WorkDialogue":
        """A finished row from anywhere (a dataset on disk, another generator): tolerant where `from_dict` is
        strict. A meta value that does not parse as its type, or whose typed form would not write back the same
        JSON, stays raw in `extra` (the typed attribute keeps its default), so `to_dict` gives the row back
        unchanged and a check that needs the value finds it absent rather than crashing."""
        d = cls(id=row.get("id"), tools=row.get("tools") or [], messages=row.get("messages") or [])
        meta = row.get("meta")
        for k, v in (meta.items() if isinstance(meta, dict) else ()):
            if k in _FROM_JSON:
                try:
                    typed = _FROM_JSON[k](v)
                    ok = json.dumps(_TO_JSON[k](typed), sort_keys=False) == json.dumps(v, sort_keys=False)
                except Exception:  # noqa: BLE001 -- any malformed value is kept raw, by design
                    ok = False
                if ok:
                    setattr(d, k, typed)
                    continue
            elif k in _META_FIELDS:
                setattr(d, k, v)
                continue
            d.extra[k] = v
            d.touch(k)
        return d

    def to_dict(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        for k in self._written:
            if k in self.extra:
                meta[k] = self.extra[k]
            elif k in _META_FIELDS:
                v = getattr(self, k)
                meta[k] = _TO_JSON[k](v) if k in _TO_JSON else v
        return {"id": self.id, "tools": self.tools, "messages": self.messages, "meta": meta}

    # ---- allocators ------------------------------------------------------------------------------
    def new_uid(self) -> int:
        self.next_uid += 1
        return self.next_uid

    def next_call_ids(self, n: int = 1) -> list[str]:
        """`n` fresh call ids (``call_1``, ``call_2``, ... per dialogue)."""
        n0 = self.next_call
        self.next_call = n0 + n
        return [f"call_{n0 + k + 1}" for k in range(n)]

    def tag(self, kind: str, t: int = -1) -> TurnTag:
        return TurnTag(kind, t, self.new_uid())

    # ---- edits -------------------------------------------------------------------------------------
    def append(self, msg: dict[str, Any], kind: str, t: int = -1) -> int:
        self.messages.append(msg)
        self.turns.append(self.tag(kind, t))
        return len(self.messages) - 1

    def insert(self, at: int, items: list[tuple[dict[str, Any], str, int]]) -> None:
        """Insert (message, kind, subtask) items before index `at`; shifts tool-update indices after it."""
        for j, (msg, kind, t) in enumerate(items):
            self.messages.insert(at + j, msg)
            self.turns.insert(at + j, self.tag(kind, t))
        for u in self.tool_updates:
            if u.at >= at:
                u.at += len(items)

    def replace(self, at: int, items: list[tuple[dict[str, Any], str, int]]) -> None:
        """Message `at` becomes the (message, kind, subtask) items."""
        del self.messages[at]
        del self.turns[at]
        for u in self.tool_updates:
            if u.at > at:
                u.at -= 1
        self.insert(at, items)

    def index_of_uid(self, uid: int) -> Optional[int]:
        for i, tg in enumerate(self.turns):
            if tg.uid == uid:
                return i
        return None

    def fail(self, stage: str, kind: str, message: str) -> None:
        """Record a typed failure (the first one wins); the dialogue is then carried along and rejected."""
        if self.failure is None:
            self.failure = Failure(stage, kind, message[:500])

    def fill_empty(self) -> None:
        """A dialogue that failed before its first turn still needs one exchange to be a valid record (it is kept
        in rejected.jsonl with its failure reason); both methods use this same placeholder."""
        if not self.messages:
            self.messages = [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello! How can I help?"}]
            self.turns = [TurnTag("query", 0, 0), TurnTag("reply", 0, -1)]

    def add_usage(self, stage: str, resp) -> None:
        u = self.usage.setdefault(stage, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0})
        self.touch("usage")
        u["calls"] += 1
        u["prompt_tokens"] += int(getattr(resp.usage, "prompt_tokens", 0) or 0)
        u["completion_tokens"] += int(getattr(resp.usage, "completion_tokens", 0) or 0)

    # ---- reading -----------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        """Is meta key `name` in the record (set here, or read, parsed or raw)?"""
        return name in self._written

    def unreadable(self) -> list[str]:
        """Known meta keys whose value `read` kept raw because it does not parse as its type."""
        return [k for k in self.extra if k in _META_FIELDS]

    def plan_json(self) -> Optional[dict[str, Any]]:
        """The plan as JSON: the typed plan's, or a plan-like dict another generator wrote (`read` keeps it raw)."""
        if self.plan is not None:
            return self.plan.to_dict()
        raw = self.extra.get("plan")
        return raw if isinstance(raw, dict) else None

    def schema_row(self) -> dict[str, Any]:
        """What `toolace_mt.schema.validate_dialogue` reads: id, tools, messages and the tool updates."""
        ups = self.extra["tool_updates"] if "tool_updates" in self.extra else [u.to_dict() for u in self.tool_updates]
        return {"id": self.id, "tools": self.tools, "messages": self.messages, "meta": {"tool_updates": ups}}

    @property
    def edit_log(self) -> set[int]:
        return set(self.refinement.edit_log)

    def held_tools(self) -> set[str]:
        """Tools that arrive later through a tool update (held back from the initial list)."""
        return {t["function"]["name"] for u in self.tool_updates for t in u.tools}


_META_FIELDS = tuple(f.name for f in dataclasses.fields(WorkDialogue)
                     if f.name not in ("id", "tools", "messages", "extra", "_written"))


def as_dialogue(d: "WorkDialogue | dict[str, Any]") -> WorkDialogue:
    """The typed dialogue of `d`: itself, or a finished row read tolerantly (`WorkDialogue.read`)."""
    return d if isinstance(d, WorkDialogue) else WorkDialogue.read(d)


def reads_dialogue(check):
    """Decorator for a check of finished dialogues: its first argument may be a `WorkDialogue` or a row (a dict
    from a dataset, a test), which it then reads through `as_dialogue`."""
    @functools.wraps(check)
    def run(d, *args, **kwargs):
        return check(as_dialogue(d), *args, **kwargs)
    return run
