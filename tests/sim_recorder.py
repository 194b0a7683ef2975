"""A recorder of every request the `simulated` backend answers, with its answer (shared by the barrier tests)."""
from __future__ import annotations

from toolace_mt.llm import simulated


class Recorder:
    def __init__(self):
        self.log: list[tuple[object, str]] = []

    def install(self, monkeypatch):
        orig = simulated.SimulatedBackend.answer

        def answer(backend, request):
            txt = orig(backend, request)
            self.log.append((request, txt))
            return txt

        monkeypatch.setattr(simulated.SimulatedBackend, "answer", answer)
        return self
