"""Interrupting a long batch and running it again loses nothing and repeats no completed call."""

from __future__ import annotations

import asyncio
import time

import pytest

from valor_lib.clients import ChatRequest

PROMPTS = [f"item {i}" for i in range(40)]


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("exc", [Interrupt, KeyboardInterrupt])
def test_interrupted_map_resumes_without_repeating_calls(exc, backend, make_server, make_client):
    server = make_server(latency_s=0.02)
    client = make_client(backend, server, max_concurrency=4)
    seen = []

    def stop_after_ten(i, result):
        seen.append(i)
        if len(seen) == 10:
            raise exc("stop here")

    with pytest.raises(exc):
        client.map(PROMPTS, progress=False, on_result=stop_after_ten)
    cached_before = len(client.cache)
    assert 10 <= cached_before < len(PROMPTS)  # stopped part-way; calls in flight were let finish
    assert len(server.answered()) == cached_before

    rerun = make_client(backend, server, max_concurrency=4).map(PROMPTS, progress=False)
    assert [r.text for r in rerun] == [f"echo: {p}" for p in PROMPTS]
    assert sum(r.cached for r in rerun) == cached_before
    counts = server.answered_counts()
    assert len(counts) == len(PROMPTS) and set(counts.values()) == {1}  # every request seen exactly once


def test_cancelled_async_batch_keeps_completed_answers(make_server, make_client):
    server = make_server(latency_s=0.05)
    client = make_client("openai-chat", server, max_concurrency=4)
    requests = [ChatRequest.from_prompt(p, temperature=0.0) for p in PROMPTS]

    async def run_then_cancel():
        task = asyncio.ensure_future(client.amap(requests))
        await asyncio.sleep(0.22)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_then_cancel())
    time.sleep(0.1)
    completed = len(client.cache)
    assert 4 <= completed < len(PROMPTS)
    rerun = client.map(requests, progress=False)
    assert all(r.ok for r in rerun) and sum(r.cached for r in rerun) == completed
    counts = server.answered_counts()
    assert len(counts) == len(PROMPTS)
    # only calls cut off in flight by the cancellation may have reached the server twice
    assert sum(counts.values()) - len(PROMPTS) <= 4
