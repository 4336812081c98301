"""Held-out accuracy of policies with the evaluation harness (the same solver and prediction cache as stage 08).

    items = eval_items(params.eval, seed=0)
    runs = evaluate_policy("hf:results/grpo_training/policy", params.eval, stage.common, items, seed=0)
    row = accuracy_row(runs)          # {"omni3d-bench": 41.7, ..., "overall": 55.2}
    table = seed_summary({0: row, 1: ...})  # {"seeds": {"0": row, ...}, "mean": {...}, "std": {...}, ...}

Ground truth is used here only to score; no training stage sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from valor_lib.evaluation.benchmarks import load
from valor_lib.evaluation.records import EvalItem
from valor_lib.policy.config import PolicyEvalParams

OVERALL = "overall"


def eval_items(p: PolicyEvalParams, seed: int) -> dict[str, list[EvalItem]]:
    """The held-out items of every benchmark in ``p.benchmarks`` (``p.limit`` per benchmark)."""
    source = p.data.source()
    return {benchmark: load(benchmark, source, p.limit, seed) for benchmark in p.benchmarks}


def evaluate_policy(policy: str, p: PolicyEvalParams, common: Any, items: Mapping[str, list[EvalItem]], *,
                    seed: int, progress: bool = False) -> dict[str, Any]:
    """Runs (``BenchmarkRun`` per benchmark) of ``policy`` with the common detector, depth and VQA backends;
    finished predictions are reused from the content-addressed cache."""
    from valor_lib.evaluation.systems import evaluate_benchmarks, judge_for, program_system

    solver, _ = program_system(policy, common.backends.detector, common, p)
    try:
        judge = judge_for(common.backends.judge) if "gqa" in items else None
        return evaluate_benchmarks(solver, items, judge=judge, seed=seed, batch_size=p.batch_size, progress=progress)
    finally:
        solver.writer.close()


def accuracy_row(runs: Mapping[str, Any], mode: str = "strict") -> dict[str, float]:
    """Accuracy (percent) per benchmark and their unweighted mean (``overall``)."""
    row = {name: float(run.summary[f"accuracy_{mode}"]) for name, run in runs.items()}
    row[OVERALL] = round(float(np.mean(list(row.values()))), 2)
    return row


def seed_summary(rows: Mapping[int, Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """Per-seed rows and, per column, their mean, standard deviation (ddof 1 with several seeds), min and max:
    ``{"seeds": {"0": row, ...}, "mean": {column: value}, "std": {...}, "min": {...}, "max": {...}}``."""
    if not rows:
        raise ValueError("no seeds to summarise")
    columns = list(next(iter(rows.values())))
    values = {c: np.array([row[c] for row in rows.values()], dtype=float) for c in columns}
    spread = len(rows) > 1
    return {
        "seeds": {str(seed): dict(row) for seed, row in rows.items()},
        "mean": {c: round(float(v.mean()), 2) for c, v in values.items()},
        "std": {c: round(float(v.std(ddof=1)) if spread else 0.0, 2) for c, v in values.items()},
        "min": {c: round(float(v.min()), 2) for c, v in values.items()},
        "max": {c: round(float(v.max()), 2) for c, v in values.items()},
    }
