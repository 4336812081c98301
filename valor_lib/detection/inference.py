"""Run a transformers GroundingDINO on images with comma-separated noun-phrase prompts.

Per image: the prompt's phrases become captions (split into several when they do not fit the model's text
length), each query gets the phrase it matches, and boxes are kept or dropped by two thresholds:

- **text threshold**: a phrase matches a query when *every* token of the phrase scores above it (so
  ``"red chair"`` needs both "red" and "chair"); a query that matches no requested phrase is dropped. This is
  the label filter of the authors' code (keep a box only if its phrase is one of the prompt's), applied for real.
- **box threshold**: the query's score for its phrase (the highest token probability in the phrase; among
  several matching phrases the best-scoring one is the label) must exceed it.

Optional non-maximum suppression (per label or class-agnostic) removes duplicate boxes; GroundingDINO itself
applies none. Images are batched; models load from a folder or hub id through ``from_pretrained``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from valor_lib.detection.captions import caption_from_phrases, chunk_phrases, phrase_spans, split_prompt
from valor_lib.detection.device import resolve_device


@dataclass(frozen=True)
class Thresholds:
    """Box and text thresholds: 0.35 / 0.25 for answering queries, 0.1 / 0.1 for mining pseudo-labels."""

    box: float = 0.35
    text: float = 0.25

    def __post_init__(self) -> None:
        for name, value in (("box", self.box), ("text", self.text)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} threshold must be in [0, 1), got {value}")


INFERENCE = Thresholds(0.35, 0.25)
MINING = Thresholds(0.1, 0.1)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of ``[x1, y1, x2, y2]`` boxes: (N, 4) x (M, 4) -> (N, M)."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-9)


def nms(detections: list[dict[str, Any]], iou: float, class_agnostic: bool = False) -> list[dict[str, Any]]:
    """Greedy non-maximum suppression, highest score first; per label unless ``class_agnostic``."""
    ordered = sorted(detections, key=lambda d: -d["score"])
    if len(ordered) < 2:
        return ordered
    boxes = torch.tensor([d["bbox"] for d in ordered], dtype=torch.float32)
    overlap = box_iou(boxes, boxes)
    kept: list[int] = []
    for i, det in enumerate(ordered):
        if all(overlap[i, j] <= iou or (not class_agnostic and ordered[j]["label"] != det["label"]) for j in kept):
            kept.append(i)
    return [ordered[i] for i in kept]


def _corners(cxcywh: torch.Tensor, width: int, height: int) -> torch.Tensor:
    cx, cy, w, h = cxcywh.unbind(-1)
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    boxes = boxes * torch.tensor([width, height, width, height], dtype=boxes.dtype)
    return torch.stack([boxes[:, 0].clamp(0, width), boxes[:, 1].clamp(0, height),
                        boxes[:, 2].clamp(0, width), boxes[:, 3].clamp(0, height)], -1)


def match_phrases(probs: torch.Tensor, spans: Sequence[tuple[int, int]], phrases: Sequence[str],
                  boxes: torch.Tensor, thresholds: Thresholds) -> list[dict[str, Any]]:
    """Detections from one caption's token probabilities (queries x tokens) and pixel boxes (queries x 4)."""
    if len(spans) != len(phrases):
        raise ValueError(f"caption has {len(spans)} phrase spans for {len(phrases)} phrases (truncated?)")
    if not phrases:
        return []
    matched = torch.stack([(probs[:, s:e] > thresholds.text).all(-1) for s, e in spans], -1)
    scores = torch.stack([probs[:, s:e].max(-1).values for s, e in spans], -1)
    scores = torch.where(matched, scores, torch.full_like(scores, -1.0))
    best, label = scores.max(-1)
    out = []
    for q in torch.nonzero(best > thresholds.box).flatten().tolist():
        x1, y1, x2, y2 = boxes[q].tolist()
        if x2 - x1 < 1e-3 or y2 - y1 < 1e-3:
            continue
        out.append({"bbox": [round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)],
                    "label": phrases[int(label[q])], "score": round(float(best[q]), 4)})
    return out


