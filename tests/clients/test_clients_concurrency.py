"""Concurrency limits, pacing, sync and async entry points (also inside a running event loop, as in Jupyter)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from valor_lib.clients import ChatRequest


def test_concurrency_limit_is_respected(backend, make_server, make_client):
    server = make_server(latency_s=0.05)
    client = make_client(backend, server, cache="off", max_concurrency=4)
    started = time.monotonic()
    results = client.map([f"q{i}" for i in range(24)], progress=False)
    elapsed = time.monotonic() - started
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(24)]
    assert server.max_in_flight == 4 and client.limiter.max_in_flight == 4
    assert 6 * 0.05 <= elapsed < 6 * 0.05 + 1.5


def test_requests_per_minute_spaces_call_starts(make_server, make_client):
    server = make_server()
    client = make_client("openai-chat", server, cache="off", max_concurrency=8, requests_per_minute=600)
    started = time.monotonic()
    client.map([f"q{i}" for i in range(5)], progress=False)
    assert time.monotonic() - started >= 4 * 0.1 - 0.01


def test_map_reports_each_result_in_the_calling_thread(make_server, make_client):
    import threading

    server = make_server(latency_s=0.01)
    client = make_client("gemini", server, cache="off", max_concurrency=3)
    seen = []
    caller = threading.get_ident()
    results = client.map([f"q{i}" for i in range(10)], progress=False,
                         on_result=lambda i, r: seen.append((i, r.text, threading.get_ident())))
    assert sorted(seen) == [(i, f"echo: q{i}", caller) for i in range(10)]
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(10)]


def test_sync_calls_work_inside_a_running_event_loop(make_server, make_client):
    """A Jupyter cell runs while the kernel's event loop is running; map/complete must still work."""
    server = make_server()
    client = make_client("openai-responses", server, cache="off")

    async def notebook_cell():
        return client.complete("one").text, [r.text for r in client.map(["a", "b"], progress=False)]

    assert asyncio.run(notebook_cell()) == ("echo: one", ["echo: a", "echo: b"])


def test_async_calls_from_a_foreign_loop(make_server, make_client):
    server = make_server(latency_s=0.05)
    client = make_client("openai-chat", server, cache="off", max_concurrency=8)

    async def main():
        single = await client.acomplete("x")
        many = await client.amap([f"q{i}" for i in range(8)])
        gathered = await asyncio.gather(*(client.acomplete(f"g{i}") for i in range(8)))
        return single, many, gathered

    started = time.monotonic()
    single, many, gathered = asyncio.run(main())
    assert single.text == "echo: x"
    assert [r.text for r in many] == [f"echo: q{i}" for i in range(8)]
    assert [r.text for r in gathered] == [f"echo: g{i}" for i in range(8)]
    assert time.monotonic() - started < 1.0  # concurrent, not 17 x 0.05 s in sequence


def test_calls_from_many_threads(make_server, make_client):
    server = make_server(latency_s=0.02)
    client = make_client("gemini", server, cache="off", max_concurrency=4)
    with ThreadPoolExecutor(6) as pool:
        texts = list(pool.map(lambda i: client.complete(f"t{i}").text, range(12)))
    assert texts == [f"echo: t{i}" for i in range(12)]
    assert server.max_in_flight <= 4


def test_identical_greedy_requests_share_one_call(make_server, make_client):
    server = make_server(latency_s=0.05)
    client = make_client("openai-chat", server, cache="off")
    request = ChatRequest.from_prompt("same", temperature=0.0)
    results = client.map([request] * 5, progress=False)
    assert {r.text for r in results} == {"echo: same"}
    assert len(server.received) == 1
    usage = client.usage.as_dict()
    assert usage["api_calls"] == 1 and usage["cache_hits"] == 4 and usage["requests"] == 5
