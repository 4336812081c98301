"""Reward throughput on one GRPO batch against the local Gemini-protocol server (prints, never asserts on time).
Run: ``pytest tests/benchmarks/bench_rewards.py -m benchmark -s``.

The batch: 64 queries x 5 rollouts = 320 responses, each needing 4 verifier calls (1,280 distinct calls) and
a syntax check; the server answers with the toy verifier's rules after 0.5 s of simulated model latency.

- ours: ``RewardScorer.score_batch`` at 64 calls in flight: every verifier call of the batch is issued at
  once (bounded by the client), syntax checks run on warm sandbox workers meanwhile. Ideal:
  ceil(1280 / 64) x 0.5 s = 10 s.
- client only: the same 1,280 requests through ``ChatClient.map`` alone (no parsing, no syntax checks), the
  floor our scorer can reach with this client on this machine.
- baseline (the authors' scheme, run in the same process): 24 worker threads; each takes one rollout, checks
  its syntax in a freshly spawned Python interpreter, then makes its four verifier calls one after another.

The server runs in its own process (so its CPU use does not compete with the client for this process's GIL)
and answers with a cheap deterministic verdict. Each run's calls are counted by the server.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from valor_lib.clients import ChatClient, SamplingParams
from valor_lib.paths import toy_dir
from valor_lib.programs import parse_response
from valor_lib.rewards import VERIFIER_HEADS, RewardScorer, build_request, parse_verdict
from valor_lib.rewards.prompts import default_tool_api, format_verdict
from valor_lib.testing import ModelServer

QUERIES, ROLLOUTS, LATENCY_S, CAP, BASELINE_THREADS = 64, 5, 0.5, 64, 24
CALLS = QUERIES * ROLLOUTS * len(VERIFIER_HEADS)
IDEAL_S = math.ceil(CALLS / CAP) * LATENCY_S
KEY = "AIza-bench-not-a-real-key"

# what the authors' syntax check does per rollout: a new interpreter, dummy tools, the program as a function body
_SPAWN_PRELUDE = """
import math
import numpy as np
def gd_detect(image, prompt):
    return [{"bbox": [0, 0, 10, 10], "label": n.strip(), "score": 1.0} for n in prompt.split(",") if n.strip()]
def depth(image, bbox):
    return 0.5
def vqa(image, bbox, question):
    return "yes"
image = object()
"""


def _batch() -> tuple[list[str], list[str]]:
    """64 toy queries x 5 distinct rollouts from the template programmer (correct and flawed)."""
    programmer = pytest.importorskip("valor_lib.policy.template_programmer")
    path = toy_dir("pretrain_queries.jsonl")
    if not path.is_file():
        pytest.skip("the toy world has not been generated")
    queries, responses = [], []
    seen_questions: set[str] = set()
    for line in path.open():
        question = json.loads(line)["question"]
        if question in seen_questions:
            continue
        seen_questions.add(question)
        flaws = [None, *programmer.applicable_flaws(programmer.parse_query(question))]
        for r in range(ROLLOUTS):
            written = programmer.write_program(question, flaws[r % len(flaws)])
            # distinct plans and programs in every rollout, so no verifier call is shared
            text = written.text.replace("</plan>", f"({r + 1}) Return the result.\n</plan>", 1)
            tag = f"{len(seen_questions)}-{r}"
            responses.append(text.replace("</answer>", f"result_version = '{tag}'\n</answer>", 1))
            queries.append(question)
        if len(seen_questions) == QUERIES:
            return queries, responses
    pytest.skip("not enough toy queries")


def cheap_verdict(request) -> str:
    """A verifier reply decided by the prompt's length (deterministic, costs nothing)."""
    return format_verdict(len(request.messages[-1].text) % 3 != 0, "Decided by the benchmark server.")


cheap_verdict.name = "cheap-verdict"


def _serve(conn, latency_s: float) -> None:
    """Child process: run the server, report its port, answer "count" (answered calls since the last count)."""
    with ModelServer(cheap_verdict, latency_s=latency_s) as server:
        conn.send(server.gemini_base_url)
        while conn.recv() == "count":
            conn.send(len(server.answered()))
            server.reset_stats()


