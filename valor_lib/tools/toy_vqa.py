"""``toy:vqa``: an offline stand-in for the VQA model that answers colour questions from the crop's pixels.

It receives the real request (instruction, question, crop) and reads only those: the crop's border ring is
taken as background, the remaining pixels of the crop's central region vote for the nearest named colour
(allowing for shading, i.e. a brightness factor per pixel), and the winner answers "what colour ..." or, as
yes/no, "is it <colour>?". Anything else gets an honest "unknown". It never sees scene ground truth.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from valor_lib.clients import ChatRequest, register_toy_brain
from valor_lib.toyworld.vocab import COLOR_SYNONYMS, COLORS

UNKNOWN = "unknown"
_COLOR_WORDS = {name: name for name in COLORS} | {syn: name for name, syns in COLOR_SYNONYMS.items() for syn in syns}
_COLOR_QUESTION = re.compile(r"\bwhat\s+(?:is\s+the\s+)?colou?r\b|\bwhich\s+colou?r\b|\bcolou?r\s+of\b")
_YES_NO = re.compile(r"^\s*(is|are|does|do)\b")
_WORD = re.compile(r"[a-z]+")


def question_of(text: str) -> str:
    """The question part of the request text (after "Question:" when present), lower case."""
    _, sep, tail = text.rpartition("Question:")
    return (tail if sep else text).strip().lower()


def _shading_distance(pixels: np.ndarray, palette: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Distance of each pixel (N x 3) to each palette colour (K x 3) under the best brightness scale."""
    scaled = palette[None, :, :] * scales[:, None, None]  # S x K x 3
    diff = pixels[:, None, None, :] - scaled[None]  # N x S x K x 3
    return np.sqrt((diff**2).sum(-1)).min(1)  # N x K


class ToyColourVQA:
    """Colour from pixels: background-aware vote of the central region's pixels (see module docstring)."""

    name = "toy-colour-vqa-v1"

    def __init__(self, centre: float = 0.5, border: int = 2, background_tolerance: float = 28.0,
                 max_distance: float = 90.0):
        self.centre = centre
        self.border = border
        self.background_tolerance = background_tolerance
        self.max_distance = max_distance
        self.names = list(COLORS)
        self.palette = np.asarray([COLORS[n] for n in self.names], np.float32)
        self.scales = np.linspace(0.6, 1.4, 9, dtype=np.float32)

    def dominant_colour(self, image: Any) -> str | None:
        """The named colour most of the crop's non-background central pixels are closest to (None: unclear)."""
        rgb = np.asarray(image.convert("RGB"), np.float32)
        h, w, _ = rgb.shape
        b = max(1, min(self.border, h // 4, w // 4))
        ring = np.concatenate([rgb[:b].reshape(-1, 3), rgb[-b:].reshape(-1, 3), rgb[:, :b].reshape(-1, 3),
                               rgb[:, -b:].reshape(-1, 3)])
        ch, cw = max(1, round(h * self.centre)), max(1, round(w * self.centre))
        top, left = (h - ch) // 2, (w - cw) // 2
        centre = rgb[top: top + ch, left: left + cw].reshape(-1, 3)
        step = max(1, len(ring) // 256)
        near_background = np.sqrt(((centre[:, None, :] - ring[None, ::step, :]) ** 2).sum(-1)).min(1)
        foreground = centre[near_background > self.background_tolerance]
        if len(foreground) < max(4, 0.05 * len(centre)):
            foreground = centre
        distance = _shading_distance(foreground, self.palette, self.scales)
        nearest, best = distance.argmin(1), distance.min(1)
        votes = np.bincount(nearest[best < self.max_distance], minlength=len(self.names))
        return self.names[int(votes.argmax())] if votes.sum() else None

    def answer(self, question: str, image: Any, is_crop: bool) -> str:
        """Answer one question about one picture."""
        if not is_crop or (not _COLOR_QUESTION.search(question) and not _YES_NO.search(question)):
            return UNKNOWN
        asked = [_COLOR_WORDS[w] for w in _WORD.findall(question) if w in _COLOR_WORDS]
        if _YES_NO.search(question) and not _COLOR_QUESTION.search(question):
            if not asked:
                return UNKNOWN
            colour = self.dominant_colour(image)
            return UNKNOWN if colour is None else ("yes" if colour in asked else "no")
        return self.dominant_colour(image) or UNKNOWN

    def __call__(self, request: ChatRequest) -> str:
        message = request.messages[-1]
        if not message.images:
            return UNKNOWN
        text = message.text
        is_crop = "crop" in text.split("Question:")[0].lower()
        return self.answer(question_of(text), message.images[0].to_pil(), is_crop)


register_toy_brain("vqa", lambda **options: ToyColourVQA(**options))
