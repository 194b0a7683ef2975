"""`toolace_mt.executor.check_address` (issue 24 item 3): a Ray address nothing answers on is refused within a
bounded time, before ray.init (which retried for many minutes on `127.0.0.1:1` and `bogus:1`). No Ray needed."""
from __future__ import annotations

import socket
import time

import pytest

from toolace_mt import executor
from toolace_mt.config import RecipeError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}", "[::1]:{port}"])
def test_nothing_listening_is_refused_fast(address, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    addr = address.format(port=_free_port())
    t0 = time.monotonic()
    with pytest.raises(RecipeError, match=r"no Ray head answers there"):
        executor.check_address(addr)
    assert time.monotonic() - t0 < executor.CONNECT_TIMEOUT_S + 2


def test_a_hanging_connect_or_lookup_is_bounded(monkeypatch):
    """A firewall that drops packets, a DNS lookup that never answers: the wait ends at the timeout."""
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: time.sleep(30))
    t0 = time.monotonic()
    with pytest.raises(RecipeError, match=r"--address bogus:1: no Ray head answers there .*waited at most 0.5 s"):
        executor.check_address("bogus:1", timeout=0.5)
    assert time.monotonic() - t0 < 3


@pytest.mark.parametrize("address", ["nonsense", "host:", ":6379", "host:99999", "host:abc"])
def test_malformed_address(address):
    with pytest.raises(RecipeError, match=r"expected HOST:PORT, ray://HOST:PORT or auto"):
        executor.check_address(address)


def test_ray_address_environment_is_checked_too(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_free_port()}")
    with pytest.raises(RecipeError, match=r"^RAY_ADDRESS 127.0.0.1:\d+: no Ray head"):
        executor.check_address(None)


def test_a_listening_head_and_a_local_instance_pass(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    executor.check_address(None)  # nothing given: Ray starts a local instance, nothing to check
    executor.check_address("local")
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        executor.check_address(f"127.0.0.1:{srv.getsockname()[1]}")
