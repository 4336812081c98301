"""Pseudo-labels as detection training data: one record per image, in ODVG JSONL and COCO JSON.

All boxes an image keeps, from every grounding query asked about it, go into **one** record (one record per
query would present the objects found by the other queries as negatives). Each record keeps its source dataset
(the balanced sampler's unit) and the labels that were asked for on the image (``queried``). Layout::

    <out>/odvg/<source>.jsonl     ODVG records (plus "source" and "queried" fields, and "uncertain": boxes the
                                  verifier left unsettled, when any), image paths relative to the image root
    <out>/label_map.json          {"0": "chair", ...}: one index per label, shared by all sources
    <out>/coco.json               the same boxes as COCO (images carry "source"), category ids = index + 1
    <out>/summary.json            images, boxes, labels per source

Labels that extend another label by leading words (``"red chair"`` extends ``"chair"``) get it as their parent
(:func:`label_parents`), so training can name a box by either.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from valor_lib.detection.data import load_label_map
from valor_lib.detection.inference import box_iou

DUPLICATE_IOU = 0.5  # an unsettled box this close to a kept box is a second box on a confirmed object


@dataclass(frozen=True)
class PseudoImage:
    """One image's pseudo-labels: its file (relative to the image root), size, source, boxes."""

    id: str
    source: str
    file: str
    width: int
    height: int
    boxes: tuple[dict[str, Any], ...]  # {"bbox": [x1, y1, x2, y2], "label": str, "score": float}
    queried: tuple[str, ...] = ()
    uncertain: tuple[tuple[float, ...], ...] = ()  # [x1, y1, x2, y2] of boxes the verifier left unsettled


@dataclass
class ExportSummary:
    """What an export wrote."""

    out_dir: Path
    images: dict[str, int] = field(default_factory=dict)
    boxes: dict[str, int] = field(default_factory=dict)
    labels: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "boxes": self.boxes, "labels": self.labels,
                "total_images": sum(self.images.values()), "total_boxes": sum(self.boxes.values())}


def label_parents(labels: Iterable[str]) -> dict[str, str]:
    """``{label: parent}`` where the parent is the longest other label that the label ends with, word-wise."""
    names = sorted(set(labels))
    known = set(names)
    parents = {}
    for name in names:
        words = name.split()
        for start in range(1, len(words)):
            tail = " ".join(words[start:])
            if tail in known:
                parents[name] = tail
                break
    return parents


def select_images(images: Sequence[PseudoImage], max_boxes: int | None, seed: int = 0) -> list[PseudoImage]:
    """Images in a seeded random order until ``max_boxes`` boxes are reached (all images when None); images
    without boxes are never picked. Used for the pseudo-label count sweep (paper Figure 7)."""
    labelled = [im for im in images if im.boxes]
    if max_boxes is None:
        return labelled
    order = np.random.default_rng(seed).permutation(len(labelled))
    chosen, total = [], 0
    for i in order:
        if total >= max_boxes:
            break
        chosen.append(labelled[int(i)])
        total += len(labelled[int(i)].boxes)
    return sorted(chosen, key=lambda im: im.id)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def export_pseudo_labels(images: Sequence[PseudoImage], out_dir: str | os.PathLike) -> ExportSummary:
    """Write ODVG per source, one label map, a COCO file and a summary (see the module docstring)."""
    out = Path(out_dir)
    ids = [im.id for im in images]
    if len(set(ids)) != len(ids):
        raise ValueError("pseudo-label images must have distinct ids (one record per image)")
    labels = sorted({b["label"] for im in images for b in im.boxes})
    index = {label: i for i, label in enumerate(labels)}
    summary = ExportSummary(out)
    lines: dict[str, list[str]] = {}
    coco: dict[str, Any] = {"images": [], "annotations": [],
                            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(labels)]}
    for image in images:
        if not image.boxes:
            continue
        instances = [{"bbox": [round(float(v), 2) for v in b["bbox"]], "category": b["label"],
                      "label": index[b["label"]]} for b in image.boxes]
        record = {"filename": image.file, "height": image.height, "width": image.width,
                  "detection": {"instances": instances}, "source": image.source, "queried": list(image.queried)}
        if image.uncertain:
            record["uncertain"] = [[round(float(v), 2) for v in box] for box in image.uncertain]
        lines.setdefault(image.source, []).append(json.dumps(record))
        image_id = len(coco["images"]) + 1
        coco["images"].append({"id": image_id, "file_name": image.file, "width": image.width,
                               "height": image.height, "source": image.source})
        for inst, box in zip(instances, image.boxes, strict=True):
            x1, y1, x2, y2 = inst["bbox"]
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": image_id,
                                        "category_id": inst["label"] + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                        "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                                        "score": round(float(box.get("score", 1.0)), 4)})
        summary.images[image.source] = summary.images.get(image.source, 0) + 1
        summary.boxes[image.source] = summary.boxes.get(image.source, 0) + len(instances)
    for old in (out / "odvg").glob("*.jsonl") if (out / "odvg").exists() else ():
        if old.stem not in lines:
            old.unlink()
    for source, rows in lines.items():
        _write_atomic(out / "odvg" / f"{source}.jsonl", "\n".join(rows) + "\n")
    _write_atomic(out / "label_map.json", json.dumps({str(i): n for i, n in enumerate(labels)}, indent=1))
    _write_atomic(out / "coco.json", json.dumps(coco))
    summary.labels = len(labels)
    _write_atomic(out / "summary.json", json.dumps(summary.to_dict(), indent=1))
    return summary


