"""Client throughput on a GRPO-sized verifier batch against the local protocol server (prints, never asserts
on time). Run: ``pytest tests/benchmarks/bench_clients.py -m benchmark -s``.

The batch: 64 queries x 5 rollouts x 4 verifier heads = 1,280 calls, 0.5 s simulated model latency,
concurrency 64, so the ideal is ceil(1280 / 64) x 0.5 s = 10 s. Reported per backend: a raw-SDK baseline
(asyncio.gather under a semaphore, no cache, no retries) run in the same process, the cold run, the cached
rerun, and the cold run with 30 % transient faults (all must succeed, none duplicated in the cache).
"""

from __future__ import annotations

import asyncio
import math
import os
import time

import pytest

from valor_lib.clients import ChatClient, ChatRequest, RetryPolicy, accounting_summary
from valor_lib.testing import TRANSIENT_FAULTS, FaultPlan, ModelServer

QUERIES, ROLLOUTS, HEADS = 64, 5, 4
LATENCY_S, CONCURRENCY = 0.5, 64
N = QUERIES * ROLLOUTS * HEADS
IDEAL_S = math.ceil(N / CONCURRENCY) * LATENCY_S
KEY = "sk-bench-not-a-real-key"


def verifier_brain(request: ChatRequest) -> str:
    """Answers like a binary verifier head (deterministically, from the prompt)."""
    return "yes" if len(request.messages[-1].text) % 2 else "no"


def _requests() -> list[ChatRequest]:
    return [ChatRequest.from_prompt(f"Head {h}: judge query {q} rollout {r} head {h}", system="You are a verifier.",
                                    temperature=0.0, max_tokens=4)
            for q in range(QUERIES) for r in range(ROLLOUTS) for h in range(HEADS)]


def _client(name: str, server: ModelServer, cache_path, **options) -> ChatClient:
    spec = {"openai": "openai:gpt-5-mini", "gemini": "gemini:gemini-2.5-flash"}[name]
    base_url = server.openai_base_url if name == "openai" else server.gemini_base_url
    options = {"max_concurrency": CONCURRENCY, **options}
    return ChatClient(spec, api_key=KEY, base_url=base_url, cache_path=cache_path, **options)


async def _raw_openai(server: ModelServer, requests: list[ChatRequest]) -> float:
    import openai

    sdk = openai.AsyncOpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(request: ChatRequest) -> str:
        async with gate:
            response = await sdk.responses.create(
                model="gpt-5-mini", store=False, max_output_tokens=4,
                input=[{"role": m.role, "content": m.text} for m in request.messages])
            return response.output_text

    started = time.perf_counter()
    await asyncio.gather(*(one(r) for r in requests))
    elapsed = time.perf_counter() - started
    await sdk.close()
    return elapsed


def _timed_map(client: ChatClient, requests: list[ChatRequest]) -> tuple[float, float, list]:
    """Wall seconds, CPU seconds of this process (client and in-process server), results."""
    started, cpu = time.perf_counter(), time.process_time()
    results = client.map(requests, progress=False)
    return time.perf_counter() - started, time.process_time() - cpu, results


@pytest.mark.benchmark
@pytest.mark.parametrize("name", ["openai", "gemini"])
def test_bench_verifier_batch(name, tmp_path):
    requests = _requests()
    rows = []
    with ModelServer(verifier_brain, latency_s=LATENCY_S) as server:
        if name == "openai":
            cpu = time.process_time()
            raw = asyncio.run(_raw_openai(server, requests))
            rows.append(("raw SDK baseline", raw, f"cpu {time.process_time() - cpu:.1f} s"))
            server.reset_stats()
        accounting_summary(reset=True)
        with _client(name, server, tmp_path / "cache.sqlite") as client:
            cold, cpu, results = _timed_map(client, requests)
        assert all(r.ok for r in results)
        rows.append(("cold", cold, f"cpu {cpu:.1f} s, server max in flight {server.max_in_flight}"))
        with _client(name, server, tmp_path / "cache.sqlite") as client:
            warm, cpu, cached = _timed_map(client, requests)
        assert all(r.cached for r in cached)
        rows.append(("cached rerun", warm, f"cpu {cpu:.1f} s"))

    faults = FaultPlan(rate=0.3, kinds=TRANSIENT_FAULTS, seed=1, max_per_request=3)
    with ModelServer(verifier_brain, latency_s=LATENCY_S, faults=faults) as server:
        accounting_summary(reset=True)
        retry = RetryPolicy(max_attempts=6, initial_delay_s=0.1, max_delay_s=1.0)
        with _client(name, server, tmp_path / "faulty.sqlite", retry=retry) as client:
            faulty, cpu, results = _timed_map(client, requests)
            usage = client.usage.as_dict()
            stored = len(client.cache)
        counts = server.answered_counts()
        assert all(r.ok for r in results) and stored == N
        assert len(counts) == N and set(counts.values()) == {1}
        injected = sum(1 for r in server.received if r.fault)
        rows.append(("30% faults", faulty, f"cpu {cpu:.1f} s, {injected} faults injected, {usage['retries']} retries, "
                                            f"{usage['failures']} failures, {stored} cache entries, "
                                            f"errors {usage['errors_by_type']}"))

    load = os.getloadavg()[0]
    print(f"\n{name}: {N} calls, latency {LATENCY_S} s, concurrency {CONCURRENCY}, ideal {IDEAL_S:.1f} s, "
          f"load average {load:.1f} on {os.cpu_count()} cores")
    for label, seconds, note in rows:
        print(f"  {label:<17} {seconds:7.2f} s  ({seconds / IDEAL_S:5.2f} x ideal)  {note}")
