"""COCO-style evaluation of a GroundingDINO detector: mAP / AP50 with pycocotools, precision / recall at
a fixed pair of thresholds (what a program calling ``gd_detect`` actually gets), and, at every pair of a
threshold grid, how a program's calls fare (the top box, the number of boxes), to choose ``gd_detect``'s
thresholds on a held-out detection set rather than on benchmarks.

    det = GroundingDinoDetector.from_pretrained("data/toy/models/detector-base")
    ds = load_coco("data/toy/detection/val.json", "data/toy/images/detection-val")
    evaluate_map(det, ds)                        # {"mAP": ..., "AP50": ..., "AP75": ...}
    precision_recall(ds, predict(det, ds, INFERENCE))
    best_operating_point(operating_points(det, ds, threshold_grid([0.1, 0.2, 0.3])))  # Thresholds(box, text)
    call_scores(ds, predict(det, ds, INFERENCE, prompt_each=True))  # {"top_box_hit": ..., "count_exact": ...}

Every image is prompted with all of the dataset's category names (split over several captions when needed), or,
with ``prompt_each``, once per name, as a program's ``gd_detect`` call names one thing: a phrase's scores depend
on the rest of the caption, so thresholds meant for ``gd_detect`` are chosen that way.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from valor_lib.detection.data import DetectionDataset
from valor_lib.detection.inference import INFERENCE, MINING, GroundingDinoDetector, Thresholds, box_iou

# mAP keeps every query's best phrase: no score cut (COCO AP integrates over scores itself).
MAP_THRESHOLDS = Thresholds(0.0, 0.0)


def predict(detector: GroundingDinoDetector, dataset: DetectionDataset, thresholds: Thresholds,
            batch_size: int = 8, nms_iou: float | None = None, progress: bool = True,
            prompt_each: bool = False) -> list[list[dict[str, Any]]]:
    """Detections for every image of ``dataset`` (prompt: all its category names, or each in turn with
    ``prompt_each``), in dataset order."""
    return predict_sweep(detector, dataset, [thresholds], batch_size, nms_iou, progress, prompt_each)[0]


def predict_sweep(detector: GroundingDinoDetector, dataset: DetectionDataset, sweep: Sequence[Thresholds],
                  batch_size: int = 8, nms_iou: float | None = None, progress: bool = True,
                  prompt_each: bool = False) -> list[list[list[dict[str, Any]]]]:
    """:func:`predict` at every threshold pair of ``sweep`` from one pass over the images: ``out[k]`` is
    ``sweep[k]``'s. With ``prompt_each`` an image's detections are those of one call per category name (NMS,
    if any, within each call, as in separate ``gd_detect`` calls)."""
    prompts = list(dataset.categories) if prompt_each else [", ".join(dataset.categories)]
    out: list[list[list[dict[str, Any]]]] = [[] for _ in sweep]
    for start in tqdm(range(0, len(dataset), batch_size), desc=f"detect {dataset.name}", disable=not progress):
        samples = dataset.samples[start: start + batch_size]
        images = []
        for s in samples:
            with Image.open(s.image_path) as im:
                images.append(im.convert("RGB"))
        calls = detector.detect_sweep([im for im in images for _ in prompts], prompts * len(images), sweep, nms_iou)
        for k, found in enumerate(calls):
            out[k] += [[d for call in found[i * len(prompts): (i + 1) * len(prompts)] for d in call]
                       for i in range(len(images))]
    return out


def coco_ground_truth(dataset: DetectionDataset) -> dict[str, Any]:
    """The dataset as a COCO ground-truth dict (image ids 1..N in dataset order, category ids 1..K)."""
    cat_ids = {c: i + 1 for i, c in enumerate(dataset.categories)}
    images, annotations = [], []
    for image_id, sample in enumerate(dataset.samples, start=1):
        images.append({"id": image_id, "width": sample.width, "height": sample.height,
                       "file_name": sample.image_path.name})
        for inst in sample.instances:
            x1, y1, x2, y2 = inst.bbox
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cat_ids[inst.category],
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": i, "name": c} for c, i in cat_ids.items()]}


def coco_map(dataset: DetectionDataset, detections: Sequence[Sequence[dict[str, Any]]]) -> dict[str, float]:
    """pycocotools bbox AP of ``detections`` (one list per image, labels = category names)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(detections) != len(dataset):
        raise ValueError(f"{len(detections)} detection lists for {len(dataset)} images")
    gt = COCO()
    gt.dataset = coco_ground_truth(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    cat_ids = {c: i + 1 for i, c in enumerate(dataset.categories)}
    results = [{"image_id": image_id, "category_id": cat_ids[d["label"]], "score": float(d["score"]),
                "bbox": [d["bbox"][0], d["bbox"][1], d["bbox"][2] - d["bbox"][0], d["bbox"][3] - d["bbox"][1]]}
               for image_id, dets in enumerate(detections, start=1) for d in dets if d["label"] in cat_ids]
    if not results:
        return {"mAP": 0.0, "AP50": 0.0, "AP75": 0.0, "AP_small": 0.0, "AP_medium": 0.0, "AP_large": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    names = ("mAP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large")
    return {n: round(max(float(v), 0.0), 4) for n, v in zip(names, ev.stats[:6], strict=True)}


def evaluate_map(detector: GroundingDinoDetector, dataset: DetectionDataset, batch_size: int = 8,
                 progress: bool = True) -> dict[str, float]:
    """COCO mAP / AP50 / AP75 of a detector on a dataset."""
    return coco_map(dataset, predict(detector, dataset, MAP_THRESHOLDS, batch_size, progress=progress))


def match_detections(gt_boxes: Sequence[Sequence[float]], gt_labels: Sequence[str],
                     detections: Sequence[dict[str, Any]], iou: float = 0.5) -> list[bool]:
    """Greedy matching, best score first: whether each detection (in the given order) hits an unmatched
    ground-truth box of its label with IoU >= ``iou``."""
    import torch

    hits = [False] * len(detections)
    if not detections or not gt_boxes:
        return hits
    overlap = box_iou(torch.tensor([d["bbox"] for d in detections], dtype=torch.float32),
                      torch.tensor([list(b) for b in gt_boxes], dtype=torch.float32)).numpy()
    used = np.zeros(len(gt_boxes), bool)
    for i in sorted(range(len(detections)), key=lambda k: -detections[k]["score"]):
        candidates = [(overlap[i, j], j) for j in range(len(gt_boxes))
                      if not used[j] and gt_labels[j] == detections[i]["label"] and overlap[i, j] >= iou]
        if candidates:
            used[max(candidates)[1]] = True
            hits[i] = True
    return hits


def precision_recall(dataset: DetectionDataset, detections: Sequence[Sequence[dict[str, Any]]],
                     iou: float = 0.5) -> dict[str, float]:
    """Precision, recall and counts of detections against the dataset's boxes (IoU >= ``iou``, same label)."""
    tp = fp = n_gt = 0
    for sample, dets in zip(dataset.samples, detections, strict=True):
        hits = match_detections([i.bbox for i in sample.instances], [i.category for i in sample.instances], dets, iou)
        tp += sum(hits)
        fp += len(hits) - sum(hits)
        n_gt += len(sample.instances)
    return {"precision": round(tp / max(tp + fp, 1), 4), "recall": round(tp / max(n_gt, 1), 4),
            "tp": tp, "fp": fp, "fn": n_gt - tp, "detections_per_image": round((tp + fp) / max(len(dataset), 1), 2)}


def call_scores(dataset: DetectionDataset, detections: Sequence[Sequence[dict[str, Any]]],
                iou: float = 0.5) -> dict[str, float]:
    """How ``gd_detect`` calls fare for a program, one call per (image, category name), from detections made
    one name per call (``prompt_each``). Where the image shows the object, ``top_box_hit`` is the share of
    calls whose best-scoring box hits one of its boxes (IoU >= ``iou``: "where is it") and ``count_exact`` the
    share that return exactly as many boxes as there are objects ("how many"); ``call_score`` is their mean, as
    a question's phrases name objects its image shows. ``empty_when_absent`` is the share of calls on an absent
    object that return nothing (what a program's existence check needs)."""
    hits = exact = present = empty = absent = 0
    for sample, dets in zip(dataset.samples, detections, strict=True):
        for name in dataset.categories:
            truth = [i.bbox for i in sample.instances if i.category == name]
            found = [d for d in dets if d["label"] == name]
            if not truth:
                absent += 1
                empty += not found
                continue
            present += 1
            exact += len(found) == len(truth)
            if found:
                hits += match_detections(truth, [name] * len(truth), [max(found, key=lambda d: d["score"])], iou)[0]
    top, count = hits / max(present, 1), exact / max(present, 1)
    return {"top_box_hit": round(top, 4), "count_exact": round(count, 4), "call_score": round((top + count) / 2, 4),
            "empty_when_absent": round(empty / max(absent, 1), 4), "calls_present": present, "calls_absent": absent}


def operating_points(detector: GroundingDinoDetector, dataset: DetectionDataset, sweep: Sequence[Thresholds],
                     nms_iou: float | None = None, iou: float = 0.5, progress: bool = True,
                     prompt_each: bool = True) -> list[dict[str, Any]]:
    """Precision, recall, F1 (IoU >= ``iou``, same label) and :func:`call_scores` of the detector at every
    threshold pair of ``sweep``, one row each, with ``nms_iou`` applied and (``prompt_each``) one category per
    call, as a program's ``gd_detect`` gets them."""
    return score_operating_points(dataset, sweep, predict_sweep(detector, dataset, sweep, nms_iou=nms_iou,
                                                                progress=progress, prompt_each=prompt_each), iou)


def score_operating_points(dataset: DetectionDataset, sweep: Sequence[Thresholds],
                           detections: Sequence[Sequence[Sequence[dict[str, Any]]]],
                           iou: float = 0.5) -> list[dict[str, Any]]:
    """:func:`operating_points` of detections already made: ``detections[k]`` (one list per image) at
    ``sweep[k]``."""
    if len(detections) != len(sweep):
        raise ValueError(f"{len(detections)} detection sets for {len(sweep)} threshold pairs")
    rows = []
    for thresholds, dets in zip(sweep, detections, strict=True):
        scores = precision_recall(dataset, dets, iou)
        f1 = 2 * scores["precision"] * scores["recall"] / max(scores["precision"] + scores["recall"], 1e-9)
        rows.append({"box": thresholds.box, "text": thresholds.text, **scores, "f1": round(f1, 4),
                     **call_scores(dataset, dets, iou)})
    return rows


def best_operating_point(rows: Sequence[dict[str, Any]]) -> Thresholds:
    """The thresholds of the row with the highest ``call_score`` (:func:`call_scores`: what programs get from
    their calls; box-level F1 weighs every spare box on an image alike, and chose pairs where most calls on
    present objects came back empty). Ties go to higher F1, then to higher precision, then to the lower text
    threshold (one-word category prompts cannot tell text thresholds apart, and a lower one keeps a program's
    multi-word phrases such as "red chair"), then to the higher box threshold."""
    if not rows:
        raise ValueError("no operating points to choose from")
    best = max(rows, key=lambda r: (r["call_score"], r["f1"], r["precision"], -r["text"], r["box"]))
    return Thresholds(best["box"], best["text"])


def threshold_grid(values: Sequence[float]) -> list[Thresholds]:
    """Every (box, text) pair of ``values`` with text <= box, as GroundingDINO's defaults pair them."""
    return [Thresholds(box, text) for box in sorted(values) for text in sorted(values) if text <= box]


def evaluate_checkpoint(checkpoint: str | os.PathLike, coco_json: str | os.PathLike, image_dir: str | os.PathLike,
                        device: str = "auto", batch_size: int = 8,
                        thresholds: Sequence[Thresholds] = (INFERENCE, MINING),
                        progress: bool = True) -> dict[str, Any]:
    """COCO mAP / AP50 of a ``groundingdino-hf`` checkpoint (folder or hub id) on a COCO json + image folder,
    plus precision / recall at each pair of ``thresholds``."""
    from valor_lib.detection.data import load_coco

    detector = GroundingDinoDetector.from_pretrained(checkpoint, device=device)
    dataset = load_coco(coco_json, image_dir)
    result: dict[str, Any] = {"images": len(dataset), **evaluate_map(detector, dataset, batch_size, progress)}
    for th in thresholds:
        dets = predict(detector, dataset, th, batch_size, progress=progress)
        result[f"box{th.box}_text{th.text}"] = precision_recall(dataset, dets)
    return result
