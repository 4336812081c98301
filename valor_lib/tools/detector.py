"""The detector behind ``gd_detect``: a GroundingDINO with a per-(image, prompt, thresholds) result cache.

Backends by spec: ``groundingdino-hf:<folder or hub id>`` (transformers checkpoint) and
``groundingdino-pth:<file.pth>`` (an Open-GroundingDino checkpoint converted on load, on top of a transformers
base config and processor, GroundingDINO-T by default).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from valor_lib.detection.captions import split_prompt
from valor_lib.detection.inference import INFERENCE, GroundingDinoDetector, Thresholds
from valor_lib.tools.cache import LRUCache
from valor_lib.tools.errors import ToolInputError
from valor_lib.tools.images import LoadedImage

MAX_PROMPT_CHARS = 1000
DEFAULT_PTH_BASE = "IDEA-Research/grounding-dino-tiny"


def check_prompt(prompt: Any) -> list[str]:
    """The prompt's noun phrases; errors for non-strings, empty prompts and absurdly long ones."""
    if not isinstance(prompt, str):
        raise ToolInputError(f"gd_detect prompt must be a string of comma-separated names, got {type(prompt).__name__}")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ToolInputError(f"gd_detect prompt is longer than {MAX_PROMPT_CHARS} characters")
    phrases = split_prompt(prompt)
    if not phrases:
        raise ToolInputError(f"gd_detect prompt names no object: {prompt!r}")
    return phrases


class CachedDetector:
    """Detections with a bounded cache; results are copies, so callers may modify them.

    Args:
        detector: the GroundingDINO to run.
        thresholds: default box/text thresholds (0.35 / 0.25).
        nms_iou: optional NMS IoU threshold (None: no NMS, like GroundingDINO itself).
        class_agnostic_nms: suppress overlaps across labels too.
        cache_size: cached (image, prompt, thresholds) results.
    """

    def __init__(self, detector: GroundingDinoDetector, thresholds: Thresholds = INFERENCE,
                 nms_iou: float | None = None, class_agnostic_nms: bool = False, cache_size: int = 4096):
        self.detector = detector
        self.thresholds = thresholds
        self.nms_iou = nms_iou
        self.class_agnostic_nms = class_agnostic_nms
        self.cache: LRUCache[list[dict[str, Any]]] = LRUCache(cache_size)

    def _key(self, image: LoadedImage, phrases: list[str], thresholds: Thresholds) -> tuple:
        return image.key, tuple(phrases), thresholds, self.nms_iou, self.class_agnostic_nms

    def detect(self, image: LoadedImage, prompt: Any, thresholds: Thresholds | None = None) -> list[dict[str, Any]]:
        """Detections of the prompt's phrases in one image."""
        return self.detect_many([image], [prompt], thresholds)[0]

    def detect_many(self, images: Sequence[LoadedImage], prompts: Sequence[Any],
                    thresholds: Thresholds | None = None) -> list[list[dict[str, Any]]]:
        """Detections for many (image, prompt) pairs; cache misses run batched."""
        th = thresholds or self.thresholds
        keys = [self._key(im, check_prompt(p), th) for im, p in zip(images, prompts, strict=True)]
        results: list[list[dict[str, Any]] | None] = [self.cache.get(k) for k in keys]
        todo = list({keys[i]: i for i, r in enumerate(results) if r is None}.items())
        if todo:
            found = self.detector.detect_batch([images[i].image for _, i in todo], [", ".join(k[1]) for k, _ in todo],
                                               th, self.nms_iou, self.class_agnostic_nms)
            computed = dict(zip((k for k, _ in todo), found, strict=True))
            for key, dets in computed.items():
                self.cache.put(key, dets)
            results = [computed[k] if r is None else r for k, r in zip(keys, results, strict=True)]
        return [copy.deepcopy(r) for r in results]


def load_detector(kind: str, arg: str, device: str = "auto", bf16: bool = False,
                  pth_base: str = DEFAULT_PTH_BASE) -> GroundingDinoDetector:
    """The GroundingDINO named by a ``groundingdino-hf`` or ``groundingdino-pth`` spec argument."""
    from valor_lib.tools.backends import resolve_model_path

    if kind == "groundingdino-hf":
        return GroundingDinoDetector.from_pretrained(resolve_model_path(arg), device=device, bf16=bf16)
    if kind == "groundingdino-pth":
        from valor_lib.detection.pth import load_groundingdino_pth

        model, processor = load_groundingdino_pth(resolve_model_path(arg, must_exist=True),
                                                  resolve_model_path(pth_base))
        return GroundingDinoDetector(model, processor, device=device, bf16=bf16)
    raise ValueError(f"not a detector backend kind: {kind!r}")
