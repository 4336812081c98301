"""Item-by-item comparisons of detectors on the same programs: per benchmark within one run (notebook 07), and
pooled over draws of the toy detector (notebook 09).

A detector's score on an item is its strict score averaged over fine-tuning seeds. Two detectors are compared by
the mean difference of their item scores, in points, with a bootstrap interval: over items within one run; over
draws *and* items when pooling, so that the interval also carries how much another pretrained detector moves the
result. Items are shared by the draws (the same benchmark questions), so a resampled item is taken in every
resampled draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from valor_lib.grounding.experiment import PRETRAINED, kind_of

# The comparisons the grounding claims rest on: (first, second), reported as first - second.
COMPARISONS = (("verified", PRETRAINED), ("unverified", PRETRAINED), ("verified", "unverified"))


def item_scores(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{benchmark: {kind: {item id: score}}}`` from ``{run name: {benchmark: BenchmarkRun}}``: a kind's score on
    an item is the mean strict score of its runs (its fine-tuning seeds)."""
    collected: dict[str, dict[str, dict[str, list[float]]]] = {}
    for name, per_benchmark in runs.items():
        for benchmark, run in per_benchmark.items():
            items = collected.setdefault(benchmark, {}).setdefault(kind_of(name), {})
            for record in run.records:
                items.setdefault(record["id"], []).append(float(record["score_strict"]))
    return {benchmark: {kind: {i: float(np.mean(s)) for i, s in items.items()} for kind, items in kinds.items()}
            for benchmark, kinds in collected.items()}