def read_pseudo_images(out_dir: str | os.PathLike) -> list[PseudoImage]:
    """The exported images back as :class:`PseudoImage` records (all sources, file order)."""
    out = Path(out_dir)
    labels = load_label_map(out / "label_map.json")
    images = []
    for path in sorted((out / "odvg").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            boxes = tuple({"bbox": inst["bbox"], "label": labels[int(inst["label"])]}
                          for inst in rec["detection"]["instances"])
            images.append(PseudoImage(rec["filename"], rec.get("source", path.stem), rec["filename"], rec["width"],
                                      rec["height"], boxes, tuple(rec.get("queried", ())),
                                      tuple(tuple(box) for box in rec.get("uncertain", ()))))
    return images


def label_counts(images: Iterable[PseudoImage]) -> Mapping[str, int]:
    """Boxes per label, most frequent first."""
    return dict(Counter(b["label"] for im in images for b in im.boxes).most_common())


def pseudo_images(candidates: Mapping[str, Mapping[str, Any]], kept: Mapping[str, Sequence[str]],
                  uncertain: Mapping[str, Sequence[str]] | None = None) -> list[PseudoImage]:
    """The boxes a stage kept (``kept``: image id -> box ids) as :class:`PseudoImage` records, one per image
    with a file; ``queried`` comes from the candidates, ``uncertain`` (image id -> box ids) names the boxes
    whose class stays unknown (e.g. the ones that passed the coarse filter and failed the crop check). An
    uncertain box overlapping a kept box (IoU >= :data:`DUPLICATE_IOU`) is a duplicate, not uncertain: the
    detector should learn to leave it out, so it is not listed."""
    images = []
    for image_id, record in candidates.items():
        if not record.get("file"):
            continue
        by_id = {b["box_id"]: b for b in record["boxes"]}
        boxes = tuple({"bbox": by_id[k]["bbox"], "label": by_id[k]["label"], "score": by_id[k]["score"]}
                      for k in kept.get(image_id, []))
        unsettled = [by_id[k]["bbox"] for k in (uncertain or {}).get(image_id, [])]
        if unsettled and boxes:
            overlap = box_iou(torch.tensor(unsettled, dtype=torch.float32),
                              torch.tensor([b["bbox"] for b in boxes], dtype=torch.float32)).max(dim=1).values
            unsettled = [box for box, iou in zip(unsettled, overlap.tolist(), strict=True) if iou < DUPLICATE_IOU]
        images.append(PseudoImage(image_id, record["source"], record["file"], record["width"], record["height"],
                                  boxes, tuple(record.get("queried", ())), tuple(map(tuple, unsettled))))
    return images
