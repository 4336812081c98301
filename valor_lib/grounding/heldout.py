"""Each detector of the fine-tuning stage on the held-out detection set (COCO val 2017 in the paper, the toy
``detection-val`` split here): COCO mAP, precision / recall at the answering thresholds, and, over a threshold
grid, the detector's *own* answering pair: where its ``gd_detect`` calls fare best for a program
(:func:`valor_lib.detection.evaluate.best_operating_point`, the criterion that chose ``common.gd_thresholds``
for the pretrained detector). Fine-tuning shifts a detector's scores, so one fixed pair can sit above one
detector's useful range and below another's; the own pair compares the boxes they find, not where their scores
sit. Only held-out detection data chooses it, never a benchmark.

    scores = score_detectors({"pretrained": "groundingdino-hf:data/toy/models/detector-base"},
                             "data/toy/detection/val.json", "data/toy/images/detection-val",
                             answering=[0.3, 0.1], nms_iou=0.5, grid=[0.1, 0.2, 0.3])
    scores["pretrained"]["own_thresholds"]   # [box, text]
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from valor_lib.processes import run_jobs, torch_threads


def score_detector(spec: str, coco_json: str | os.PathLike, image_dir: str | os.PathLike,
                   answering: Sequence[float], nms_iou: float | None, grid: Sequence[float] | None = None,
                   precision_at_answering: bool = True, batch_size: int = 8, device: str = "auto",
                   threads: int | None = None, progress: bool = False) -> dict[str, Any]:
    """One detector on the held-out set: ``detection`` (mAP / AP50 / ... with every category in the prompt, plus
    precision / recall at ``answering`` with ``nms_iou`` when ``precision_at_answering``) and, with a ``grid`` of
    threshold values, ``operating_points`` (every (box, text <= box) pair, one name per call, as programs call
    ``gd_detect``) and ``own_thresholds``, the best of them. ``threads``: torch CPU threads while it runs."""
    with torch_threads(threads):
        return _score(spec, coco_json, image_dir, answering, nms_iou, grid, precision_at_answering, batch_size,
                      device, progress)


def _score(spec: str, coco_json: str | os.PathLike, image_dir: str | os.PathLike, answering: Sequence[float],
           nms_iou: float | None, grid: Sequence[float] | None, precision_at_answering: bool, batch_size: int,
           device: str, progress: bool) -> dict[str, Any]:
    from valor_lib.detection.data import load_coco
    from valor_lib.detection.evaluate import (
        best_operating_point,
        evaluate_map,
        operating_points,
        precision_recall,
        predict,
        threshold_grid,
    )
    from valor_lib.detection.inference import Thresholds
    from valor_lib.grounding.mining import load_detector

    heldout = load_coco(coco_json, image_dir, "heldout")
    detector = load_detector(spec, device=device)
    detection = evaluate_map(detector, heldout, batch_size, progress=progress)
    if precision_at_answering:
        detection |= precision_recall(heldout, predict(detector, heldout, Thresholds(*answering), batch_size,
                                                       nms_iou, progress=progress))
    out: dict[str, Any] = {"detection": detection}
    if grid:
        rows = operating_points(detector, heldout, threshold_grid(grid), nms_iou=nms_iou, progress=progress)
        own = best_operating_point(rows)
        out |= {"operating_points": rows, "own_thresholds": [own.box, own.text]}
    return out


def score_detectors(specs: Mapping[str, str], coco_json: str | os.PathLike, image_dir: str | os.PathLike,
                    answering: Sequence[float], nms_iou: float | None, grid: Sequence[float] | None = None,
                    precision_for: Sequence[str] | None = None, batch_size: int = 8, device: str = "auto",
                    threads: int | None = 1, workers: int = 1, progress: bool = False) -> dict[str, dict[str, Any]]:
    """:func:`score_detector` for every named detector spec (``precision_for``: the names that also get precision
    / recall at ``answering``; None: all), ``workers`` at a time in spawned processes on a CPU (in turn in this
    process on a GPU or with one worker)."""
    jobs = {name: {"spec": spec, "coco_json": str(coco_json), "image_dir": str(image_dir),
                   "answering": [float(x) for x in answering], "nms_iou": nms_iou,
                   "grid": None if grid is None else [float(x) for x in grid],
                   "precision_at_answering": precision_for is None or name in precision_for,
                   "batch_size": batch_size, "device": device, "threads": threads, "progress": progress}
            for name, spec in specs.items()}
    return run_jobs(score_detector, jobs, workers)


def own_threshold_rows(scores: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per detector scored with a grid: its own pair and how its calls fare there, with the box-level
    precision and recall of those one-name calls (``call_precision``, ``call_recall``; a prompt naming every
    category, as for mAP, scores phrases differently)."""
    rows = []
    for name, scored in scores.items():
        if "own_thresholds" not in scored:
            continue
        box, text = scored["own_thresholds"]
        best = next(r for r in scored["operating_points"] if (r["box"], r["text"]) == (box, text))
        rows.append({"detector": name, "box": box, "text": text,
                     **{k: best[k] for k in ("call_score", "top_box_hit", "count_exact", "empty_when_absent")},
                     "call_precision": best["precision"], "call_recall": best["recall"]})
    return rows