def item_score_table(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, list]]:
    """:func:`item_scores` in the compact form the stage's metrics keep: ``{benchmark: {"ids": [sorted ids],
    kind: [score per id]}}`` (a kind missing an item gets None there)."""
    out: dict[str, dict[str, list]] = {}
    for benchmark, kinds in item_scores(runs).items():
        ids = sorted({i for items in kinds.values() for i in items})
        out[benchmark] = {"ids": ids} | {kind: [_round(items.get(i)) for i in ids] for kind, items in kinds.items()}
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def paired_changes(runs: Mapping[str, Mapping[str, Any]], rounds: int = 2000, seed: int = 0,
                   ) -> dict[str, dict[str, dict[str, Any]]]:
    """``{benchmark: {kind: change}}``: each fine-tuned kind's accuracy change over the pretrained detector on
    the same items, with the item-level noise that seed spreads leave out. ``change`` is the mean difference of
    item scores (points), ``ci95`` its 95% bootstrap interval over items (``rounds`` resamples), ``better`` /
    ``worse`` the items the kind scores above / below the pretrained one."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for benchmark, kinds in item_scores(runs).items():
        base = kinds.get(PRETRAINED)
        if base is None:
            continue
        ids = sorted(base)
        for kind, items in kinds.items():
            if kind == PRETRAINED:
                continue
            diff = 100 * np.array([items[i] - base[i] for i in ids])
            means = diff[rng.integers(0, len(diff), size=(rounds, len(diff)))].mean(axis=1)
            out.setdefault(benchmark, {})[kind] = {
                "change": round(float(diff.mean()), 2), "ci95": _interval(means),
                "better": int((diff > 0).sum()), "worse": int((diff < 0).sum()), "items": len(diff)}
    return out


def _interval(means: np.ndarray) -> list[float]:
    return [round(float(q), 2) for q in np.percentile(means, [2.5, 97.5])]


def paired_rows(changes: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """:func:`paired_changes` as table rows: one per (benchmark, kind)."""
    return [{"benchmark": benchmark, "detector": kind, "change (points)": c["change"],
             "95% interval over items": f"[{c['ci95'][0]:+.1f}, {c['ci95'][1]:+.1f}]",
             "items better / worse": f"{c['better']} / {c['worse']} of {c['items']}"}
            for benchmark, kinds in changes.items() for kind, c in kinds.items()]


def pooled_change(draws: Mapping[str, Mapping[str, Mapping[str, Sequence]]], first: str, second: str,
                  benchmarks: Sequence[str], rounds: int = 4000, seed: int = 0) -> dict[str, Any] | None:
    """``first`` minus ``second`` in mean accuracy over ``benchmarks`` (the mean of the benchmarks' accuracies,
    as the claims measure it), pooled over ``draws`` (``{draw name: item_score_table}``): the mean over draws of
    each draw's difference, with a 95% interval from resampling draws and, within each benchmark, items (the same
    items in every resampled draw; over items alone for one draw). With few draws the interval understates how much
    another draw moves the result (three draws: a resample repeats one draw three times in one round of nine).
    Draws lacking a kind or a benchmark are left out; items are those every used draw scored for both kinds. None
    when no draw has both kinds. The result does not depend on the order of ``benchmarks`` or items."""
    used = {name: table for name, table in draws.items()
            if all(b in table and first in table[b] and second in table[b] for b in benchmarks)}
    if not used or not benchmarks:
        return None
    per_benchmark = [_differences(used, b, first, second) for b in sorted(benchmarks)]
    if any(d.shape[1] == 0 for d in per_benchmark):
        return None
    means = _resampled_means(per_benchmark, rounds, np.random.default_rng(seed))
    by_draw = np.mean([d.mean(axis=1) for d in per_benchmark], axis=0)
    k = len(used)
    return {"first": first, "second": second, "change": round(float(by_draw.mean()), 2), "ci95": _interval(means),
            "by_draw": {name: round(float(v), 2) for name, v in zip(used, by_draw, strict=True)},
            "draws": k, "items": int(sum(d.shape[1] for d in per_benchmark))}


def _resampled_means(per_benchmark: Sequence[np.ndarray], rounds: int, rng: np.random.Generator,
                     block: int = 500) -> np.ndarray:
    """``rounds`` bootstrap means of the mean over benchmarks of (draws x items) arrays: draws resampled once per
    round for every benchmark, items within each benchmark. Resamples are drawn as counts, ``block`` rounds at a
    time, so memory stays at ``block`` x items whatever the number of draws."""
    k = per_benchmark[0].shape[0]
    out = []
    for start in range(0, rounds, block):
        size = min(block, rounds - start)
        draw_counts = rng.multinomial(k, np.full(k, 1 / k), size=size)
        per = [np.einsum("rk,kn,rn->r", draw_counts, d, rng.multinomial(d.shape[1], np.full(d.shape[1], 1 / d.shape[1]),
                                                                          size=size)) / (k * d.shape[1])
               for d in per_benchmark]
        out.append(np.mean(per, axis=0))
    return np.concatenate(out)


def _differences(draws: Mapping[str, Mapping[str, Mapping[str, Sequence]]], benchmark: str, first: str,
                 second: str) -> np.ndarray:
    """(draws x items) of 100 x (first - second) on ``benchmark``, over the items every draw scored for both."""
    scored = []
    for table in draws.values():
        column = table[benchmark]
        scored.append({i: (a, b) for i, a, b in zip(column["ids"], column[first], column[second], strict=True)
                       if a is not None and b is not None})
    ids = sorted(set.intersection(*(set(s) for s in scored)))
    return np.array([[100 * (s[i][0] - s[i][1]) for i in ids] for s in scored], dtype=float).reshape(len(scored),
                                                                                                      len(ids))


def verdict(change: Mapping[str, Any]) -> str:
    """``"first > second"`` / ``"first < second"`` where the interval excludes 0, else ``"undecided"``."""
    low, high = change["ci95"]
    if low > 0:
        return f"{change['first']} > {change['second']}"
    if high < 0:
        return f"{change['first']} < {change['second']}"
    return "undecided"


# The columns of :func:`pooled_rows`.
POOLED_COLUMNS = ("thresholds", "comparison", "change (points)", "ci95 low", "ci95 high", "verdict", "draws", "items",
                  "by draw")


def pooled_rows(draws_by_mode: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Sequence]]]],
                benchmarks: Sequence[str], rounds: int = 4000, seed: int = 0) -> list[dict[str, Any]]:
    """:func:`pooled_change` for every comparison of :data:`COMPARISONS` and every answering mode
    (``{mode: {draw name: item_score_table}}``, e.g. the common thresholds and each detector's own): one row each,
    with its verdict and each draw's change (``by draw``). Comparisons no draw can make are left out."""
    rows = []
    for mode, draws in draws_by_mode.items():
        for first, second in COMPARISONS:
            change = pooled_change(draws, first, second, benchmarks, rounds, seed)
            if change is None:
                continue
            values = (mode, f"{first} - {second}", change["change"], *change["ci95"], verdict(change),
                      change["draws"], change["items"], list(change["by_draw"].values()))
            rows.append(dict(zip(POOLED_COLUMNS, values, strict=True)))
    return rows
