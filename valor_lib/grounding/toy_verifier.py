"""``toy:vlm-verifier``: the toy world's offline stand-in for the VLM that verifies detections.

It gets exactly the requests GPT-5-mini would get (prompt text, original image, numbered overlay, JSON box
list, or one upscaled crop) and answers in the same JSON. It works out which of the three tasks it is asked
from the reply shape the prompt requests, reads the boxes from the JSON list in the prompt and looks at the
pixels through its crop classifier (:mod:`.toy_classifier`, trained on the ``vlm-knowledge`` split, never on
the scenes it verifies):

- coarse filter: drops a box whose crop clearly does not show its label (probability below ``drop_below``)
  or clearly misses its object (predicted fit below ``fit_below``);
- per-crop check: says ``match`` when the label's probability reaches ``match_at`` and the fit reaches
  ``crop_fit_at``;
- de-duplication: boxes that overlap heavily (IoU, or the share of the smaller box inside the larger) are one
  object; the best one (label probability x predicted fit) stays.

Label words are understood with the toy vocabulary (categories, plurals, synonyms, colours; "object"/"thing"
accept any object). ``error_rate`` flips each decision with that probability, deterministically per request
and box, to simulate a fallible verifier.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from valor_lib.clients import ChatRequest, register_toy_brain
from valor_lib.clients.errors import CallError
from valor_lib.grounding.toy_classifier import COLOR_NAMES, LABELS, NONE, CropClassifier
from valor_lib.grounding.views import padded_window_crop
from valor_lib.paths import toy_dir
from valor_lib.toyworld.vocab import COLOR_SYNONYMS, canonical_noun

GENERIC_NOUNS = frozenset({"object", "thing", "item", "furniture"})
_LABEL_IN_CROP_PROMPT = re.compile(r'labelled the box "([^"]+)"')


@dataclass(frozen=True)
class LabelMeaning:
    """What a label asks for: a category (None: any object) and optionally a colour; ``known`` is False for
    words the toy world has no object for."""

    category: str | None
    color: str | None
    known: bool


def understand(label: str) -> LabelMeaning:
    """Parse a label such as ``"red chair"``, ``"crates"`` or ``"object"`` with the toy vocabulary."""
    words = label.lower().split()
    colors = {c: c for c in COLOR_NAMES} | {s: c for c, syns in COLOR_SYNONYMS.items() for s in syns}
    color = next((colors[w] for w in words if w in colors), None)
    nouns = [w for w in words if w not in colors]
    if not nouns:
        return LabelMeaning(None, color, color is not None)
    category = canonical_noun(nouns[-1])
    if category is not None:
        return LabelMeaning(category, color, True)
    if nouns[-1].rstrip("s") in GENERIC_NOUNS:
        return LabelMeaning(None, color, True)
    return LabelMeaning(None, color, False)


def match_probability(meaning: LabelMeaning, label_probs: np.ndarray, color_probs: np.ndarray) -> float:
    """Probability that a crop shows what the label asks for."""
    if not meaning.known:
        return 0.0
    p = 1.0 - label_probs[LABELS.index(NONE)] if meaning.category is None else label_probs[LABELS.index(meaning.category)]
    if meaning.color is not None:
        p *= color_probs[COLOR_NAMES.index(meaning.color)]
    return float(p)


def box_overlap(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(IoU, intersection over the smaller box's area)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    return inter / max(area_a + area_b - inter, 1e-9), inter / max(min(area_a, area_b), 1e-9)


class ToyVlmVerifier:
    """The brain behind ``toy:vlm-verifier`` (see the module docstring)."""

    def __init__(self, model: str | os.PathLike | None = None, error_rate: float = 0.0, seed: int = 0,
                 drop_below: float = 0.15, fit_below: float = 0.3, match_at: float = 0.5, crop_fit_at: float = 0.5,
                 duplicate_iou: float = 0.5, duplicate_inside: float = 0.8):
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate must be in [0, 1], got {error_rate}")
        folder = Path(model) if model else toy_dir("models", "vlm-verifier")
        self.classifier = CropClassifier.load(folder)
        self.error_rate, self.seed = error_rate, seed
        self.drop_below, self.fit_below, self.match_at, self.crop_fit_at = drop_below, fit_below, match_at, crop_fit_at
        self.duplicate_iou, self.duplicate_inside = duplicate_iou, duplicate_inside
        self.name = (f"toy-vlm-verifier/{self.classifier.fingerprint}/e{error_rate}/s{seed}/"
                     f"{drop_below},{fit_below},{match_at},{crop_fit_at},{duplicate_iou},{duplicate_inside}")

    # ----- helpers
    def _flip(self, *key: object) -> bool:
        """Whether this decision is one of the simulated mistakes."""
        if self.error_rate <= 0:
            return False
        digest = hashlib.blake2b(repr((self.seed, *key)).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < self.error_rate

    def _score(self, crops: list[Image.Image], labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(match probability, predicted fit) per crop."""
        out = self.classifier.predict(crops)
        probs = [match_probability(understand(label), out["label"][i], out["color"][i]) for i, label in enumerate(labels)]
        return np.asarray(probs), out["fit"]

    def _listed_boxes(self, text: str, image: Image.Image) -> list[dict]:
        start = text.find("[", text.find("Detections:"))
        if start < 0:
            raise CallError("other", "toy verifier: no box list in the prompt")
        try:
            boxes, _ = json.JSONDecoder().raw_decode(text, start)
        except json.JSONDecodeError as err:
            raise CallError("other", f"toy verifier: unreadable box list ({err})") from None
        return [b for b in boxes if isinstance(b, dict) and {"id", "label", "box"} <= set(b)]

    def _crops_of(self, image: Image.Image, boxes: list[dict]) -> list[Image.Image]:
        pad = self.classifier.config.padding
        return [padded_window_crop(image, b["box"], pad) for b in boxes]

    # ----- the three tasks
    def coarse(self, text: str, image: Image.Image, tag: str) -> str:
        boxes = self._listed_boxes(text, image)
        probs, fits = self._score(self._crops_of(image, boxes), [b["label"] for b in boxes])
        drop = []
        for box, p, fit in zip(boxes, probs, fits, strict=True):
            wrong = p < self.drop_below or fit < self.fit_below
            if wrong != self._flip("coarse", tag, box["id"]):
                drop.append(int(box["id"]))
        return json.dumps({"drop": drop, "notes": f"{len(drop)} of {len(boxes)} boxes do not show their label "
                                                  "or fit badly"})

    def crop(self, text: str, crop: Image.Image, tag: str) -> str:
        found = _LABEL_IN_CROP_PROMPT.search(text)
        if found is None:
            raise CallError("other", "toy verifier: no label in the crop prompt")
        probs, fits = self._score([crop], [found.group(1)])
        match = bool(probs[0] >= self.match_at and fits[0] >= self.crop_fit_at)
        match = match != self._flip("crop", tag)
        reason = "a single clear instance fills the crop" if match else "the crop does not clearly show one such object"
        return json.dumps({"match": match, "reason": reason})

    def dedup(self, text: str, image: Image.Image, tag: str) -> str:
        boxes = self._listed_boxes(text, image)
        probs, fits = self._score(self._crops_of(image, boxes), [b["label"] for b in boxes])
        order = sorted(range(len(boxes)), key=lambda i: -(probs[i] * fits[i]))
        kept: list[int] = []
        drop = []
        for i in order:
            duplicate = any(self._same_object(boxes[i]["box"], boxes[j]["box"]) for j in kept)
            if duplicate != self._flip("dedup", tag, boxes[i]["id"]):
                drop.append(int(boxes[i]["id"]))
            else:
                kept.append(i)
        return json.dumps({"drop": sorted(drop), "notes": f"{len(drop)} duplicate boxes"})

    def _same_object(self, a: list[float], b: list[float]) -> bool:
        iou, inside = box_overlap(a, b)
        return iou >= self.duplicate_iou or inside >= self.duplicate_inside

    # ----- entry point
    def __call__(self, request: ChatRequest) -> str:
        task = request.messages[0]
        text = task.text
        images = [part.to_pil().convert("RGB") for part in task.images]
        if not images:
            raise CallError("other", "toy verifier: the request has no image")
        tag = task.images[0].sha256
        if '"match"' in text:
            return self.crop(text, images[0], tag)
        if '"drop"' in text and "Find duplicates" in text:
            return self.dedup(text, images[0], tag)
        if '"drop"' in text:
            return self.coarse(text, images[0], tag)
        return "I can only review object detections."


register_toy_brain("vlm-verifier", lambda **options: ToyVlmVerifier(**options))
