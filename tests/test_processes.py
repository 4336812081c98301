"""Spawned worker pools for side-by-side CPU jobs."""

from __future__ import annotations

import os

import pytest

from valor_lib.processes import process_pool


def test_jobs_run_in_other_processes_and_return_their_results():
    with process_pool(2) as pool:
        futures = [pool.submit(os.getpid) for _ in range(2)]
        pids = {f.result() for f in futures}
    assert os.getpid() not in pids and pids


def test_a_job_error_reaches_the_caller():
    with process_pool(1) as pool, pytest.raises(ValueError, match="invalid literal"):
        pool.submit(int, "not a number").result()


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        process_pool(0)
