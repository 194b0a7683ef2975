"""`BatchingPolicy`: lets many threads share one policy, whose `act` is then called from one thread only, with
the requests that arrived together as one batch (so an in-process vLLM or transformers policy gets batches
even when a benchmark's own loop plays one episode per thread, as tau2's orchestrator does).

A dispatcher thread takes the first waiting request, gathers the others that arrive within `max_wait_s` (up
to `max_batch`), calls ``policy.act`` once and hands each caller its answer (or the exception).
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any

from ..policy import PolicyInput, PolicyOutput

MAX_WAIT_S = 0.05  # chosen: a policy call takes far longer; 50 ms lets the other episodes' requests join


class BatchingPolicy:
    def __init__(self, policy: Any, max_batch: int = 64, max_wait_s: float = MAX_WAIT_S):
        self.policy, self.max_batch, self.max_wait_s = policy, max_batch, max_wait_s
        self.name = getattr(policy, "name", "policy")
        self.client = getattr(policy, "client", None)
        self._q: "queue.Queue[tuple[PolicyInput, Future]]" = queue.Queue()
        self._stop = threading.Event()
        self.batch_sizes: list[int] = []
        self._thread = threading.Thread(target=self._loop, name="batching-policy", daemon=True)
        self._thread.start()

    def act(self, batch: list[PolicyInput]) -> list[PolicyOutput]:
        futs = []
        for inp in batch:
            f: Future = Future()
            self._q.put((inp, f))
            futs.append(f)
        return [f.result() for f in futs]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            items = [first]
            while len(items) < self.max_batch:
                try:
                    items.append(self._q.get(timeout=self.max_wait_s))
                except queue.Empty:
                    break
            self.batch_sizes.append(len(items))
            try:
                outs = self.policy.act([i for i, _ in items])
                for (_, f), o in zip(items, outs):
                    f.set_result(o)
            except BaseException as e:  # every waiting caller gets the failure, none hangs
                for _, f in items:
                    if not f.done():
                        f.set_exception(e)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
