"""Retry policy (exponential backoff with jitter, Retry-After honoured) and the concurrency/rate limiter."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a retryable failure is tried again.

    Attempt ``n`` (1-based) that fails waits ``min(max_delay_s, initial_delay_s * multiplier**(n-1))``
    scaled by a random factor in ``[1 - jitter, 1]``, and at least the server's Retry-After (capped at
    ``max_retry_after_s``) when it sent one.
    """

    max_attempts: int = 6
    initial_delay_s: float = 1.0
    multiplier: float = 2.0
    max_delay_s: float = 60.0
    jitter: float = 0.5
    max_retry_after_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be in [0, 1]")
        if self.initial_delay_s < 0 or self.max_delay_s < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and multiplier >= 1")

    def delay_s(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt``."""
        backoff = min(self.max_delay_s, self.initial_delay_s * self.multiplier ** (attempt - 1))
        backoff *= 1.0 - self.jitter * rng.random()
        if retry_after_s is not None:
            backoff = max(backoff, min(max(retry_after_s, 0.0), self.max_retry_after_s))
        return backoff


class Limiter:
    """At most ``max_concurrency`` calls in flight, and (optionally) at most ``requests_per_minute`` starts
    per minute, spaced evenly. Use as ``async with limiter: ...`` inside one event loop."""

    def __init__(self, max_concurrency: int, requests_per_minute: float | None = None):
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if requests_per_minute is not None and requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be > 0")
        self.max_concurrency = max_concurrency
        self.interval_s = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._sem = asyncio.Semaphore(max_concurrency)
        self._next_start = 0.0
        self.in_flight = 0
        self.max_in_flight = 0

    async def __aenter__(self) -> Limiter:
        await self._sem.acquire()
        if self.interval_s:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self.interval_s
            if start > now:
                try:
                    await asyncio.sleep(start - now)
                except BaseException:
                    self._sem.release()
                    raise
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.in_flight -= 1
        self._sem.release()
