"""Side-by-side CPU jobs: a pool of freshly spawned interpreter processes.

Tiny models scale poorly over threads: a toy GRPO step is only 1.3x faster on two threads than on one, so
three single-threaded seeds side by side on two cores finish 1.3x sooner than the same seeds one after the
other on two threads. Give each job one thread: a two-threaded job next to another one stalls at every
parallel region (the toy detector's pretraining took 2.3x longer that way). Spawned, not forked: a child starts
without the parent's torch threads, locks or CUDA state.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes; jobs must be importable functions with picklable arguments."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
