"""Complexity injection types (paper §2.2(a)), one module per type, found by discovery.

Every module of this package registers one `Injection` into `INJECTIONS` when it is imported; the registry
imports them all (pkgutil over the package, like environment domains) the first time a name is looked up. The
recipe's ``injection_types`` / ``injection_weights`` are validated against it, stage 2 (`inject.py`) finds,
realises and splices injections through it, and stage 3 (`verify/rules.py`) checks recorded injections with it.

An injection is found in two halves. `find` (code, both engines) picks the masked observation and fixes
everything the environment decides, returning a spec (a dict with at least ``type``, ``uid``, ``roles`` and
``instruction``; keys starting with ``_`` stay private to the rules engine). The texts of the new turns come
from `realise` (`rules` engine templates), from an LLM given the spec (`llm` engine; `check_texts` says why its
texts do not realise the spec), or from `answer` (the offline stand-in for that LLM, which may use only the
prompt's ``facts`` and the original turn). `apply` splices the texts in; `check` re-checks a recorded injection
in a finished dialogue.

Adding an injection type = adding one file here (+ its test)::

    # generation/injections/my_type.py
    from . import Injection, register

    @register
    class MyType(Injection):
        name = "my_type"
        order = 60            # position in the default type list (the plan draws types in this order)
        weight = 1.0          # default selection weight (recipe key injection_weights overrides it)
        needs_env = False     # True: needs an executable environment (skipped for schema-only tool pools)

        def find(self, d, rng): ...            # -> spec or None (no place in this dialogue)
        def realise(self, d, spec, rng, env_cls, original): ...  # -> texts, one per spec["roles"]
        def answer(self, facts, original, rng): ...            # -> texts (offline LLM stand-in)
        def apply(self, d, spec, texts, rec): ...              # -> turn tags of the new turns (rec.details: its facts)
        def check(self, d, rec, pos): ...                      # -> list of problems (strings)

Optional hooks: `facts` (extra facts the LLM prompt shows for this type), `check_texts` (why LLM-written
texts do not realise the spec) and `mas_user` (how the MAS baseline's user agent acts the type out; without it
a MAS recipe listing the type is refused with that reason). `d` is the typed `WorkDialogue`. Nothing else changes: the type becomes a valid ``injection_types`` entry, is drawn by the planner, realised by
both engines and verified.
"""
from __future__ import annotations

import importlib
import pkgutil
import random
from typing import Any, Optional

from toolace_mt.registry import Registry

from ..dialogue import InjectionRecord, TurnTag, WorkDialogue
from ..resolve import value_in_text


class Injection:
    """One complexity type. Subclasses set the attributes and override the methods they need."""

    name: str = ""
    order: int = 100  # chosen: default position after the built-in types
    weight: float = 1.0  # default selection weight in the plan
    needs_env: bool = True  # needs an executable environment (not a schema-only tool pool)

    def find(self, d: WorkDialogue, rng: random.Random) -> Optional[dict]:
        """A spec for one injection, or None when the dialogue offers no place for it."""
        raise NotImplementedError

    def realise(self, d: WorkDialogue, spec: dict, rng: random.Random, env_cls: Any, original: str) -> list[str]:
        """Template texts for the spec's new turns (in ``spec["roles"]`` order); the `rules` engine."""
        raise NotImplementedError

    def answer(self, facts: dict, original: str, rng: random.Random) -> list[str]:
        """The offline stand-in for the LLM: texts from what the prompt shows (its facts, the original turn)."""
        raise NotImplementedError

    def facts(self, d: WorkDialogue, spec: dict) -> dict[str, Any]:
        """Facts beyond the spec's common keys that the LLM prompt shows for this type."""
        return {}

    def check_texts(self, spec: dict, texts: list[str]) -> Optional[str]:
        """Why LLM-written texts (already the right count, non-empty) do not realise the spec (None = fine)."""
        return None

    def apply(self, d: WorkDialogue, spec: dict, texts: list[str], rec: InjectionRecord) -> list[TurnTag]:
        """Splice the new turns into `d` (may add keys to ``rec.details``); returns their turn tags."""
        raise NotImplementedError

    def mas_user(self, plan: Any) -> Optional[dict[str, Any]]:
        """How the MAS baseline acts this type out: the variables it adds to the MAS user agent's prompt for a
        `TaskPlan` that draws it (``{}``: nothing for the user to act out, with the reason in a comment; a new type
        may add lines to ``user_instructions``). None (this default) = MAS cannot act it out, and a MAS recipe
        that lists the type is refused (`GenerateConfig`), rather than the type being skipped silently."""
        return None

    def check(self, d: WorkDialogue, rec: InjectionRecord, pos: list[int]) -> list[str]:
        """Problems of a recorded injection whose turns sit at message positions `pos` (empty = fine)."""
        return []


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


INJECTIONS: Registry[Injection] = Registry("injection type", discover=_discover)


def register(cls: type[Injection]) -> type[Injection]:
    """Class decorator: register one instance of `cls` under ``cls.name``."""
    INJECTIONS.register(cls.name, cls())
    return cls


def injection_types() -> tuple[str, ...]:
    """Every registered type, in the default order (the order the planner draws from)."""
    return tuple(sorted(INJECTIONS.names(), key=lambda n: (INJECTIONS.get(n).order, n)))


def default_weights() -> dict[str, float]:
    return {n: INJECTIONS.get(n).weight for n in injection_types()}


# ---- helpers shared by several types ---------------------------------------------------------------
def free_queries(d: WorkDialogue, free_only: bool = True) -> list[tuple[int, TurnTag]]:
    """User requests (index, turn tag) not yet edited or injected."""
    log = d.edit_log
    return [(i, tg) for i, tg in enumerate(d.turns) if tg.kind == "query" and (not free_only or tg.uid not in log)]


def mentions(txt: str, v: Any) -> bool:
    return value_in_text(v, txt or "")


def where(d: WorkDialogue, spec: dict) -> tuple[Optional[int], int]:
    """The masked turn's message index and its subtask (-1: none)."""
    return d.index_of_uid(spec["uid"]), spec.get("t", -1)


__all__ = ["INJECTIONS", "Injection", "register", "injection_types", "default_weights", "free_queries", "mentions",
           "where", "WorkDialogue"]
