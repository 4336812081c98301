"""``ChatClient``: the one way every stage calls an LLM or VLM.

    client = ChatClient("gemini:gemini-2.5-flash", max_concurrency=32)
    results = client.map([ChatRequest.from_prompt(p, temperature=0.0) for p in prompts], desc="verify")
    answers = [r.text if r.ok else None for r in results]          # failures are recorded, never defaulted
    stage.extra_metrics["clients"] = accounting_summary()

Each request is answered from the response cache, or by the backend under a concurrency (and optional
requests-per-minute) limit with retries on transient failures; answers are cached as they arrive, so an
interrupted batch resumes where it stopped. Identical requests in flight at the same time share one call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from valor_lib.clients.backends import Backend, create_backend
from valor_lib.clients.backends.base import redact
from valor_lib.clients.cache import CACHE_MODES, CachedAnswer, ResponseCache, make_key
from valor_lib.clients.errors import CallError, ClientConfigError
from valor_lib.clients.retry import Limiter, RetryPolicy
from valor_lib.clients.runtime import Batcher, LoopThread
from valor_lib.clients.types import ChatRequest, ChatResult
from valor_lib.clients.usage import Usage, usage_for
from valor_lib.specs import parse_spec

CACHE_PATH_ENV = "VALOR_CLIENT_CACHE"
RequestLike = ChatRequest | str


def default_cache_path() -> Path:
    """``$VALOR_CLIENT_CACHE`` if set, else ``data/cache/clients/responses.sqlite``."""
    if env := os.environ.get(CACHE_PATH_ENV):
        return Path(env)
    from valor_lib.paths import data_dir

    return data_dir("cache", "clients", "responses.sqlite")


class ChatClient:
    """A chat model behind a spec string, e.g. ``openai:gpt-5-mini`` or ``toy:verifier``.

    Args:
        spec: backend spec (``valor_lib.specs``); ``role`` checks the kind may serve that role.
        max_concurrency: calls in flight at once (default: the backend's, e.g. 32 for APIs).
        requests_per_minute: optional pacing of call starts.
        timeout_s: per-attempt timeout of network calls.
        retry: :class:`RetryPolicy` for retryable failures (429, 5xx, timeouts, dropped connections,
            malformed or empty answers).
        cache: ``"use"`` (read and write), ``"refresh"`` (call again, overwrite), ``"off"``; default is the
            backend's (``use`` for APIs, ``off`` for local models and toy brains).
        cache_path: SQLite file of the response cache (default :func:`default_cache_path`).
        seed: seeds the retry jitter.
        **backend_options: passed to the backend, e.g. ``api="chat"``, ``base_url=``, ``api_key=``,
            ``device="cpu"``, ``batch_size=``, ``brain_options={...}``.

    Missing credentials raise :class:`MissingCredentialsError` here, before any work.
    """

    DRAIN_S = 30.0  # after an interruption of map(), how long calls in flight may take to finish

    def __init__(self, spec: str, *, role: str | None = None, max_concurrency: int | None = None,
                 requests_per_minute: float | None = None, timeout_s: float = 120.0,
                 retry: RetryPolicy | None = None, cache: str | None = None,
                 cache_path: str | os.PathLike | None = None, seed: int = 0, **backend_options: Any):
        self.spec = parse_spec(spec, role=role)
        self.backend: Backend = create_backend(self.spec, timeout_s=timeout_s, **backend_options)
        self.cache_mode = cache or self.backend.default_cache
        if self.cache_mode not in CACHE_MODES:
            raise ClientConfigError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
        self.cache = ResponseCache(cache_path or default_cache_path()) if self.cache_mode != "off" else None
        self.usage: Usage = usage_for(self.backend.kind, self.backend.model)
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        concurrency = max_concurrency or self.backend.default_concurrency
        if self.backend.batched:
            concurrency = max(concurrency, 2 * self.backend.batch_size)
        self.limiter = Limiter(concurrency, requests_per_minute)
        self._identity = self.backend.identity()
        self._secrets = self.backend.secrets()
        self._rng = random.Random(seed)
        self._inflight: dict[str, asyncio.Future[ChatResult]] = {}
        self._runtime = LoopThread.get()
        self._batcher = Batcher(self.backend) if self.backend.batched else None

    def __repr__(self) -> str:
        return f"ChatClient({self.backend.label!r}, cache={self.cache_mode!r})"

    # ----- keys -------------------------------------------------------------------------------------
    def key_for(self, request: RequestLike) -> str:
        """The cache key of a request for this backend."""
        return make_key(self._identity, _as_request(request).key_payload())[0]

    def prepare(self, requests: Iterable[RequestLike]) -> list[ChatRequest]:
        """Requests as :class:`ChatRequest`, with repeated identical sampling requests that carry no
        ``sample_index`` numbered 0, 1, 2, ... in order (so a GRPO group gets distinct samples)."""
        seen: Counter[str] = Counter()
        prepared = []
        for item in requests:
            request = _as_request(item)
            if request.sample_index is None and request.params.is_sampling:
                base = make_key(self._identity, request.key_payload(with_sample_index=False))[0]
                request = request.with_sample_index(seen[base])
                seen[base] += 1
            prepared.append(request)
        return prepared

    # ----- public calls -----------------------------------------------------------------------------
    def complete(self, request: RequestLike) -> ChatResult:
        """One request, synchronously (works inside Jupyter)."""
        if self._runtime.on_loop_thread():
            raise RuntimeError("complete() called from the clients' event loop; use `await acomplete()`")
        future = self._runtime.submit(self._resolve(_as_request(request)))
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def acomplete(self, request: RequestLike) -> ChatResult:
        """One request, from any event loop."""
        coro = self._resolve(_as_request(request))
        if self._runtime.on_loop_thread():
            return await coro
        return await asyncio.wrap_future(self._runtime.submit(coro))

    async def amap(self, requests: Sequence[RequestLike]) -> list[ChatResult]:
        """Many requests from any event loop; results in request order."""
        prepared = self.prepare(requests)
        results: list[ChatResult | None] = [None] * len(prepared)

        def keep(i: int, result: ChatResult) -> None:
            results[i] = result

        coro = self._run_many(prepared, keep)
        if self._runtime.on_loop_thread():
            await coro
        else:
            await asyncio.wrap_future(self._runtime.submit(coro))
        return results

    def map(self, requests: Sequence[RequestLike], *, desc: str | None = None, progress: bool = True,
            on_result: Callable[[int, ChatResult], None] | None = None) -> list[ChatResult]:
        """Many requests, synchronously, with a progress bar; results in request order.

        ``on_result(index, result)`` runs in the calling thread as each result arrives (e.g. to append it to
        a result file). An exception there, or Ctrl-C, stops the batch: no new calls start, the calls in
        flight get up to ``DRAIN_S`` seconds to finish (a second Ctrl-C cuts this short), their answers are
        cached, and the exception propagates. A rerun then repeats no completed call.
        """
        if self._runtime.on_loop_thread():
            raise RuntimeError("map() called from the clients' event loop; use `await amap()`")
        prepared = self.prepare(requests)
        results: list[ChatResult | None] = [None] * len(prepared)
        arrivals: queue.SimpleQueue[tuple[int, ChatResult]] = queue.SimpleQueue()
        finished, stop = threading.Event(), threading.Event()
        future = self._runtime.submit(self._run_many(prepared, lambda i, r: arrivals.put((i, r)), finished, stop))
        bar = tqdm(total=len(prepared), desc=desc or self.backend.label, disable=not progress)
        counts: Counter[str] = Counter()
        try:
            for _ in range(len(prepared)):
                i, result = self._next_arrival(arrivals, future)
                results[i] = result
                counts["cached"] += result.cached
                counts["failed"] += not result.ok
                bar.update(1)
                bar.set_postfix(counts, refresh=False)
                if on_result is not None:
                    on_result(i, result)
            future.result()
        except BaseException:
            stop.set()
            try:
                if not finished.wait(timeout=self.DRAIN_S):
                    future.cancel()
                    finished.wait(timeout=10)
            except BaseException:  # interrupted again while draining: stop now
                future.cancel()
                raise
            raise
        finally:
            bar.close()
        return results

    @staticmethod
    def _next_arrival(arrivals: queue.SimpleQueue, future: Any) -> tuple[int, ChatResult]:
        while True:
            try:
                return arrivals.get(timeout=0.1)
            except queue.Empty:
                if future.done():
                    future.result()  # raises the batch's error, if any
                    return arrivals.get_nowait()

    def close(self) -> None:
        """Release the backend's connections and the cache connection of this thread."""
        try:
            self._runtime.submit(self.backend.aclose()).result(timeout=30)
        finally:
            if self._batcher is not None:
                self._runtime.loop.call_soon_threadsafe(self._batcher.close)
            if self.cache is not None:
                self._runtime.loop.call_soon_threadsafe(self.cache.close)  # the loop thread's connection
                self.cache.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- the async core (runs on the loop thread) -------------------------------------------------
    async def _run_many(self, requests: list[ChatRequest], sink: Callable[[int, ChatResult], None],
                        finished: threading.Event | None = None, stop: threading.Event | None = None) -> None:
        """Resolve all requests with a pool of workers; ``sink(i, result)`` as each completes. Once ``stop``
        is set, calls already started finish (retries included) and no new call starts."""
        pending = iter(enumerate(requests))

        async def worker() -> None:
            for i, request in pending:
                try:
                    result = await self._resolve(request, stop)
                except _Stopped:
                    return
                sink(i, result)

        n_workers = min(len(requests), 2 * self.limiter.max_concurrency)
        workers = [asyncio.ensure_future(worker()) for _ in range(n_workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if finished is not None:
                finished.set()

    async def _resolve(self, request: ChatRequest, stop: threading.Event | None = None) -> ChatResult:
        key, description = make_key(self._identity, request.key_payload())
        while True:
            if self.cache_mode == "use" and (hit := self.cache.get(key)) is not None:
                self.usage.hit()
                return ChatResult(key, True, hit.text, cached=True, input_tokens=hit.input_tokens,
                                  output_tokens=hit.output_tokens, finish_reason=hit.finish_reason)
            shared = self._inflight.get(key)
            if shared is None:
                break
            try:
                result = await asyncio.shield(shared)
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():
                    raise
                continue  # the call we waited on was cancelled by its owner: make our own
            (self.usage.hit if result.ok else self.usage.failed)()
            return dataclasses.replace(result, cached=result.ok, attempts=0)
        own = asyncio.get_running_loop().create_future()
        self._inflight[key] = own
        try:
            result = await self._call(request, key, description, stop)
            own.set_result(result)
            return result
        except BaseException as err:
            if isinstance(err, asyncio.CancelledError | _Stopped):
                own.cancel()  # waiters on this call make their own
            else:
                own.set_exception(err)
                own.exception()  # mark retrieved: the owner re-raises it below
            raise
        finally:
            del self._inflight[key]

    async def _call(self, request: ChatRequest, key: str, description: str,
                    stop: threading.Event | None = None) -> ChatResult:
        attempt = 0
        while True:
            attempt += 1
            async with self.limiter:
                if attempt == 1 and stop is not None and stop.is_set():
                    raise _Stopped
                started = time.monotonic()
                try:
                    reply = await self._attempt(request)
                    error = None
                except asyncio.CancelledError:
                    raise
                except CallError as err:
                    error = err
                except Exception as err:
                    error = self.backend.classify(err)
                latency = time.monotonic() - started
            if error is None:
                self.usage.answered(reply.input_tokens, reply.output_tokens, latency)
                if self.cache is not None:
                    answer = CachedAnswer(reply.text, reply.input_tokens, reply.output_tokens, reply.finish_reason)
                    self.cache.put(key, self.backend.label, description, answer,
                                   replace=self.cache_mode == "refresh")
                return ChatResult(key, True, reply.text, attempts=attempt, input_tokens=reply.input_tokens,
                                  output_tokens=reply.output_tokens, latency_s=latency,
                                  finish_reason=reply.finish_reason)
            will_retry = error.retryable and attempt < self.retry.max_attempts
            self.usage.attempt_failed(error.error_type, will_retry)
            if not will_retry:
                self.usage.failed()
                message = redact(f"{error.message} (after {attempt} attempt{'s' * (attempt > 1)})", self._secrets)
                return ChatResult(key, False, None, error.error_type, message, attempts=attempt, latency_s=latency)
            await asyncio.sleep(self.retry.delay_s(attempt, error.retry_after_s, self._rng))

    async def _attempt(self, request: ChatRequest) -> Any:
        if self._batcher is not None:
            return await self._batcher.submit(request)
        async with asyncio.timeout(self.timeout_s):
            return await self.backend.acall(request)


class _Stopped(Exception):
    """A batch was stopped before this request's call started."""


def _as_request(item: RequestLike) -> ChatRequest:
    if isinstance(item, ChatRequest):
        return item
    if isinstance(item, str):
        return ChatRequest.from_prompt(item)
    raise TypeError(f"expected a ChatRequest or a prompt string, got {type(item).__name__}")
