"""Summaries of prediction records: accuracy in both scoring modes (percent), breakdowns by answer type and
subset, error-type counts, judge failures, tool use (with how often ``gd_detect`` found nothing) and throughput;
all JSON-ready for ``metrics.json``."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def _pct(values: Sequence[float]) -> float | None:
    return round(100.0 * sum(values) / len(values), 2) if values else None


def _accuracy(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"n": len(records), "strict": _pct([r["score_strict"] for r in records]),
            "paper": _pct([r["score_paper"] for r in records])}


def _grouped(records: Iterable[Mapping[str, Any]], field: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        if record.get(field) is not None:
            groups[str(record[field])].append(record)
    return {name: _accuracy(group) for name, group in sorted(groups.items())}


def depth_map_reuse(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What a per-image depth-map cache saves on these records: successful depth calls, the distinct images
    they were made on (one map each), and the share of map computations saved (1 - images / calls)."""
    calls = [(r.get("image_sha256"), c) for r in records for c in r.get("tool_calls") or ()
             if c["name"] == "depth" and c["ok"]]
    images = len({image for image, _ in calls})
    return {"depth_calls": len(calls), "images": images,
            "saved_share": round(1 - images / len(calls), 4) if calls else None}


def empty_detections(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How often ``gd_detect`` found nothing, and what it cost (percent; None where nothing is counted): the
    successful calls and the share of them that returned no box; of the items that called it, the share with at
    least one empty call, and the strict accuracy on those items and on the others. A program whose detection
    comes back empty can only fall back to a guess, so on a yes/no benchmark a detector that over-predicts can
    gain accuracy by finding *something* more often."""
    called = [(r, [not c.get("result") for c in r.get("tool_calls") or () if c["name"] == "gd_detect" and c["ok"]])
              for r in records]
    called = [(r, empties) for r, empties in called if empties]
    with_empty = [r for r, empties in called if any(empties)]
    without = [r for r, empties in called if not any(empties)]
    return {"calls": sum(len(e) for _, e in called), "empty_calls": _pct([x for _, e in called for x in e]),
            "items_with_empty": _pct([any(e) for _, e in called]),
            "accuracy_with_empty": _accuracy(with_empty)["strict"], "accuracy_without_empty": _accuracy(without)["strict"]}


def summarize(records: Sequence[Mapping[str, Any]], timings: Sequence[Mapping[str, Any]] = (),
              benchmark: str | None = None) -> dict[str, Any]:
    """Summary of one benchmark's records (module docstring)."""
    accuracy = _accuracy(records)
    summary: dict[str, Any] = {
        "benchmark": benchmark, "n": accuracy["n"],
        "accuracy_strict": accuracy["strict"], "accuracy_paper": accuracy["paper"],
        "by_answer_type": _grouped(records, "answer_type"),
        "error_types": dict(sorted(Counter(r.get("error_type") or "ok" for r in records).items())),
    }
    subsets = _grouped(records, "subset")
    if subsets:
        summary["by_subset"] = subsets
    with_response = [r for r in records if r.get("format_ok") is not None]
    summary["format_ok"] = _pct([float(r["format_ok"]) for r in with_response])
    calls = Counter(c["name"] for r in records for c in r.get("tool_calls") or ())
    summary["tool_calls_per_item"] = round(sum(calls.values()) / len(records), 3) if records else None
    summary["tool_calls_by_name"] = dict(sorted(calls.items()))
    summary["depth_map_reuse"] = depth_map_reuse(records)
    summary["empty_detections"] = empty_detections(records)
    judged = [r["judge"] for r in records if r.get("judge")]
    if judged:
        summary["judge"] = {"asked": len(judged), "failed": sum(j["verdict"] is None for j in judged)}
    wall = sum(float(t.get("wall_s", 0.0)) for t in timings)
    summary["wall_s"] = round(wall, 3)
    summary["items_per_s"] = round(len(timings) / wall, 3) if wall > 0 else None
    return summary


def overall(summaries: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Mean accuracy over benchmarks (each benchmark counts once, as in the paper's tables)."""
    strict = [s["accuracy_strict"] for s in summaries.values() if s.get("accuracy_strict") is not None]
    paper = [s["accuracy_paper"] for s in summaries.values() if s.get("accuracy_paper") is not None]
    return {"benchmarks": len(summaries),
            "mean_accuracy_strict": round(sum(strict) / len(strict), 2) if strict else None,
            "mean_accuracy_paper": round(sum(paper) / len(paper), 2) if paper else None}