class GroundingDinoDetector:
    """A GroundingDINO model plus processor on one device.

    Args:
        model: ``GroundingDinoForObjectDetection``.
        processor: its ``GroundingDinoProcessor`` (PIL image processor).
        device: ``auto`` | ``cpu`` | ``cuda``.
        bf16: run in bfloat16 (CUDA only; ignored on CPU).
        batch_size: captions per forward pass.
    """

    def __init__(self, model: Any, processor: Any, device: str = "auto", bf16: bool = False, batch_size: int = 8):
        self.device = resolve_device(device)
        self.dtype = torch.bfloat16 if bf16 and self.device.type == "cuda" else torch.float32
        self.model = model.to(self.device, dtype=self.dtype).eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.max_tokens = min(int(model.config.max_text_len), int(self.tokenizer.model_max_length))
        self.batch_size = batch_size
        self._token_counts: dict[str, int] = {}

    @classmethod
    def from_pretrained(cls, path_or_id: str | os.PathLike, **kwargs: Any) -> GroundingDinoDetector:
        """Load model and processor saved with ``save_pretrained`` (or a hub id where downloads are allowed)."""
        from transformers import GroundingDinoForObjectDetection, GroundingDinoProcessor

        model = GroundingDinoForObjectDetection.from_pretrained(str(path_or_id))
        processor = GroundingDinoProcessor.from_pretrained(str(path_or_id), backend="pil")
        return cls(model, processor, **kwargs)

    def _tokens(self, phrase: str) -> int:
        if phrase not in self._token_counts:
            self._token_counts[phrase] = len(self.tokenizer(phrase, add_special_tokens=False)["input_ids"])
        return self._token_counts[phrase]

    def detect(self, image: Image.Image, prompt: str, thresholds: Thresholds = INFERENCE,
               nms_iou: float | None = None, class_agnostic_nms: bool = False) -> list[dict[str, Any]]:
        """Detections ``{"bbox", "label", "score"}`` (pixels, best first) of the prompt's phrases in one image."""
        return self.detect_batch([image], [prompt], thresholds, nms_iou, class_agnostic_nms)[0]

    def detect_batch(self, images: Sequence[Image.Image], prompts: Sequence[str],
                     thresholds: Thresholds = INFERENCE, nms_iou: float | None = None,
                     class_agnostic_nms: bool = False) -> list[list[dict[str, Any]]]:
        """:meth:`detect` for many images (one prompt each), batched."""
        return self.detect_sweep(images, prompts, [thresholds], nms_iou, class_agnostic_nms)[0]

    def detect_sweep(self, images: Sequence[Image.Image], prompts: Sequence[str], sweep: Sequence[Thresholds],
                     nms_iou: float | None = None, class_agnostic_nms: bool = False) -> list[list[list[dict[str, Any]]]]:
        """Detections at every threshold pair of ``sweep`` from one forward pass: ``out[k][i]`` holds image
        ``i``'s detections at ``sweep[k]``, as :meth:`detect_batch` would return them."""
        if not sweep:
            raise ValueError("sweep names no thresholds")
        raw = self.raw_batch(images, prompts)
        return [[r.at(thresholds, nms_iou, class_agnostic_nms) for r in raw] for thresholds in sweep]

    @torch.no_grad()
    def raw_batch(self, images: Sequence[Image.Image], prompts: Sequence[str]) -> list[RawDetections]:
        """The model's scores and boxes for each (image, prompt), before any threshold (one forward pass)."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        jobs: list[tuple[int, list[str]]] = []
        for i, prompt in enumerate(prompts):
            phrases = split_prompt(prompt)
            if not phrases:
                raise ValueError(f"prompt {prompt!r} names no object")
            jobs += [(i, chunk) for chunk in chunk_phrases(phrases, [self._tokens(p) for p in phrases], self.max_tokens)]
        chunks: list[list[CaptionScores]] = [[] for _ in images]
        for start in range(0, len(jobs), self.batch_size):
            batch = jobs[start: start + self.batch_size]
            rgb = [images[i].convert("RGB") for i, _ in batch]
            pixels = self.processor.image_processor(rgb, return_tensors="pt")
            text = self.tokenizer([caption_from_phrases(p) for _, p in batch], padding="longest", truncation=True,
                                  max_length=self.max_tokens, return_tensors="pt")
            out = self.model(pixel_values=pixels["pixel_values"].to(self.device, self.dtype),
                             pixel_mask=pixels["pixel_mask"].to(self.device),
                             input_ids=text["input_ids"].to(self.device),
                             attention_mask=text["attention_mask"].to(self.device),
                             token_type_ids=text["token_type_ids"].to(self.device))
            probs = out.logits.float().sigmoid().cpu()
            boxes = out.pred_boxes.float().cpu()
            for j, ((i, phrases), image) in enumerate(zip(batch, rgb, strict=True)):
                chunks[i].append(CaptionScores.of(probs[j], phrase_spans(text["input_ids"][j].tolist()), phrases,
                                                  _corners(boxes[j], image.width, image.height)))
        return [RawDetections(tuple(c)) for c in chunks]


@dataclass(frozen=True)
class CaptionScores:
    """One caption's forward pass, kept for thresholding later: each query's probabilities for the caption's
    phrase tokens only (``spans`` index these columns) and its box in pixels."""

    probs: torch.Tensor  # queries x phrase tokens
    spans: tuple[tuple[int, int], ...]
    phrases: tuple[str, ...]
    corners: torch.Tensor  # queries x 4

    @classmethod
    def of(cls, probs: torch.Tensor, spans: Sequence[tuple[int, int]], phrases: Sequence[str],
           corners: torch.Tensor) -> CaptionScores:
        """From a caption's full token probabilities (queries x tokens), keeping the phrase columns only."""
        columns, packed, at = [], [], 0
        for s, e in spans:
            columns += range(s, e)
            packed.append((at, at + e - s))
            at += e - s
        return cls(probs[:, columns].clone(), tuple(packed), tuple(phrases), corners.clone())

    def at(self, thresholds: Thresholds) -> list[dict[str, Any]]:
        return match_phrases(self.probs, self.spans, self.phrases, self.corners, thresholds)


@dataclass(frozen=True)
class RawDetections:
    """An (image, prompt)'s model outputs before thresholds: one :class:`CaptionScores` per caption."""

    captions: tuple[CaptionScores, ...]

    def at(self, thresholds: Thresholds, nms_iou: float | None = None,
           class_agnostic_nms: bool = False) -> list[dict[str, Any]]:
        """The detections at ``thresholds`` (best first), with NMS when ``nms_iou`` is given: what
        :meth:`GroundingDinoDetector.detect` returns for the same image and prompt."""
        dets = [d for caption in self.captions for d in caption.at(thresholds)]
        if nms_iou is not None:
            dets = nms(dets, nms_iou, class_agnostic_nms)
        return sorted(dets, key=lambda d: -d["score"])
