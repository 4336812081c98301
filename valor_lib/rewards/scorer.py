"""Scoring responses with the six reward heads: one response, or a whole GRPO batch at once.

:class:`RewardScorer` scores a batch like this:

1. every response is parsed (the format gate); responses that fail it skip the other heads;
2. the programs of the rest go to the sandbox with dummy tools (``execute_many`` on warm workers, the syntax
   head), in a worker thread, while
3. every verifier call of every response is in flight at once, bounded only by the client's concurrency
   limit. Identical inputs are judged once: a head's inputs are (question, plan) for logic, attribute and
   spatial and (plan, program) for adherence, so duplicate rollouts and shared plans cost one call each.

A verdict that cannot be parsed is asked again as a fresh sample (``sample_index`` 1, 2, ...; a greedy
configuration samples its retries at temperature 1), up to ``verdict_attempts`` requests; then the head is
recorded as failed, as is a call the client finally gave up on. Failed heads follow the failure policy
(:mod:`valor_lib.rewards.heads`): ``drop`` (default) or ``zero``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tqdm.auto import tqdm

from valor_lib.clients import ChatClient, SamplingParams
from valor_lib.clients.runtime import LoopThread
from valor_lib.programs import execute_many, parse_response
from valor_lib.rewards.heads import (
    HEADS,
    VERIFIER_HEADS,
    WEIGHTS,
    RewardResult,
    VerifierCall,
    check_failure_policy,
    check_weights,
    combine,
)
from valor_lib.rewards.prompts import INPUTS, build_request, default_tool_api, parse_verdict

RETRY_TEMPERATURE = 1.0
DEFAULT_CONCURRENCY = 64


@dataclasses.dataclass
class BatchStats:
    """What scoring one batch took."""

    responses: int = 0
    format_failures: int = 0
    verifier_jobs: int = 0  # distinct (head, inputs) judged
    verifier_requests: int = 0  # requests sent, retries of unparsable verdicts included
    programs: int = 0  # distinct programs run with dummy tools
    failed_heads: int = 0
    dropped: int = 0
    wall_s: float = 0.0
    syntax_s: float = 0.0


class RewardScorer:
    """The reward model over one verifier (a :class:`ChatClient` or a backend spec string).

    Args:
        verifier: the LLM verifier; a spec string builds a client with ``client_options`` (default
            ``max_concurrency`` 64).
        failure_policy: ``"drop"`` (a sample with a failed head gets total None) or ``"zero"``.
        sampling: the verifier's sampling parameters (default: the provider's defaults).
        verdict_attempts: requests per head before an unparsable verdict counts as a failure.
        syntax_timeout_s: wall limit of one dummy-tool run.
        exec_workers: sandbox workers (default: one per CPU).
        tool_api: the tool documentation shown to the logic head (default: ``valor_lib.tools``' API text).
    """

    def __init__(self, verifier: ChatClient | str, *, failure_policy: str = "drop",
                 weights: Mapping[str, float] = WEIGHTS, sampling: SamplingParams | None = None,
                 verdict_attempts: int = 3, syntax_timeout_s: float = 5.0, exec_workers: int | None = None,
                 tool_api: str | None = None, **client_options: Any):
        self.failure_policy = check_failure_policy(failure_policy)
        self.weights = check_weights(weights)
        if verdict_attempts < 1:
            raise ValueError("verdict_attempts must be >= 1")
        if isinstance(verifier, ChatClient):
            if client_options:
                raise ValueError(f"client options {sorted(client_options)} need a spec string, not a client")
            self.client = verifier
        elif isinstance(verifier, str):
            client_options.setdefault("max_concurrency", DEFAULT_CONCURRENCY)
            self.client = ChatClient(verifier, role="llm_verifier", **client_options)
        else:
            raise TypeError(f"verifier must be a ChatClient or a spec string, got {type(verifier).__name__}")
        self.sampling = sampling or SamplingParams()
        self.verdict_attempts = verdict_attempts
        self.syntax_timeout_s = syntax_timeout_s
        self.exec_workers = exec_workers
        self._tool_api = tool_api
        self._owns_client = not isinstance(verifier, ChatClient)
        self.last_stats = BatchStats()

    def close(self) -> None:
        """Close the verifier client if this scorer built it from a spec string."""
        if self._owns_client:
            self.client.close()

    @property
    def tool_api(self) -> str:
        if self._tool_api is None:
            self._tool_api = default_tool_api()
        return self._tool_api

    # ----- public API ---------------------------------------------------------------------------------
    def score(self, query: str, response: str) -> RewardResult:
        """Score one response (synchronously; works inside Jupyter)."""
        return self.score_batch([query], [response], progress=False)[0]

    def score_batch(self, queries: Sequence[str], responses: Sequence[str], *,
                    progress: bool = True) -> list[RewardResult]:
        """Score responses (``responses[i]`` answers ``queries[i]``); results in input order."""
        runtime = LoopThread.get()
        if runtime.on_loop_thread():
            raise RuntimeError("score_batch() called from the clients' event loop; use `await ascore_batch()`")
        future = runtime.submit(self.ascore_batch(queries, responses, progress=progress))
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def ascore(self, query: str, response: str) -> RewardResult:
        """Score one response from any event loop (concurrent calls share the client's limit)."""
        return (await self.ascore_batch([query], [response]))[0]

    async def ascore_batch(self, queries: Sequence[str], responses: Sequence[str], *,
                           progress: bool = False) -> list[RewardResult]:
        """Score a batch from any event loop; see the module docstring for how."""
        queries, responses = _checked(queries, responses)
        started = time.monotonic()
        stats = BatchStats(responses=len(responses))
        parsed = [parse_response(r) for r in responses]
        keep = [i for i, p in enumerate(parsed) if p.format_ok]
        stats.format_failures = len(parsed) - len(keep)

        programs = list(dict.fromkeys(parsed[i].code for i in keep))
        jobs: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}
        for i in keep:
            for head in VERIFIER_HEADS:
                inputs = self._inputs(head, queries[i], parsed[i].plan, parsed[i].code)
                jobs.setdefault((head, tuple(inputs.values())), inputs)
        stats.programs, stats.verifier_jobs = len(programs), len(jobs)

        bar = tqdm(total=len(jobs), desc="verifier", disable=not progress)
        syntax_task = asyncio.ensure_future(self._run_syntax(programs, stats))
        tasks = {key: asyncio.ensure_future(self._verify(key[0], inputs, stats, bar)) for key, inputs in jobs.items()}
        try:
            syntax = await syntax_task
            verdicts = {key: await task for key, task in tasks.items()}
        except BaseException:
            for task in (syntax_task, *tasks.values()):
                task.cancel()
            raise
        finally:
            bar.close()

        results = []
        for i, p in enumerate(parsed):
            calls = {}
            if p.format_ok:
                calls = {h: verdicts[(h, tuple(self._inputs(h, queries[i], p.plan, p.code).values()))]
                         for h in VERIFIER_HEADS}
            results.append(self._result(queries[i], responses[i], p, syntax.get(p.code), calls))
        stats.failed_heads = sum(len(r.failed_heads) for r in results)
        stats.dropped = sum(r.dropped for r in results)
        stats.wall_s = round(time.monotonic() - started, 3)
        self.last_stats = stats
        return results

    # ----- internals ----------------------------------------------------------------------------------
    def _inputs(self, head: str, question: str, plan: str, code: str) -> dict[str, str]:
        values = {"question": question, "plan": plan, "program": code}
        if head == "logic":
            values["tools"] = self.tool_api
        return {name: values[name] for name in INPUTS[head]}

    def _sampling_for(self, attempt: int) -> SamplingParams:
        if attempt > 0 and not self.sampling.is_sampling:
            return dataclasses.replace(self.sampling, temperature=RETRY_TEMPERATURE)
        return self.sampling

    async def _run_syntax(self, programs: list[str], stats: BatchStats) -> dict[str, tuple[bool, str | None]]:
        if not programs:
            return {}
        started = time.monotonic()
        runs = await asyncio.to_thread(execute_many, programs, None, self.syntax_timeout_s,
                                       workers=self.exec_workers)
        stats.syntax_s = round(time.monotonic() - started, 3)
        return {code: (run.ok, run.error_type) for code, run in zip(programs, runs, strict=True)}

    async def _verify(self, head: str, inputs: dict[str, str], stats: BatchStats, bar: Any) -> VerifierCall:
        started = time.monotonic()
        texts: list[str] = []
        try:
            for attempt in range(self.verdict_attempts):
                request = build_request(head, **inputs, sampling=self._sampling_for(attempt), sample_index=attempt)
                stats.verifier_requests += 1
                result = await self.client.acomplete(request)
                elapsed = round(time.monotonic() - started, 3)
                if not result.ok:
                    return VerifierCall(head, None, tuple(texts), f"{result.error_type}: {result.error}",
                                        attempt + 1, elapsed)
                texts.append(result.output)
                verdict = parse_verdict(result.output)
                if verdict is not None:
                    return VerifierCall(head, verdict, tuple(texts), None, attempt + 1, elapsed, result.cached)
            return VerifierCall(head, None, tuple(texts), f"unparsable verdict in {self.verdict_attempts} replies",
                                self.verdict_attempts, round(time.monotonic() - started, 3))
        finally:
            bar.update(1)

    def _result(self, query: str, response: str, parsed: Any, syntax: tuple[bool, str | None] | None,
                calls: dict[str, VerifierCall]) -> RewardResult:
        heads: dict[str, float | None] = {h: 0.0 for h in HEADS}
        status = {h: "skipped" for h in HEADS}
        heads["format"], status["format"] = float(parsed.format_ok), "ok"
        syntax_error = None
        if parsed.format_ok:
            ran, syntax_error = syntax
            heads["syntax"], status["syntax"] = float(ran), "ok"
            for head, call in calls.items():
                heads[head] = None if call.verdict is None else float(call.verdict)
                status[head] = "ok" if call.ok else "failed"
        timings = {"verifier_s": max((c.latency_s for c in calls.values()), default=0.0)}
        return RewardResult(
            query=query, response=response, plan=parsed.plan, code=parsed.code, format_ok=parsed.format_ok,
            heads=heads, status=status, total=combine(heads, status, self.failure_policy, self.weights),
            failure_policy=self.failure_policy, format_problems=list(parsed.problems), syntax_error=syntax_error,
            verifier=calls, timings=timings,
        )


def _checked(queries: Sequence[str], responses: Sequence[str]) -> tuple[list[str], list[str]]:
    queries, responses = list(queries), list(responses)
    if len(queries) != len(responses):
        raise ValueError(f"{len(queries)} queries for {len(responses)} responses")
    for name, values in (("queries", queries), ("responses", responses)):
        bad = [type(v).__name__ for v in values if not isinstance(v, str)]
        if bad:
            raise TypeError(f"{name} must be strings, got {bad[0]}")
    if any(not q.strip() for q in queries):
        raise ValueError("every query must be a non-empty string")
    return queries, responses


_SHARED: dict[str, RewardScorer] = {}


def shared_scorer(verifier: str, **options: Any) -> RewardScorer:
    """One scorer per (spec, options) in this process, so repeated calls reuse one client and its cache."""
    key = f"{verifier}|{sorted(options.items())!r}"
    if key not in _SHARED:
        _SHARED[key] = RewardScorer(verifier, **options)
    return _SHARED[key]


def compute_reward(query: str, response_text: str, verifier: ChatClient | RewardScorer | str,
                   **options: Any) -> RewardResult:
    """The reward of one response (contract): ``.total`` and ``.heads`` (None where a head failed).

    ``verifier`` is a client, a scorer, or a backend spec string such as ``toy:verifier`` or
    ``gemini:gemini-2.5-flash``; ``options`` go to :class:`RewardScorer`.
    """
    if isinstance(verifier, RewardScorer):
        if options:
            raise ValueError("options cannot be combined with a ready RewardScorer")
        scorer = verifier
    elif isinstance(verifier, str):
        scorer = shared_scorer(verifier, **options)
    else:
        scorer = RewardScorer(verifier, **options)
    return scorer.score(query, response_text)
