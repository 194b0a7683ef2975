"""`openai` backend against a local chat-completions server (stdlib http.server on 127.0.0.1, no network)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from toolace_mt.llm import ChatRequest, LLMConfig, SamplingParams, make_client

KEY = "sk-test-secret-4242"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):  # keep pytest output clean
        pass

    def _send(self, code, body, ctype="application/json", headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.requests.append({"body": body, "auth": self.headers.get("Authorization")})
        last = body["messages"][-1]["content"] or ""
        scenario = last.split(":", 1)[0] if ":" in last else "echo"
        with srv.lock:
            srv.counts[last] = srv.counts.get(last, 0) + 1
            n = srv.counts[last]
        if scenario == "429" and n == 1:
            return self._send(429, {"error": {"message": "slow down"}}, headers={"retry-after-ms": "20"})
        if scenario == "500":
            return self._send(500, {"error": {"message": "boom"}})
        if scenario == "400":
            return self._send(400, {"error": {"message": "bad request"}})
        if scenario == "slow":
            time.sleep(1.5)
        if scenario == "conc":
            with srv.lock:
                srv.inflight += 1
                srv.max_inflight = max(srv.max_inflight, srv.inflight)
            time.sleep(0.05)
            with srv.lock:
                srv.inflight -= 1
        if scenario == "emptychoices" and n == 1:  # a 200 with no choice, then a good answer
            return self._send(200, {"id": "c0", "object": "chat.completion", "created": 0, "model": body["model"],
                                    "choices": []})
        if scenario == "truncated":  # every answer cut off mid-JSON (Content-Length matches what is sent)
            good = json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                               "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"},
                                            "finish_reason": "stop"}]}).encode()
            return self._send(200, good[:len(good) // 2])
        if scenario == "truncatedonce" and n == 1:
            return self._send(200, b'{"id": "c1", "object": "chat.completion", "choi')
        if scenario == "nullmessage" and n == 1:
            return self._send(200, {"id": "c0", "object": "chat.completion", "created": 0, "model": body["model"],
                                    "choices": [{"index": 0}]})
        if scenario == "deep":  # a 200 nested far past the JSON parser's recursion limit
            return self._send(200, b"[" * 200_000)
        if scenario == "cutconn" and n == 1:  # connection closed before Content-Length bytes arrived
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "500")
            self.end_headers()
            self.wfile.write(b'{"id": "c1", "choi')
            self.wfile.flush()
            self.close_connection = True
            return None
        if scenario == "nonjson":
            return self._send(200, b"<html>gateway says hello</html>", ctype="text/html")
        if scenario == "notcompletion":
            return self._send(200, {"hello": "world"})
        msg = {"role": "assistant", "content": f"echo {last}"}
        finish = "stop"
        if body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            args = "{bad json" if scenario == "badargs" else json.dumps({"city": "Oslo"})
            msg = {"role": "assistant", "content": None,
                   "tool_calls": [{"id": "call_x", "type": "function", "function": {"name": name, "arguments": args}}]}
            finish = "tool_calls"
        if body.get("response_format"):
            msg = {"role": "assistant", "content": '{"answer": 42}'}
        return self._send(200, {"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                                "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}})


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.lock = threading.Lock()
    srv.requests, srv.counts = [], {}
    srv.inflight = srv.max_inflight = 0
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _client(server, monkeypatch, tmp_path=None, **kw):
    monkeypatch.setenv("TOOLACE_TEST_KEY", KEY)
    cfg = LLMConfig(backend="openai", model="tiny-served", base_url=f"http://127.0.0.1:{server.server_port}/v1",
                    api_key_env="TOOLACE_TEST_KEY", retry_backoff_s=0.01, **kw)
    return make_client(cfg, cache_dir=tmp_path)


def _req(text, **kw):
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


def test_plain_chat_batch_usage_and_key(server, monkeypatch, tmp_path):
    c = _client(server, monkeypatch, tmp_path / "cache", max_concurrency=4)
    out = c.chat([_req(f"hello {i}") for i in range(6)])
    assert [r.text for r in out] == [f"echo hello {i}" for i in range(6)]
    assert all(r.ok and r.usage.prompt_tokens == 7 and r.usage.completion_tokens == 3 for r in out)
    assert server.requests[-1]["auth"] == f"Bearer {KEY}"
    sent = server.requests[-1]["body"]
    assert sent["max_tokens"] == 1024 and sent["temperature"] == 0.0  # resolved from LLMConfig
    tot = c.ledger.summary()["total"]
    assert tot["calls"] == 6 and tot["prompt_tokens"] == 42 and tot["completion_tokens"] == 18
    # the key is never written to the cache or the ledger
    led = tmp_path / "ledger.json"
    c.ledger.save(led)
    blobs = [p.read_text() for p in (tmp_path / "cache").rglob("*.json")] + [led.read_text()]
    assert len(blobs) == 7 and not any(KEY in b for b in blobs)
    # second run: all from cache, zero requests to the server
    before = len(server.requests)
    again = _client(server, monkeypatch, tmp_path / "cache").chat([_req(f"hello {i}") for i in range(6)])
    assert len(server.requests) == before and all(r.cached for r in again)
    assert [r.text for r in again] == [r.text for r in out]


def test_tool_calls_parsed_to_dicts_and_wire_format(server, monkeypatch):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    history = [{"role": "user", "content": "weather?"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]},
               {"role": "tool", "tool_call_id": "a", "name": "get_weather", "content": "sunny"},
               {"role": "user", "content": "and Oslo?"}]
    c = _client(server, monkeypatch)
    r = c.chat([ChatRequest(messages=history, tools=tools)])[0]
    assert r.ok and r.finish_reason == "tool_calls"
    assert r.tool_calls == [{"id": "call_x", "type": "function",
                             "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]
    wire = server.requests[-1]["body"]["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert isinstance(wire, str) and json.loads(wire) == {"city": "Rome"}  # dict args sent as a JSON string


def test_bad_tool_arguments_are_a_typed_failure(server, monkeypatch):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    r = _client(server, monkeypatch).chat([_req("badargs: go", tools=tools)])[0]
    assert not r.ok and r.error.kind == "invalid_tool_call" and "{bad json" in r.error.raw
    assert r.tool_calls == []


def test_429_then_success_is_retried(server, monkeypatch):
    c = _client(server, monkeypatch)
    r = c.chat([_req("429: please")])[0]
    assert r.ok and r.text == "echo 429: please"
    assert server.counts["429: please"] == 2


def test_timeout_is_a_typed_failure_after_retries(server, monkeypatch):
    c = _client(server, monkeypatch, timeout_s=0.3, max_retries=1)
    t0 = time.perf_counter()
    r = c.chat([_req("slow: wait")])[0]
    assert not r.ok and r.error.kind == "timeout" and r.error.attempts == 2
    assert server.counts["slow: wait"] == 2
    assert time.perf_counter() - t0 < 5
    assert c.ledger.summary()["failure_kinds"] == {"timeout": 1}


def test_non_json_body_and_http_errors(server, monkeypatch, tmp_path):
    c = _client(server, monkeypatch, tmp_path / "cache", max_retries=2)
    out = c.chat([_req("nonjson: x"), _req("notcompletion: x"), _req("500: x"), _req("400: x"), _req("fine")])
    kinds = [r.error.kind if r.error else None for r in out]
    assert kinds == ["bad_response", "bad_response", "http_status", "http_status", None]
    assert "gateway says hello" in (out[0].error.raw or "")
    assert server.counts["500: x"] == 3 and server.counts["400: x"] == 1  # 5xx retried, 4xx not
    # a 200 that is not a completion is retried like a 5xx (issue 24 item 5), then a typed failure
    assert server.counts["nonjson: x"] == 3 and server.counts["notcompletion: x"] == 3
    assert out[0].error.attempts == 3 and out[1].error.attempts == 3
    # failures are not cached: a rerun asks again
    before = server.counts["nonjson: x"]
    c.chat([_req("nonjson: x")])
    assert server.counts["nonjson: x"] == before + 3


def test_json_schema_sends_response_format(server, monkeypatch):
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    r = _client(server, monkeypatch).chat([_req("json please", json_schema=schema)])[0]
    assert r.ok and r.parsed == {"answer": 42}
    assert server.requests[-1]["body"]["response_format"]["json_schema"]["schema"] == schema


def test_sampling_overrides_reach_server(server, monkeypatch):
    c = _client(server, monkeypatch, temperature=0.7)
    c.chat([_req("a"), _req("b", sampling=SamplingParams(temperature=0.0, max_tokens=5, seed=3, stop=["\n"]))])
    by_text = {r["body"]["messages"][-1]["content"]: r["body"] for r in server.requests[-2:]}
    assert by_text["a"]["temperature"] == 0.7
    assert by_text["b"]["temperature"] == 0.0 and by_text["b"]["max_tokens"] == 5 and by_text["b"]["seed"] == 3
    assert by_text["b"]["stop"] == ["\n"]


def test_concurrency_is_bounded(server, monkeypatch):
    c = _client(server, monkeypatch, max_concurrency=3)
    out = c.chat([_req(f"conc: {i}") for i in range(12)])
    assert all(r.ok for r in out) and [r.text for r in out] == [f"echo conc: {i}" for i in range(12)]
    assert 2 <= server.max_inflight <= 3  # parallel, but never more than max_concurrency in flight


# --- issue 24 item 5: a 200 answer cut off or without choices is retried like a 5xx, then a typed failure ---

def test_empty_choices_then_good_answer_is_retried(server, monkeypatch):
    r = _client(server, monkeypatch, max_retries=2).chat([_req("emptychoices: a")])[0]
    assert r.ok and r.text == "echo emptychoices: a"
    assert server.counts["emptychoices: a"] == 2


def test_truncated_once_and_null_message_then_good_answer(server, monkeypatch):
    out = _client(server, monkeypatch, max_retries=2).chat([_req("truncatedonce: a"), _req("nullmessage: a")])
    assert [r.ok for r in out] == [True, True]
    assert [r.text for r in out] == ["echo truncatedonce: a", "echo nullmessage: a"]
    assert server.counts["truncatedonce: a"] == 2 and server.counts["nullmessage: a"] == 2


def test_connection_cut_mid_body_is_retried(server, monkeypatch):
    r = _client(server, monkeypatch, max_retries=2).chat([_req("cutconn: a")])[0]
    assert r.ok and r.text == "echo cutconn: a"
    assert server.counts["cutconn: a"] == 2


def test_truncated_every_time_is_a_typed_failure_after_bounded_retries(server, monkeypatch, tmp_path):
    c = _client(server, monkeypatch, tmp_path / "cache", max_retries=3)
    t0 = time.perf_counter()
    r = c.chat([_req("truncated: a")])[0]
    assert not r.ok and r.finish_reason == "error"
    assert r.error.kind == "bad_response" and r.error.attempts == 4
    assert "not a chat completion" in r.error.message and "JSONDecodeError" in r.error.message
    assert server.counts["truncated: a"] == 4  # 1 + max_retries, never more
    assert time.perf_counter() - t0 < 5  # the existing (small) backoff, no unbounded wait
    assert c.ledger.summary()["failure_kinds"] == {"bad_response": 1}


def test_cut_off_answers_lose_only_their_own_request(server, monkeypatch):
    c = _client(server, monkeypatch, max_retries=2, max_concurrency=4)
    reqs = [_req("fine b0"), _req("truncated: b"), _req("emptychoices: b"), _req("deep: b"), _req("fine b1"),
            _req("truncatedonce: b")]
    out = c.chat(reqs)  # never raises: each bad answer is a failure of its own request
    assert [r.ok for r in out] == [True, False, True, False, True, True]
    assert [r.text for r in out if r.ok] == ["echo fine b0", "echo emptychoices: b", "echo fine b1",
                                             "echo truncatedonce: b"]
    assert out[1].error.kind == out[3].error.kind == "bad_response"
    assert out[1].error.attempts == out[3].error.attempts == 3
    assert server.counts["truncated: b"] == 3 and server.counts["deep: b"] == 3
    assert server.counts["fine b0"] == server.counts["fine b1"] == 1