@contextmanager
def _server_process(latency_s: float) -> Iterator[tuple[str, object]]:
    """(base URL, a function returning the calls answered since it was last called) of a server process."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(child, latency_s), daemon=True)
    process.start()
    try:
        base_url = parent.recv()

        def count() -> int:
            parent.send("count")
            return parent.recv()

        yield base_url, count
    finally:
        parent.send("stop")
        process.join(timeout=10)
        if process.is_alive():
            process.kill()


def _requests(tool_api: str, queries: list[str], responses: list[str]) -> list:
    requests = []
    for query, response in zip(queries, responses, strict=True):
        parsed = parse_response(response)
        inputs = {"question": query, "plan": parsed.plan, "program": parsed.code, "tools": tool_api}
        requests += [build_request(head, **inputs) for head in VERIFIER_HEADS]
    return requests


def _spawned_syntax_check(code: str) -> bool:
    body = "\n".join("    " + line for line in code.splitlines()) or "    pass"
    source = f"{_SPAWN_PRELUDE}\ndef _program():\n    final_answer = None\n{body}\n    return final_answer\n" \
             "assert _program() is not None\n"
    try:
        return subprocess.run([sys.executable, "-c", source], capture_output=True, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _baseline(client: ChatClient, tool_api: str, queries: list[str], responses: list[str]) -> list[float]:
    def one(query: str, response: str) -> float:
        parsed = parse_response(response)
        if not parsed.format_ok:
            return 0.0
        heads = {"syntax": float(_spawned_syntax_check(parsed.code))}
        inputs = {"question": query, "plan": parsed.plan, "program": parsed.code, "tools": tool_api}
        for head in VERIFIER_HEADS:
            result = client.complete(build_request(head, **inputs, sampling=SamplingParams()))
            heads[head] = float(bool(result.ok and parse_verdict(result.output)))
        return 0.3 * heads["logic"] + 0.1 * heads["syntax"] + 0.2 * (heads["attribute"] + heads["spatial"]
                                                                      + heads["adherence"])

    with ThreadPoolExecutor(BASELINE_THREADS) as pool:
        return list(pool.map(one, queries, responses))


@pytest.mark.benchmark
def test_bench_reward_batch(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    queries, responses = _batch()
    tool_api = default_tool_api()
    with _server_process(LATENCY_S) as (base_url, answered):
        def client() -> ChatClient:
            return ChatClient("gemini:gemini-2.5-flash", role="llm_verifier", base_url=base_url, api_key=KEY,
                              cache="off", max_concurrency=CAP)

        with client() as ours_client:
            scorer = RewardScorer(ours_client, tool_api=tool_api)
            scorer.score_batch(queries[:5], responses[:5], progress=False)  # warm workers and connections
            answered()
            started = time.perf_counter()
            results = scorer.score_batch(queries, responses, progress=False)
            ours_s = time.perf_counter() - started
            ours_calls = answered()
            stats = scorer.last_stats

        with client() as plain_client:
            started = time.perf_counter()
            plain_client.map(_requests(tool_api, queries, responses), progress=False)
            client_s = time.perf_counter() - started
            answered()

        with client() as base_client:
            started = time.perf_counter()
            baseline_totals = _baseline(base_client, tool_api, queries, responses)
            baseline_s = time.perf_counter() - started
            baseline_calls = answered()

    assert ours_calls == CALLS and baseline_calls == CALLS, (ours_calls, baseline_calls, stats)
    assert [r.total for r in results] == pytest.approx(baseline_totals)
    print(f"\nreward batch: {len(responses)} responses, {CALLS} verifier calls, latency {LATENCY_S} s, cap {CAP}")
    print(f"  ours      {ours_s:6.2f} s  (ideal {IDEAL_S:.1f} s, {ours_s / IDEAL_S:.2f}x ideal; "
          f"syntax checks {stats.syntax_s:.2f} s alongside)")
    print(f"  client    {client_s:6.2f} s  (ChatClient.map of the same requests alone)")
    print(f"  baseline  {baseline_s:6.2f} s  ({BASELINE_THREADS} threads, spawned syntax check, sequential heads)")
    print(f"  speed-up  {baseline_s / ours_s:6.2f}x")
