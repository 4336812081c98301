"""The fine-tuning stage's experiment: runs per (pseudo-label set, seed), identical programs for every detector
on the grounding-heavy benchmarks, and the claim table (pretrained vs unverified vs verified, spread over seeds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

MAIN_VARIANT = "verified"
PRETRAINED = "pretrained"


def run_dir(out: Path, variant: str, seed: int, main_seed: int) -> Path:
    """Where a run's detector goes: the main run (verified, first seed) is ``<out>/detector``, the stage's
    product; the others are ``<out>/runs/<variant>-seed<seed>``."""
    if variant == MAIN_VARIANT and seed == main_seed:
        return out / "detector"
    return out / "runs" / f"{variant}-seed{seed}"


def run_name(variant: str, seed: int) -> str:
    return f"{variant}-seed{seed}"


class SharedPrograms:
    """A program writer that writes each batch once and hands the same responses to every later caller, so
    that every detector is evaluated on identical programs (paper Figure 7)."""

    def __init__(self, writer: Any):
        self.writer = writer
        self.memory: dict[tuple, list[list[str]]] = {}
        self.written = 0

    def write(self, questions: list[str], n: int = 1, seed: int | None = None) -> list[list[str]]:
        key = (tuple(questions), n, seed)
        if key not in self.memory:
            self.memory[key] = self.writer.write(list(questions), n=n, seed=seed)
            self.written += len(questions)
        return [list(r) for r in self.memory[key]]


def _policy_solvers(params: Any) -> Callable[[str, Any], tuple[Any, Any]]:
    """``solver_for(detector spec, common)``: the policy's solver on that detector, every solver sharing one
    :class:`SharedPrograms` writer."""
    from valor_lib.evaluation.systems import program_system

    shared: SharedPrograms | None = None

    def solver_for(spec: str, common: Any) -> tuple[Any, Any]:
        nonlocal shared
        solver, toolbox = program_system(params.policy, spec, common, params)
        shared = shared or SharedPrograms(solver.writer)
        solver.writer = shared
        return solver, toolbox

    return solver_for


def benchmark_runs(detectors: Mapping[str, str], params: Any, common: Any, seed: int,
                   progress: bool = True) -> dict[str, dict[str, Any]]:
    """``{detector name: {benchmark: BenchmarkRun}}`` for ``params`` (the stage's ``evaluation`` block): one
    program writer for all, with cached predictions reused across stages."""
    solver_for = _policy_solvers(params)
    return _per_detector(detectors, lambda spec: solver_for(spec, common), params, seed, progress)


def threshold_key(thresholds: Sequence[float]) -> str:
    """A (box, text) threshold pair's name in sweeps, tables and metrics: ``"<box>/<text>"``."""
    box, text = thresholds
    return f"{float(box):g}/{float(text):g}"


def threshold_sweep(detectors: Mapping[str, str], params: Any, common: Any, seed: int,
                    at_common: Mapping[str, Mapping[str, Any]] | None = None,
                    progress: bool = True) -> dict[str, dict[str, dict[str, Any]]]:
    """``{threshold_key: {detector name: {benchmark: BenchmarkRun}}}``: :func:`benchmark_runs` at each answering
    threshold pair of ``params.threshold_sweep`` and at ``common.gd_thresholds``, in increasing order (only
    ``gd_detect`` changes; the programs are the same everywhere). ``at_common``: runs already made at
    ``common.gd_thresholds``, by detector name, used instead of running them again. Each detector runs all its
    pairs in turn, so its model outputs are computed once and thresholded per pair."""
    solver_for = _policy_solvers(params)
    points = sorted({threshold_key(t): [float(x) for x in t]
                     for t in [*params.threshold_sweep, common.gd_thresholds]}.items(), key=lambda item: item[1])
    common_key = threshold_key(common.gd_thresholds)
    sweep: dict[str, dict[str, dict[str, Any]]] = {key: {} for key, _ in points}
    for name, spec in detectors.items():
        for key, thresholds in points:
            if at_common is not None and key == common_key:
                sweep[key][name] = dict(at_common[name])
                continue
            sweep[key][name] = _run_at(name, spec, thresholds, solver_for, params, common, seed, progress)
    return sweep


def own_threshold_runs(detectors: Mapping[str, str], own: Mapping[str, Sequence[float]], params: Any, common: Any,
                       seed: int, known: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
                       progress: bool = True) -> dict[str, dict[str, Any]]:
    """``{detector name: {benchmark: BenchmarkRun}}`` with every detector answering at its own pair ``own[name]``
    (:mod:`valor_lib.grounding.heldout`), the same programs as :func:`benchmark_runs`. ``known``: runs already made,
    ``{threshold_key: {detector name: runs}}`` (a :func:`threshold_sweep`, the runs at ``common.gd_thresholds``),
    reused where a detector's own pair is among them."""
    solver_for = _policy_solvers(params)
    known = known or {}
    out = {}
    for name, spec in detectors.items():
        done = known.get(threshold_key(own[name]), {}).get(name)
        out[name] = dict(done) if done is not None else _run_at(name, spec, own[name], solver_for, params, common,
                                                                seed, progress)
    return out


def _run_at(name: str, spec: str, thresholds: Sequence[float], solver_for: Callable[[str, Any], tuple[Any, Any]],
            params: Any, common: Any, seed: int, progress: bool) -> dict[str, Any]:
    """One detector's ``{benchmark: BenchmarkRun}`` with ``gd_detect`` at ``thresholds``."""
    at = common.model_copy(update={"gd_thresholds": [float(x) for x in thresholds]})
    return _per_detector({name: spec}, lambda s: solver_for(s, at), params, seed, progress)[name]


def sweep_rows(sweep: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (thresholds, detector): strict accuracy per benchmark and their mean."""
    rows = []
    for thresholds, runs in sweep.items():
        for name, per_benchmark in runs.items():
            scores = {b: run.summary["accuracy_strict"] for b, run in per_benchmark.items()}
            rows.append({"thresholds": thresholds, "detector": name, **scores,
                         "mean": round(float(np.mean(list(scores.values()))), 2)})
    return rows


def reference_runs(detectors: Mapping[str, str], params: Any, common: Any, seed: int,
                   progress: bool = True) -> dict[str, dict[str, Any]]:
    """As :func:`benchmark_runs`, but every detector runs the template programmer's correct programs (written
    from the question text alone): a policy-free view of what the detector changes."""
    from valor_lib.evaluation.systems import tool_solver
    from valor_lib.policy.template_programmer import TemplateWriter

    writer = TemplateWriter("correct")
    return _per_detector(detectors, lambda spec: tool_solver(writer, writer.identity(), spec, common, params),
                         params, seed, progress)


def _per_detector(detectors: Mapping[str, str], solver_for: Callable[[str], tuple[Any, Any]], params: Any,
                  seed: int, progress: bool) -> dict[str, dict[str, Any]]:
    """Every benchmark of ``params`` with each detector's (solver, toolbox), one detector in memory at a time."""
    import gc

    from valor_lib.evaluation.benchmarks import load
    from valor_lib.evaluation.systems import evaluate_benchmarks

    items = {b: load(b, params.data.source(), limit=params.limit, seed=seed) for b in params.benchmarks}
    runs = {}
    for name, spec in detectors.items():
        solver, toolbox = solver_for(spec)
        runs[name] = evaluate_benchmarks(solver, items, judge=None, seed=seed, batch_size=params.batch_size,
                                         progress=progress)
        del solver, toolbox
        gc.collect()
    return runs


def accuracy_by_kind(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """``{benchmark: {kind: [strict accuracy per run]}}`` from ``{run name: {benchmark: BenchmarkRun}}``; a
    run's kind is its name without the ``-seed<n>`` suffix (``pretrained`` stays itself)."""
    accuracy: dict[str, dict[str, list[float]]] = {}
    for name, per_benchmark in runs.items():
        for benchmark, run in per_benchmark.items():
            accuracy.setdefault(benchmark, {}).setdefault(kind_of(name), []).append(run.summary["accuracy_strict"])
    return accuracy


def kind_of(name: str) -> str:
    """A run's kind: its name without the ``-seed<n>`` suffix (``pretrained`` stays itself)."""
    return name if name == PRETRAINED else name.rsplit("-seed", 1)[0]


def empty_detection_rows(runs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (benchmark, run): its strict accuracy next to how often its ``gd_detect`` calls found nothing
    and the accuracy on the items where they did / did not (:func:`valor_lib.evaluation.summary.empty_detections`)."""
    return [{"benchmark": benchmark, "detector": name, "accuracy": run.summary["accuracy_strict"],
             **run.summary["empty_detections"]}
            for name, per_benchmark in runs.items() for benchmark, run in per_benchmark.items()]


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean, standard deviation (population; 0 for one value) and the values."""
    arr = np.asarray(values, dtype=float)
    return {"mean": round(float(arr.mean()), 4) if len(arr) else None,
            "std": round(float(arr.std()), 4) if len(arr) else None, "n": len(arr),
            "values": [round(float(v), 4) for v in arr]}


def claim_rows(maps: Mapping[str, Sequence[float]], accuracy: Mapping[str, Mapping[str, Sequence[float]]],
               ) -> list[dict[str, Any]]:
    """One row per detector kind: mAP and accuracy per benchmark as ``mean ± std (n)`` strings, plus means."""
    rows = []
    for kind, values in maps.items():
        row: dict[str, Any] = {"detector": kind, "mAP": _fmt(spread(values))}
        for benchmark, per_kind in accuracy.items():
            if kind in per_kind:
                row[f"{benchmark} acc %"] = _fmt(spread(per_kind[kind]))
        means = [spread(per_kind[kind])["mean"] for per_kind in accuracy.values() if kind in per_kind]
        if means:
            row["mean acc %"] = round(float(np.mean(means)), 2)
        rows.append(row)
    return rows


def claim_summary(maps: Mapping[str, Sequence[float]], accuracy: Mapping[str, Mapping[str, Sequence[float]]],
                  ) -> dict[str, Any]:
    """Each fine-tuned kind against the pretrained detector: the change of mean mAP and of mean accuracy per
    benchmark, and whether it clears the seed spread (``raises_*``: mean gain larger than the kind's std)."""
    base_map = spread(maps[PRETRAINED])["mean"]
    out: dict[str, Any] = {}
    for kind, values in maps.items():
        if kind == PRETRAINED:
            continue
        s = spread(values)
        gains = {b: _gain(per_kind, kind) for b, per_kind in accuracy.items() if kind in per_kind}
        out[kind] = {"map_gain": round(s["mean"] - base_map, 4), "raises_map": s["mean"] - base_map > s["std"],
                     "accuracy_gain": {b: g for b, (g, _) in gains.items()},
                     "raises_accuracy": {b: raised for b, (_, raised) in gains.items()}}
    return out


def claim_lines(verdict: Mapping[str, Any]) -> str:
    """:func:`claim_summary` in words, one line per fine-tuned kind."""
    return "\n".join(f"{kind}: mAP {v['map_gain']:+.4f} vs pretrained ({'clears' if v['raises_map'] else 'within'} "
                     f"the seed spread); accuracy change {v['accuracy_gain']}" for kind, v in verdict.items())


def _gain(per_kind: Mapping[str, Sequence[float]], kind: str) -> tuple[float | None, bool]:
    if PRETRAINED not in per_kind:
        return None, False
    s, base = spread(per_kind[kind]), spread(per_kind[PRETRAINED])["mean"]
    return round(s["mean"] - base, 4), s["mean"] - base > s["std"]


def _fmt(s: Mapping[str, Any]) -> str:
    if s["mean"] is None:
        return "—"
    return f"{s['mean']:.4g}" if s["n"] == 1 else f"{s['mean']:.4g} ± {s['std']:.2g} (n={s['n']})"
