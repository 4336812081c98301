"""Annotations from toy scene ground truth, standing in for the paper's hand annotations (scoring only).

For one image and the boxes a stage kept: boxes are taken best detector score first; a box is a true positive
when it overlaps (IoU >= ``iou``) a not yet claimed object that its label describes (category, and colour when
the label names one; "object" accepts any category), else a false positive (wrong thing, bad fit, or a
duplicate of a claimed object). Objects described by any label asked for on the image and claimed by no box
are the missed boxes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from valor_lib.grounding.annotations import annotation_id, check_annotation
from valor_lib.grounding.toy_verifier import LabelMeaning, box_overlap, understand
from valor_lib.toyworld import store
from valor_lib.toyworld.scene import Scene, SceneObject

ANNOTATOR = "scene-ground-truth"


def scene_of(image_name: str) -> Scene:
    """The ground-truth scene of a toy image file name (``.../tallyqa-train-00003.png``)."""
    scene_id = PurePosixPath(image_name).stem
    return store.load_scenes(store.split_of(scene_id))[scene_id]


def describes(meaning: LabelMeaning, obj: SceneObject) -> bool:
    """Whether a label's meaning fits a real object."""
    return meaning.known and meaning.category in (None, obj.category) and meaning.color in (None, obj.color)


def annotate(image_id: str, stage: str, boxes: Sequence[Mapping[str, Any]], queried: Sequence[str], scene: Scene,
             iou: float = 0.5) -> dict[str, Any]:
    """The annotation record of one image after one stage (module docstring)."""
    objects = scene.objects
    claimed = np.zeros(len(objects), bool)
    judged = []
    for box in sorted(boxes, key=lambda b: -float(b.get("score", 0.0))):
        meaning = understand(box["label"])
        best, best_iou = -1, iou
        for j, obj in enumerate(objects):
            overlap = box_overlap(box["bbox"], obj.bbox)[0]
            if not claimed[j] and overlap >= best_iou and describes(meaning, obj):
                best, best_iou = j, overlap
        if best >= 0:
            claimed[best] = True
        judged.append({"box_id": box["box_id"], "bbox": list(box["bbox"]), "label": box["label"],
                       "verdict": "tp" if best >= 0 else "fp"})
    meanings = [understand(label) for label in queried]
    missed = [{"bbox": list(obj.bbox), "label": f"{obj.color} {obj.category}"} for j, obj in enumerate(objects)
              if not claimed[j] and any(describes(m, obj) for m in meanings)]
    return check_annotation({"id": annotation_id(image_id, stage), "image_id": image_id, "stage": stage,
                             "boxes": judged, "missed": missed, "annotator": ANNOTATOR})


def annotate_stages(candidates: Mapping[str, Mapping[str, Any]], survivors: Mapping[str, Mapping[str, Sequence[str]]],
                    image_ids: Sequence[str], iou: float = 0.5) -> list[dict[str, Any]]:
    """Annotations of ``image_ids`` after every stage in ``survivors`` (stage -> image -> kept box ids)."""
    records = []
    for image_id in image_ids:
        candidate = candidates[image_id]
        scene = scene_of(candidate["image_name"])
        by_id = {b["box_id"]: b for b in candidate["boxes"]}
        for stage, per_image in survivors.items():
            kept = [by_id[k] for k in per_image.get(image_id, [])]
            records.append(annotate(image_id, stage, kept, candidate["queried"], scene, iou))
    return records


def framed_object(box: Mapping[str, Any], scene: Scene, iou: float = 0.5) -> int | None:
    """Index of the object (described by the box's label, IoU >= ``iou``) the box frames best, or None."""
    meaning = understand(box["label"])
    scored = [(box_overlap(box["bbox"], obj.bbox)[0], j) for j, obj in enumerate(scene.objects) if describes(meaning, obj)]
    best = max(scored, default=(0.0, None))
    return best[1] if best[0] >= iou else None


def decision_accuracy(candidates: Mapping[str, Mapping[str, Any]], survivors: Mapping[str, Mapping[str, Sequence[str]]],
                      image_ids: Sequence[str], iou: float = 0.5) -> list[dict[str, Any]]:
    """How often each stage's keep/drop decisions agree with the truth, over the boxes it was shown. Before
    de-duplication a box should stay when it frames an object of its label (:func:`framed_object`); at
    de-duplication, exactly one of the boxes framing an object should stay (any one), the others go."""
    stages = list(survivors)
    rows = []
    for previous, stage in pairwise(stages):
        right = shown = kept_good = good = 0
        for image_id in image_ids:
            candidate = candidates[image_id]
            by_id = {b["box_id"]: b for b in candidate["boxes"]}
            inputs = [by_id[k] for k in survivors[previous].get(image_id, [])]
            if not inputs:
                continue
            scene = scene_of(candidate["image_name"])
            kept = set(survivors[stage].get(image_id, []))
            framed = {b["box_id"]: framed_object(b, scene, iou) for b in inputs}
            kept_per_object: dict[int, int] = {}
            for box_id, obj in framed.items():
                if obj is not None and box_id in kept:
                    kept_per_object[obj] = kept_per_object.get(obj, 0) + 1
            for box_id, obj in framed.items():
                shown += 1
                if obj is None:
                    right += box_id not in kept
                    continue
                good += 1
                kept_good += box_id in kept
                if stage == "dedup":
                    right += kept_per_object.get(obj, 0) == 1
                else:
                    right += box_id in kept
        rows.append({"stage": stage, "boxes shown": shown, "decision accuracy": round(right / shown, 4) if shown else None,
                     "fitting boxes kept": round(kept_good / good, 4) if good else None})
    return rows
