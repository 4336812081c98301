"""Detection datasets: COCO json + image folder, and ODVG jsonl + label map (Open-GroundingDino's format).

Both load into a :class:`DetectionDataset` of :class:`DetectionSample` (image path, size, boxes in pixels
``[x1, y1, x2, y2]`` with a category name), which is what the collator and the evaluator read.

ODVG record, one JSON object per line::

    {"filename": "a.png", "height": 192, "width": 256,
     "detection": {"instances": [{"bbox": [x1, y1, x2, y2], "category": "chair", "label": 0}]}}

with a label map ``{"0": "chair", "1": "table", ...}`` giving every category's index.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valor_lib.paths import require


class DatasetFormatError(ValueError):
    """A COCO or ODVG file that does not have the expected structure; the message names file and record."""


@dataclass(frozen=True)
class Instance:
    """One box in pixels ``(x1, y1, x2, y2)`` and its category name."""

    bbox: tuple[float, float, float, float]
    category: str


@dataclass(frozen=True)
class DetectionSample:
    """An image with its boxes; ``image_id`` is the COCO id when the sample came from a COCO file."""

    image_path: Path
    width: int
    height: int
    instances: tuple[Instance, ...]
    image_id: int | None = None
    ignore_regions: tuple[tuple[float, float, float, float], ...] = ()  # pixel boxes of unknown class: no loss there


@dataclass
class DetectionDataset(Sequence[DetectionSample]):
    """Samples plus the dataset's label map (category names in index order)."""

    name: str
    samples: list[DetectionSample]
    categories: list[str]
    source: dict[str, Any] = field(default_factory=dict)  # where it was loaded from (for provenance)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> DetectionSample:  # type: ignore[override]
        return self.samples[index]

    def __iter__(self) -> Iterator[DetectionSample]:
        return iter(self.samples)

    def subset(self, indices: Sequence[int], name: str | None = None) -> DetectionDataset:
        """The samples at ``indices`` (same label map)."""
        return DetectionDataset(name or self.name, [self.samples[i] for i in indices], list(self.categories),
                                dict(self.source))


def clean_box(bbox: Sequence[float], width: int, height: int) -> tuple[float, float, float, float] | None:
    """The box clipped to the image, or None when it is malformed or has no area left."""
    if len(bbox) != 4:
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    if any(v != v for v in (x1, y1, x2, y2)):  # NaN
        return None
    x1, x2 = max(0.0, min(x1, width)), max(0.0, min(x2, width))
    y1, y2 = max(0.0, min(y1, height)), max(0.0, min(y2, height))
    if x2 - x1 < 1e-3 or y2 - y1 < 1e-3:
        return None
    return x1, y1, x2, y2


def load_coco(json_path: str | os.PathLike, image_dir: str | os.PathLike, name: str | None = None) -> DetectionDataset:
    """A COCO detection file (boxes ``[x, y, w, h]``) and the folder its ``file_name``s live in."""
    path = require(json_path, "COCO detection json")
    data = json.loads(Path(path).read_text())
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise DatasetFormatError(f"{path}: missing top-level key {key!r}")
    cat_names = {c["id"]: c["name"] for c in data["categories"]}
    by_image: dict[int, list[Instance]] = {img["id"]: [] for img in data["images"]}
    sizes = {img["id"]: (img["width"], img["height"]) for img in data["images"]}
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        image_id, cat = ann["image_id"], ann["category_id"]
        if image_id not in by_image or cat not in cat_names:
            raise DatasetFormatError(f"{path}: annotation {ann.get('id')} refers to an unknown image or category")
        x, y, w, h = ann["bbox"]
        box = clean_box([x, y, x + w, y + h], *sizes[image_id])
        if box is not None:
            by_image[image_id].append(Instance(box, cat_names[cat]))
    folder = Path(image_dir)
    samples = [DetectionSample(folder / img["file_name"], img["width"], img["height"], tuple(by_image[img["id"]]),
                               img["id"]) for img in data["images"]]
    return DetectionDataset(name or Path(path).stem, samples, [c["name"] for c in data["categories"]],
                            {"coco": str(path), "images": str(folder)})


def load_label_map(path: str | os.PathLike) -> list[str]:
    """An ODVG label map ``{"0": "chair", ...}`` as a list of names in index order."""
    raw = json.loads(Path(require(path, "ODVG label map")).read_text())
    try:
        indexed = sorted((int(k), str(v)) for k, v in raw.items())
    except (AttributeError, ValueError) as err:
        raise DatasetFormatError(f"{path}: label map must map integer strings to names ({err})") from None
    if [i for i, _ in indexed] != list(range(len(indexed))):
        raise DatasetFormatError(f"{path}: label map indices must be 0..{len(indexed) - 1}")
    return [name for _, name in indexed]


def load_odvg(jsonl_path: str | os.PathLike, image_dir: str | os.PathLike, label_map: str | os.PathLike | list[str],
              name: str | None = None) -> DetectionDataset:
    """An ODVG jsonl file, the folder its ``filename``s live in, and its label map (path or list)."""
    path = require(jsonl_path, "ODVG jsonl")
    categories = load_label_map(label_map) if not isinstance(label_map, list) else list(label_map)
    folder = Path(image_dir)
    samples = []
    with Path(path).open() as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                width, height = int(rec["width"]), int(rec["height"])
                instances = []
                for inst in rec["detection"]["instances"]:
                    label = int(inst["label"])
                    if not 0 <= label < len(categories):
                        raise DatasetFormatError(f"label {label} is not in the label map")
                    box = clean_box(inst["bbox"], width, height)
                    if box is not None:
                        instances.append(Instance(box, categories[label]))
                samples.append(DetectionSample(folder / rec["filename"], width, height, tuple(instances)))
            except (KeyError, TypeError, ValueError) as err:
                raise DatasetFormatError(f"{path}:{line_no}: bad ODVG record ({err})") from None
    return DetectionDataset(name or Path(path).stem, samples, categories, {"odvg": str(path), "images": str(folder)})


def odvg_record(sample: DetectionSample, categories: Sequence[str], image_root: Path | None = None) -> dict[str, Any]:
    """One ODVG record; ``filename`` is relative to ``image_root`` when given, else the file name."""
    index = {c: i for i, c in enumerate(categories)}
    filename = str(sample.image_path.relative_to(image_root)) if image_root else sample.image_path.name
    return {"filename": filename, "height": sample.height, "width": sample.width,
            "detection": {"instances": [{"bbox": [round(v, 2) for v in inst.bbox], "category": inst.category,
                                         "label": index[inst.category]} for inst in sample.instances]}}


def write_odvg(dataset: DetectionDataset, jsonl_path: str | os.PathLike, label_map_path: str | os.PathLike,
               image_root: Path | None = None) -> None:
    """Write a dataset as ODVG jsonl plus its label map (each written atomically)."""
    jsonl, label_map = Path(jsonl_path), Path(label_map_path)
    for target, text in (
        (jsonl, "".join(json.dumps(odvg_record(s, dataset.categories, image_root)) + "\n" for s in dataset)),
        (label_map, json.dumps({str(i): c for i, c in enumerate(dataset.categories)}, indent=1)),
    ):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, target)
