"""Hand annotations of pseudo-label quality, and precision / recall after each verification stage.

An annotation judges the boxes one stage kept on one image (the paper annotated 100 pipeline samples)::

    {"id": "<image id>|<stage>", "image_id": ..., "stage": "crop",
     "boxes": [{"box_id": ..., "bbox": [x1, y1, x2, y2], "label": "chair", "verdict": "tp" | "fp"}],
     "missed": [{"bbox": [...], "label": "chair"}],          # objects of the queried labels no box found
     "annotator": "..."}

A box is a true positive when it frames a real object of its label that no other kept box already claims
(so duplicates are false positives). Files are JSONL; :class:`AnnotationWidget` edits them in JupyterLab (it
needs ``ipywidgets``, imported only when the widget is built). In the toy world the annotations come from
scene ground truth (:mod:`.toy_annotations`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

VERDICTS = ("tp", "fp")


class AnnotationError(ValueError):
    """An annotation record that does not follow the format."""


def annotation_id(image_id: str, stage: str) -> str:
    return f"{image_id}|{stage}"


def stage_boxes(candidates: Mapping[str, Any], kept_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The candidate boxes (``box_id``, ``bbox``, ``label``, ``score``) of one image that a stage kept."""
    by_id = {b["box_id"]: b for b in candidates["boxes"]}
    return [by_id[k] for k in kept_ids]


