"""Turn detection samples into GroundingDINO training batches.

Each image gets its own caption: the phrases of the categories it contains (positives) plus negative
categories sampled from the label map, shuffled, capped at ``max_labels`` phrases and at the model's text length.
A box's class index is its phrase's position in that caption, which is how the transformers loss reads it.

``parents`` (optional) groups fine names under a coarse one, e.g. ``{"red chair": "chair"}``: per image and
group, the boxes are labelled either all with the coarse name or each with its fine name, and the caption never
holds both a name and its parent for a group that is present (that would make one box both positive and
negative). Absent fine names of a present group (``"green chair"`` next to a red one) are useful negatives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from valor_lib.detection.captions import caption_from_phrases
from valor_lib.detection.data import DetectionSample


@dataclass(frozen=True)
class CaptionPlan:
    """One image's caption phrases and each box's index into them."""

    phrases: list[str]
    class_labels: list[int]


class CaptionSampler:
    """Chooses each image's positive and negative phrases (see the module docstring)."""

    def __init__(self, categories: Sequence[str], max_labels: int = 50, parents: Mapping[str, str] | None = None,
                 p_coarse: float = 0.5, token_counts: Mapping[str, int] | None = None, max_tokens: int | None = None):
        if max_labels < 1:
            raise ValueError("max_labels must be >= 1")
        self.parents = dict(parents or {})
        self.names = list(dict.fromkeys([*categories, *self.parents.values()]))
        self.max_labels = max_labels
        self.p_coarse = p_coarse
        self.token_counts = token_counts
        self.max_tokens = max_tokens

    def _group(self, name: str) -> str:
        return self.parents.get(name, name)

    def plan(self, categories: Sequence[str], rng: np.random.Generator) -> CaptionPlan:
        """Phrases for an image whose boxes have ``categories`` (in box order) and the boxes' class indices."""
        groups = list(dict.fromkeys(self._group(c) for c in categories))  # ordered: rng draws must not follow hashing
        coarse = {g for g in groups if g in self.parents.values() and rng.random() < self.p_coarse}
        box_names = [self._group(c) if self._group(c) in coarse else c for c in categories]
        positives = list(dict.fromkeys(box_names))
        rng.shuffle(positives)
        positives = positives[: self.max_labels]
        # present groups: exclude the other level of naming (coarse name in fine mode, fine names in coarse mode)
        excluded = set(positives) | {g for g in groups if g not in coarse} | {
            n for n in self.names if self._group(n) in coarse}
        pool = [n for n in self.names if n not in excluded]
        n_neg = min(len(pool), self.max_labels - len(positives))
        negatives = [pool[i] for i in rng.choice(len(pool), size=n_neg, replace=False)] if n_neg > 0 else []
        phrases = self._fit(positives, negatives)
        order = rng.permutation(len(phrases))
        phrases = [phrases[i] for i in order]
        index = {p: i for i, p in enumerate(phrases)}
        return CaptionPlan(phrases, [index.get(n, -1) for n in box_names])

    def _fit(self, positives: list[str], negatives: list[str]) -> list[str]:
        """Drop negatives (then positives) from the end until the caption fits the text length."""
        phrases = positives + negatives
        if self.token_counts is None or self.max_tokens is None:
            return phrases
        while len(phrases) > 1 and 2 + sum(self.token_counts[p] + 1 for p in phrases) > self.max_tokens:
            phrases.pop()
        return phrases


def boxes_to_cxcywh(boxes: Sequence[Sequence[float]], width: int, height: int) -> torch.Tensor:
    """Pixel ``[x1, y1, x2, y2]`` boxes as normalised ``[cx, cy, w, h]`` (the model's box format)."""
    b = torch.tensor([list(box) for box in boxes], dtype=torch.float32).reshape(-1, 4)
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    b = b / scale
    return torch.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)


class GroundingCollator:
    """Samples -> model inputs plus ``labels`` (one dict per image: ``class_labels``, ``boxes``, and
    ``ignore_boxes`` when the sample has ignore regions, flipped with the image like its boxes).

    Call with the batch's samples and a numpy Generator (the trainer seeds one per step, so a resumed run
    draws the same captions and flips)."""

    def __init__(self, processor: Any, categories: Sequence[str], max_labels: int = 50,
                 parents: Mapping[str, str] | None = None, p_coarse: float = 0.5, hflip: float = 0.0):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.max_tokens = int(self.tokenizer.model_max_length)
        names = list(dict.fromkeys([*categories, *(parents or {}).values()]))
        counts = {n: len(self.tokenizer(n, add_special_tokens=False)["input_ids"]) for n in names}
        too_long = [n for n, c in counts.items() if c + 3 > self.max_tokens]
        if too_long:
            raise ValueError(f"category names longer than the model's text length {self.max_tokens}: {too_long}")
        self.sampler = CaptionSampler(categories, max_labels, parents, p_coarse, counts, self.max_tokens)
        self.hflip = hflip

    def _sampler_for(self, sample: DetectionSample) -> CaptionSampler:
        """The caption sampler for one image (subclasses narrow its negative phrases)."""
        return self.sampler

    def __call__(self, samples: Sequence[DetectionSample], rng: np.random.Generator) -> dict[str, Any]:
        images, captions, labels = [], [], []
        for sample in samples:
            with Image.open(sample.image_path) as im:
                image = im.convert("RGB")
            boxes = [list(inst.bbox) for inst in sample.instances]
            ignore = [list(box) for box in sample.ignore_regions]
            if self.hflip and rng.random() < self.hflip:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                boxes, ignore = ([[image.width - x2, y1, image.width - x1, y2] for x1, y1, x2, y2 in group]
                                 for group in (boxes, ignore))
            plan = self._sampler_for(sample).plan([inst.category for inst in sample.instances], rng)
            keep = [i for i, c in enumerate(plan.class_labels) if c >= 0]
            target = {
                "class_labels": torch.tensor([plan.class_labels[i] for i in keep], dtype=torch.long),
                "boxes": boxes_to_cxcywh([boxes[i] for i in keep], image.width, image.height),
            }
            if ignore:
                target["ignore_boxes"] = boxes_to_cxcywh(ignore, image.width, image.height)
            labels.append(target)
            images.append(image)
            captions.append(caption_from_phrases(plan.phrases))
        pixels = self.processor.image_processor(images, return_tensors="pt")
        text = self.tokenizer(captions, padding="longest", truncation=True, max_length=self.max_tokens,
                              return_tensors="pt")
        return {"pixel_values": pixels["pixel_values"], "pixel_mask": pixels["pixel_mask"],
                "input_ids": text["input_ids"], "attention_mask": text["attention_mask"],
                "token_type_ids": text["token_type_ids"], "labels": labels, "captions": captions}
