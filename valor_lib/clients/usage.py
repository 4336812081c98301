"""Token, call and cost accounting per backend, and the process-wide summary a stage puts in metrics.json.

Clients for the same backend label (``kind:model``) share one :class:`Usage`; a notebook runs one stage per
kernel, so ``accounting_summary()`` is that stage's bill: ``stage.extra_metrics["clients"] = accounting_summary()``.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

# USD per 1M tokens (input, output), list prices for standard (non-batch) calls; check before quoting.
PRICES_USD_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
}
PRICED_KINDS = ("openai", "gemini")
_VERSION_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{3}|latest)$")


def price_for(kind: str, model: str) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens, or None when unknown (local models, unlisted names)."""
    if kind not in PRICED_KINDS:
        return None
    name = model.removeprefix("models/")
    return PRICES_USD_PER_MTOK.get(name) or PRICES_USD_PER_MTOK.get(_VERSION_SUFFIX.sub("", name))


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


class Usage:
    """Counters for one backend label; updated by the client, read by anyone (thread-safe)."""

    def __init__(self, kind: str, model: str):
        self.kind, self.model = kind, model
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0  # requests resolved (answered from cache or API, or failed)
            self.cache_hits = 0  # answered without a call (cache, or an identical call in flight)
            self.api_calls = 0  # attempts sent to the backend, retries included
            self.retries = 0
            self.failures = 0  # requests that ended without an answer
            self.input_tokens = 0
            self.output_tokens = 0
            self.latencies_s: list[float] = []
            self.errors_by_type: Counter[str] = Counter()

    def hit(self) -> None:
        with self._lock:
            self.requests += 1
            self.cache_hits += 1

    def attempt_failed(self, error_type: str, will_retry: bool) -> None:
        with self._lock:
            self.api_calls += 1
            self.errors_by_type[error_type] += 1
            self.retries += will_retry

    def answered(self, input_tokens: int | None, output_tokens: int | None, latency_s: float) -> None:
        with self._lock:
            self.requests += 1
            self.api_calls += 1
            self.input_tokens += input_tokens or 0
            self.output_tokens += output_tokens or 0
            self.latencies_s.append(latency_s)

    def failed(self) -> None:
        with self._lock:
            self.requests += 1
            self.failures += 1

    def cost_usd(self) -> float | None:
        price = price_for(self.kind, self.model)
        if price is None:
            return None
        return round((self.input_tokens * price[0] + self.output_tokens * price[1]) / 1e6, 10)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counters, latency summary (seconds per answered call) and estimated cost."""
        with self._lock:
            lat = sorted(self.latencies_s)
            return {
                "kind": self.kind,
                "model": self.model,
                "requests": self.requests,
                "api_calls": self.api_calls,
                "cache_hits": self.cache_hits,
                "retries": self.retries,
                "failures": self.failures,
                "errors_by_type": dict(sorted(self.errors_by_type.items())),
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "latency_s": {
                    "mean": round(sum(lat) / len(lat), 4) if lat else None,
                    "p50": _percentile(lat, 0.5),
                    "p95": _percentile(lat, 0.95),
                    "max": lat[-1] if lat else None,
                },
                "cost_usd": self.cost_usd(),
            }


_REGISTRY: dict[str, Usage] = {}
_REGISTRY_LOCK = threading.Lock()


def usage_for(kind: str, model: str) -> Usage:
    """The shared :class:`Usage` of backend label ``kind:model`` in this process."""
    label = f"{kind}:{model}"
    with _REGISTRY_LOCK:
        if label not in _REGISTRY:
            _REGISTRY[label] = Usage(kind, model)
        return _REGISTRY[label]


def accounting_summary(reset: bool = False) -> dict[str, Any]:
    """Every backend used in this process: per label, and totals (cost sums the priced backends and
    lists the others in ``unpriced``). With ``reset``, counters start again from zero afterwards."""
    with _REGISTRY_LOCK:
        usages = dict(sorted(_REGISTRY.items()))
    by_backend = {label: u.as_dict() for label, u in usages.items()}
    summed = ("requests", "api_calls", "cache_hits", "retries", "failures", "input_tokens", "output_tokens")
    total: dict[str, Any] = {k: sum(d[k] for d in by_backend.values()) for k in summed}
    total["cost_usd"] = round(sum(d["cost_usd"] for d in by_backend.values() if d["cost_usd"] is not None), 10)
    total["unpriced"] = [label for label, d in by_backend.items() if d["cost_usd"] is None and d["api_calls"]]
    if reset:
        for u in usages.values():
            u.reset()
    return {"by_backend": by_backend, "total": total}