def check_annotation(record: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one annotation record; returns it as a plain dict."""
    for key in ("id", "image_id", "stage", "boxes", "missed"):
        if key not in record:
            raise AnnotationError(f"annotation {record.get('id')!r} has no {key!r}")
    for box in record["boxes"]:
        if box.get("verdict") not in VERDICTS:
            raise AnnotationError(f"annotation {record['id']!r}: box {box.get('box_id')!r} has verdict "
                                  f"{box.get('verdict')!r}, expected one of {VERDICTS}")
    for miss in record["missed"]:
        if len(miss.get("bbox", ())) != 4 or not miss.get("label"):
            raise AnnotationError(f"annotation {record['id']!r}: a missed box needs a 4-number bbox and a label")
    return dict(record)


def read_annotations(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Annotations of a JSONL file by id (a later line for the same id replaces an earlier one)."""
    records: dict[str, dict[str, Any]] = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if line.strip():
            try:
                record = check_annotation(json.loads(line))
            except json.JSONDecodeError as err:
                raise AnnotationError(f"{path}:{lineno}: not JSON ({err})") from None
            records[record["id"]] = record
    return records


def write_annotations(records: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write annotations as JSONL (atomically, sorted by id)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted((check_annotation(r) for r in records), key=lambda r: r["id"])
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, target)
    return target


def precision_table(annotations: Iterable[Mapping[str, Any]], stages: Sequence[str]) -> list[dict[str, Any]]:
    """Per stage: images, boxes, TP, FP, FN (missed), precision TP/(TP+FP) and recall TP/(TP+FN)."""
    rows = []
    by_stage: dict[str, list[Mapping[str, Any]]] = {s: [] for s in stages}
    for record in annotations:
        if record["stage"] in by_stage:
            by_stage[record["stage"]].append(record)
    for stage in stages:
        records = by_stage[stage]
        tp = sum(b["verdict"] == "tp" for r in records for b in r["boxes"])
        fp = sum(b["verdict"] == "fp" for r in records for b in r["boxes"])
        fn = sum(len(r["missed"]) for r in records)
        rows.append({"stage": stage, "images": len(records), "boxes": tp + fp, "tp": tp, "fp": fp, "fn": fn,
                     "precision": round(tp / (tp + fp), 4) if tp + fp else None,
                     "recall": round(tp / (tp + fn), 4) if tp + fn else None})
    return rows


def _parse_missed(text: str) -> list[dict[str, Any]]:
    """``"x1,y1,x2,y2,label; ..."`` -> missed boxes."""
    missed = []
    for part in text.split(";"):
        if not part.strip():
            continue
        fields = [f.strip() for f in part.split(",")]
        if len(fields) < 5:
            raise AnnotationError(f"missed box {part.strip()!r} must be 'x1,y1,x2,y2,label'")
        try:
            bbox = [float(v) for v in fields[:4]]
        except ValueError:
            raise AnnotationError(f"missed box {part.strip()!r}: the first four fields must be numbers") from None
        missed.append({"bbox": bbox, "label": ",".join(fields[4:])})
    return missed


class AnnotationWidget:
    """A JupyterLab form to judge each kept box TP/FP and to add missed boxes, image by image.

    ``items``: ``(image_id, stage, PIL image, boxes)`` with boxes as in :func:`stage_boxes`. Existing
    annotations in ``path`` are shown and replaced when saved. Display with ``widget.show()``.
    """

    def __init__(self, items: Sequence[tuple[str, str, Image.Image, list[dict[str, Any]]]], path: str | os.PathLike,
                 annotator: str = "human", long_side: int = 768):
        import ipywidgets as w

        self.items, self.path, self.annotator, self.long_side = list(items), Path(path), annotator, long_side
        self.records = read_annotations(self.path) if self.path.exists() else {}
        self.index = 0
        self._w = w
        self.picture = w.Image(format="png")
        self.verdicts = w.VBox()
        self.missed = w.Text(description="missed", placeholder="x1,y1,x2,y2,label; ...",
                             layout=w.Layout(width="95%"))
        self.status = w.HTML()
        prev_button, next_button, save_button = w.Button(description="◀ previous"), w.Button(description="next ▶"), \
            w.Button(description="save", button_style="success")
        prev_button.on_click(lambda _: self._move(-1))
        next_button.on_click(lambda _: self._move(1))
        save_button.on_click(lambda _: self.save())
        self.box = w.VBox([self.status, self.picture, self.verdicts, self.missed,
                           w.HBox([prev_button, next_button, save_button])])
        self._render()

    def show(self) -> Any:
        from IPython.display import display

        display(self.box)
        return self.box

    def _render(self) -> None:
        import io

        from valor_lib.grounding.views import NumberedBox, draw_overlay

        image_id, stage, image, boxes = self.items[self.index]
        existing = self.records.get(annotation_id(image_id, stage))
        numbered = [NumberedBox(i + 1, b["label"], tuple(b["bbox"])) for i, b in enumerate(boxes)]
        buffer = io.BytesIO()
        draw_overlay(image, numbered, self.long_side).save(buffer, format="PNG")
        self.picture.value = buffer.getvalue()
        previous = {b["box_id"]: b["verdict"] for b in existing["boxes"]} if existing else {}
        self.toggles = [self._w.ToggleButtons(options=list(VERDICTS), value=previous.get(b["box_id"], "tp"),
                                              description=f"{i + 1}: {b['label']}")
                        for i, b in enumerate(boxes)]
        self.verdicts.children = self.toggles
        self.missed.value = "; ".join(",".join([*(f"{v:.0f}" for v in m["bbox"]), m["label"]])
                                      for m in (existing["missed"] if existing else []))
        self.status.value = f"<b>{self.index + 1}/{len(self.items)}</b> {image_id} after <i>{stage}</i>" + (
            " (annotated)" if existing else "")

    def current(self) -> dict[str, Any]:
        """The annotation record of the image on screen, from the form's state."""
        image_id, stage, _, boxes = self.items[self.index]
        judged = [{"box_id": b["box_id"], "bbox": list(b["bbox"]), "label": b["label"], "verdict": t.value}
                  for b, t in zip(boxes, self.toggles, strict=True)]
        return check_annotation({"id": annotation_id(image_id, stage), "image_id": image_id, "stage": stage,
                                 "boxes": judged, "missed": _parse_missed(self.missed.value),
                                 "annotator": self.annotator})

    def save(self) -> None:
        """Store the current image's record and write the file."""
        try:
            record = self.current()
        except AnnotationError as err:
            self.status.value = f"<span style='color:red'>{err}</span>"
            return
        self.records[record["id"]] = record
        write_annotations(self.records.values(), self.path)
        self.status.value += " — saved"

    def _move(self, step: int) -> None:
        self.save()
        self.index = (self.index + step) % len(self.items)
        self._render()
