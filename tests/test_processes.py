"""Spawned worker pools for side-by-side CPU jobs."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from valor_lib.processes import process_pool, run_jobs, run_side_by_side


def power(base: int, exponent: int) -> int:
    return base**exponent


def pid_plus(offset: int) -> int:
    return os.getpid() + offset


def nap(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("seconds must be non-negative")
    time.sleep(seconds)


def test_jobs_run_in_other_processes_and_return_their_results():
    with process_pool(2) as pool:
        futures = [pool.submit(os.getpid) for _ in range(2)]
        pids = {f.result() for f in futures}
    assert os.getpid() not in pids and pids


def test_side_by_side_results_come_back_by_job_key():
    jobs = {"a": {"base": 7, "exponent": 1}, "b": {"base": 2, "exponent": 10}, "c": {"base": 3, "exponent": 2}}
    assert run_side_by_side(power, jobs, workers=2) == {"a": 7, "b": 1024, "c": 9}
    assert run_side_by_side(power, {}, workers=2) == {}


@pytest.mark.timeout(60)
def test_the_first_error_stops_the_other_jobs_at_once():
    jobs = {"long": {"seconds": 600}, "broken": {"seconds": -1}}
    with pytest.raises(ValueError, match="non-negative"):
        run_side_by_side(nap, jobs, workers=2)
    assert not multiprocessing.active_children()


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        process_pool(0)


def test_run_jobs_stays_in_this_process_with_one_worker_or_one_job(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    here = os.getpid()
    assert run_jobs(pid_plus, {"a": {"offset": 0}, "b": {"offset": 1}}, workers=1) == {"a": here, "b": here + 1}
    assert run_jobs(pid_plus, {"a": {"offset": 0}}, workers=2) == {"a": here}
    apart = run_jobs(pid_plus, {"a": {"offset": 0}, "b": {"offset": 0}}, workers=2)
    assert here not in apart.values()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU: jobs take turns on it
    assert run_jobs(pid_plus, {"a": {"offset": 0}, "b": {"offset": 0}}, workers=2) == {"a": here, "b": here}


def test_torch_threads_sets_the_count_inside_and_restores_it_after_errors_too():
    import torch

    from valor_lib.processes import torch_threads

    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(other):
        raise RuntimeError("job failed")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
