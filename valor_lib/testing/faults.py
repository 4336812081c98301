"""Fault injection for the protocol test servers: a scripted sequence, then seeded random faults.

Random faults are decided per request body and attempt (hash of seed, body and how often that body was
seen), so which request fails is the same on every run, whatever order concurrent requests arrive in.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

# "429": rate limited with Retry-After; "500"/"503": server errors; "drop": connection closed without an
# answer; "malformed": truncated JSON; "empty": no candidates / choices / output; "blocked": safety block;
# "slow": the normal answer after an extra delay (to trip client timeouts).
FAULT_KINDS = ("429", "500", "503", "drop", "malformed", "empty", "blocked", "slow")
TRANSIENT_FAULTS = ("429", "500", "503", "drop", "malformed", "empty")


@dataclass
class FaultPlan:
    """Which requests a server answers with a fault.

    ``script`` applies to the first requests in arrival order (``None`` = answer normally). After it,
    each attempt fails with probability ``rate`` (kind drawn from ``kinds``), at most ``max_per_request``
    times for the same request body, so every request eventually succeeds.
    """

    script: tuple[str | None, ...] = ()
    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500", "drop")
    seed: int = 0
    max_per_request: int = 3
    retry_after_s: float = 0.0
    slow_s: float = 1.0

    def __post_init__(self) -> None:
        self.script = tuple(self.script)
        self.kinds = tuple(self.kinds)
        unknown = {k for k in (*self.script, *self.kinds) if k is not None and k not in FAULT_KINDS}
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be in [0, 1]")
        if self.rate and not self.kinds:
            raise ValueError("a fault rate needs at least one fault kind")

    def decide(self, arrival: int, body: bytes, attempt: int, faults_so_far: int) -> str | None:
        """The fault for the ``arrival``-th request overall, the ``attempt``-th time this body arrives."""
        if arrival < len(self.script):
            return self.script[arrival]
        if self.rate <= 0 or faults_so_far >= self.max_per_request:
            return None
        digest = hashlib.sha256(body).hexdigest()
        rng = random.Random(f"{self.seed}|{digest}|{attempt}")
        if rng.random() < self.rate:
            return self.kinds[rng.randrange(len(self.kinds))]
        return None
