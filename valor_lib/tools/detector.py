"""The detector behind ``gd_detect``: a GroundingDINO with a per-(image, prompt) cache of its raw outputs.

The cache holds the model's scores and boxes before any threshold (:class:`RawDetections`), so detectors that
differ only in thresholds or NMS (:meth:`CachedDetector.with_thresholds`, a threshold sweep) share one forward
pass per image and prompt.

Backends by spec: ``groundingdino-hf:<folder or hub id>`` (transformers checkpoint) and
``groundingdino-pth:<file.pth>`` (an Open-GroundingDino checkpoint converted on load, on top of a transformers
base config and processor, GroundingDINO-T by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from valor_lib.detection.captions import split_prompt
from valor_lib.detection.inference import INFERENCE, GroundingDinoDetector, RawDetections, Thresholds
from valor_lib.tools.cache import LRUCache
from valor_lib.tools.errors import ToolInputError
from valor_lib.tools.images import LoadedImage

MAX_PROMPT_CHARS = 1000
DEFAULT_PTH_BASE = "IDEA-Research/grounding-dino-tiny"
DETECTION_CACHE_SIZE = 4096  # (image, prompt) outputs per detector


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
    """Detections with a bounded cache of raw model outputs; every call returns new lists and dicts, so callers
    may modify them.

    Args:
        detector: the GroundingDINO to run.
        thresholds: default box/text thresholds (0.35 / 0.25).
        nms_iou: optional NMS IoU threshold (None: no NMS, like GroundingDINO itself).
        class_agnostic_nms: suppress overlaps across labels too.
        cache_size: cached (image, prompt) outputs.
        cache: an existing cache to share (see :meth:`with_thresholds`); ``cache_size`` is then ignored.
    """

    def __init__(self, detector: GroundingDinoDetector, thresholds: Thresholds = INFERENCE,
                 nms_iou: float | None = None, class_agnostic_nms: bool = False,
                 cache_size: int = DETECTION_CACHE_SIZE,
                 cache: LRUCache[RawDetections] | None = None):
        self.detector = detector
        self.thresholds = thresholds
        self.nms_iou = nms_iou
        self.class_agnostic_nms = class_agnostic_nms
        self.cache: LRUCache[RawDetections] = cache if cache is not None else LRUCache(cache_size)

    def with_thresholds(self, thresholds: Thresholds, nms_iou: float | None) -> CachedDetector:
        """The same model and cache at other default thresholds and NMS (nothing is run or copied)."""
        return CachedDetector(self.detector, thresholds, nms_iou, self.class_agnostic_nms, cache=self.cache)

    def detect(self, image: LoadedImage, prompt: Any, thresholds: Thresholds | None = None) -> list[dict[str, Any]]:
        """Detections of the prompt's phrases in one image."""
        return self.detect_many([image], [prompt], thresholds)[0]

    def detect_many(self, images: Sequence[LoadedImage], prompts: Sequence[Any],
                    thresholds: Thresholds | None = None) -> list[list[dict[str, Any]]]:
        """Detections for many (image, prompt) pairs; cache misses run batched."""
        th = thresholds or self.thresholds
        keys = [(im.key, tuple(check_prompt(p))) for im, p in zip(images, prompts, strict=True)]
        raw: list[RawDetections | None] = [self.cache.get(k) for k in keys]
        todo = list({keys[i]: i for i, r in enumerate(raw) if r is None}.items())
        if todo:
            found = self.detector.raw_batch([images[i].image for _, i in todo], [", ".join(k[1]) for k, _ in todo])
            computed = dict(zip((k for k, _ in todo), found, strict=True))
            for key, outputs in computed.items():
                self.cache.put(key, outputs)
            raw = [computed[k] if r is None else r for k, r in zip(keys, raw, strict=True)]
        return [r.at(th, self.nms_iou, self.class_agnostic_nms) for r in raw]


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
