"""Side-by-side CPU jobs in freshly spawned interpreter processes.

Tiny models scale poorly over threads: a toy GRPO step is only 1.3x faster on two threads than on one, so
three single-threaded seeds side by side on two cores finish 1.3x sooner than the same seeds one after the
other on two threads. Give each job one thread: a two-threaded job next to another one stalls at every
parallel region (the toy detector's pretraining took 2.3x longer that way). Spawned, not forked: a child starts
without the parent's torch threads, locks or CUDA state.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from contextlib import contextmanager
from multiprocessing import get_context
from typing import Any


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's CPU threads set to ``threads`` inside the block (None or 0: left as they are) and the caller's
    count restored after it, so that a job run in this process (:func:`run_jobs` with one worker or on a GPU)
    leaves the threads of whatever runs next as it found them."""
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes; jobs must be importable functions with picklable arguments."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))


def run_side_by_side(fn: Callable[..., Any], jobs: Mapping[Hashable, Mapping[str, Any]],
                     workers: int) -> dict[Hashable, Any]:
    """``fn(**kwargs)`` for every job, ``workers`` at a time; the results by job key. The first error, or an
    interrupt (Ctrl-C, a notebook's stop button), terminates the other jobs at once and is raised: resumable
    jobs pick up from their last checkpoint when called again."""
    pool = process_pool(min(workers, max(len(jobs), 1)))
    try:
        futures = {key: pool.submit(fn, **kwargs) for key, kwargs in jobs.items()}
        done, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            raise failed.exception()
        return {key: future.result() for key, future in futures.items()}
    except BaseException:
        for process in list((getattr(pool, "_processes", None) or {}).values()):  # no public API before 3.14
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_jobs(fn: Callable[..., Any], jobs: Mapping[Hashable, Mapping[str, Any]], workers: int) -> dict[Hashable, Any]:
    """``fn(**kwargs)`` for every job, results by job key: side by side (:func:`run_side_by_side`) on a CPU-only
    machine with several workers and jobs; in this process, one after the other, with one worker, one job, or a
    GPU (which the jobs share better in turn)."""
    import torch

    if workers == 1 or len(jobs) <= 1 or torch.cuda.is_available():
        return {key: fn(**kwargs) for key, kwargs in jobs.items()}
    return run_side_by_side(fn, jobs, workers)
