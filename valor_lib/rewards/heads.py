"""The reward heads, their weights, and how one scored response is recorded (:class:`RewardResult`).

``R = format * (0.3 logic + 0.1 syntax + 0.2 attribute + 0.2 spatial + 0.2 adherence)`` (paper §3.1, A.6.2;
weights from the authors' code). Every head is binary. ``format`` and ``syntax`` come from interpreters,
the other four from an LLM verifier.

A head ends in one of three states: ``ok`` (scored 0 or 1), ``skipped`` (not evaluated because the format
gate failed; scored 0, the total is 0 anyway) or ``failed`` (the verifier call failed or its verdict could
not be parsed after the allowed attempts). Failed heads are never silently scored 0: the failure policy
decides, explicitly, whether the sample is dropped from the update (``total`` is None) or the failed head
counts 0 and is logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

WEIGHTS: dict[str, float] = {"logic": 0.3, "syntax": 0.1, "attribute": 0.2, "spatial": 0.2, "adherence": 0.2}
VERIFIER_HEADS: tuple[str, ...] = ("logic", "attribute", "spatial", "adherence")
HEADS: tuple[str, ...] = ("format", "syntax", *VERIFIER_HEADS)
FAILURE_POLICIES: tuple[str, ...] = ("drop", "zero")
STATUSES: tuple[str, ...] = ("ok", "skipped", "failed")


def check_failure_policy(policy: str) -> str:
    """Validate a failure policy name."""
    if policy not in FAILURE_POLICIES:
        raise ValueError(f"failure_policy must be one of {FAILURE_POLICIES}, got {policy!r}")
    return policy


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights must cover exactly the five weighted heads with non-negative values."""
    if set(weights) != set(WEIGHTS):
        raise ValueError(f"weights must have exactly the keys {sorted(WEIGHTS)}, got {sorted(weights)}")
    if any(not isinstance(v, int | float) or v < 0 for v in weights.values()):
        raise ValueError(f"weights must be non-negative numbers, got {dict(weights)}")
    return {k: float(weights[k]) for k in WEIGHTS}


@dataclass(frozen=True)
class VerifierCall:
    """One verifier head's judgement: the raw reply of every attempt, the verdict, and how long it took."""

    head: str
    verdict: bool | None
    texts: tuple[str, ...] = ()
    error: str | None = None  # why the head failed (None when a verdict was parsed)
    attempts: int = 0
    latency_s: float = 0.0  # wall time from the first request to the last reply
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.verdict is not None


@dataclass
class RewardResult:
    """The reward of one response to one query, with every head and the evidence behind it.

    ``heads`` maps each of :data:`HEADS` to 1.0 / 0.0, or None where the head failed. ``total`` is None when
    the sample is dropped (failure policy ``drop`` and some head failed).
    """

    query: str
    response: str
    plan: str
    code: str
    format_ok: bool
    heads: dict[str, float | None]
    status: dict[str, str]
    total: float | None
    failure_policy: str
    format_problems: list[str] = field(default_factory=list)
    syntax_error: str | None = None  # error_type of the dummy-tool run (None when it ran)
    verifier: dict[str, VerifierCall] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def failed_heads(self) -> list[str]:
        return [h for h in HEADS if self.status[h] == "failed"]

    @property
    def dropped(self) -> bool:
        return self.total is None

    def as_record(self) -> dict[str, Any]:
        """A flat JSON-ready record (heads as columns, raw verifier replies kept)."""
        return {
            "query": self.query, "plan": self.plan, "code": self.code, "format_ok": self.format_ok,
            "total": self.total, "dropped": self.dropped, "failed_heads": self.failed_heads,
            **{h: self.heads[h] for h in HEADS},
            "syntax_error": self.syntax_error,
            "verifier_texts": {h: list(c.texts) for h, c in self.verifier.items()},
            "verifier_errors": {h: c.error for h, c in self.verifier.items() if c.error},
            "timings": dict(self.timings),
        }


def combine(heads: Mapping[str, float | None], status: Mapping[str, str], policy: str,
            weights: Mapping[str, float] = WEIGHTS) -> float | None:
    """The total reward: ``format * sum(w * head)``; None when a head failed and the policy is ``drop``."""
    if any(status[h] == "failed" for h in HEADS):
        if policy == "drop":
            return None
        check_failure_policy(policy)
    if not heads["format"]:
        return 0.0
    return round(sum(w * (heads[h] or 0.0) for h, w in weights.items()), 6)


def head_means(results: Iterable[RewardResult]) -> dict[str, float]:
    """Per-head mean over the heads actually evaluated (``ok``), plus the mean total over kept samples and
    the share of dropped samples and failed heads; heads never evaluated are left out."""
    results = list(results)
    means: dict[str, float] = {}
    for head in HEADS:
        scored = [r.heads[head] for r in results if r.status[head] == "ok"]
        if scored:
            means[head] = sum(scored) / len(scored)
    kept = [r.total for r in results if r.total is not None]
    if kept:
        means["total"] = sum(kept) / len(kept)
    if results:
        means["dropped"] = sum(r.dropped for r in results) / len(results)
        means["failed_heads"] = sum(len(r.failed_heads) for r in results) / len(results)
    return means
