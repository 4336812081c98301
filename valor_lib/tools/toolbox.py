"""The three tools a program calls, bound to their backends.

    toolbox = Toolbox.from_specs(detector="groundingdino-hf:data/toy/models/detector-base",
                                 depth="toy:ground-plane", vqa="toy:vqa")
    toolbox.gd_detect("img.png", "red chair, table")      # direct calls (notebooks)
    execute(code, tools=toolbox.tools(), image="img.png")  # parent-side tools of a sandboxed program

Every tool takes the image first (a file path, PIL image or encoded bytes) and raises
:class:`~valor_lib.tools.errors.ToolInputError` on bad input, which a sandboxed program sees as a ``runtime``
error. The LLM-facing documentation of the tools is :func:`valor_lib.tools.api.tool_api_text`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from valor_lib.detection.inference import INFERENCE, RawDetections, Thresholds
from valor_lib.specs import parse_spec
from valor_lib.tools.cache import LRUCache
from valor_lib.tools.depth import DepthBackend
from valor_lib.tools.detector import DEFAULT_PTH_BASE, CachedDetector, check_prompt, load_detector
from valor_lib.tools.errors import ToolInputError
from valor_lib.tools.images import LoadedImage, check_box, load_image
from valor_lib.tools.vqa import ClientVQA, check_question


class ImageLoader:
    """Decoded images by source: files by (path, size, mtime), in-memory images always re-hashed."""

    def __init__(self, capacity: int = 16):
        self.cache: LRUCache[LoadedImage] = LRUCache(capacity)

    def __call__(self, source: Any) -> LoadedImage:
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            try:
                stat = path.stat()
            except OSError:
                return load_image(source)  # raises the ToolInputError
            key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
            return self.cache.get_or_compute(key, lambda: load_image(path))
        return load_image(source)


class Toolbox:
    """``gd_detect``, ``depth`` and ``vqa`` on one detector, one depth backend and one VQA client."""

    def __init__(self, detector: CachedDetector, depth: DepthBackend, vqa: ClientVQA):
        self.detector = detector
        self.depth_backend = depth
        self.vqa_backend = vqa
        self.load = ImageLoader()

    @classmethod
    def from_specs(cls, detector: str, depth: str, vqa: str, *, device: str = "auto", bf16: bool = False,
                   thresholds: Thresholds = INFERENCE, nms_iou: float | None = None,
                   pth_base: str = DEFAULT_PTH_BASE, vqa_options: dict[str, Any] | None = None,
                   detection_cache: LRUCache[RawDetections] | None = None) -> Toolbox:
        """Build every backend from its spec string (see ``valor_lib.specs``); ``detection_cache``: the same
        detector's raw outputs kept from an earlier toolbox (a new cache when None)."""
        from valor_lib.tools.backends import make_depth, make_vqa

        det_spec = parse_spec(detector, role="detector")
        gd = load_detector(det_spec.kind, det_spec.arg, device=device, bf16=bf16, pth_base=pth_base)
        return cls(CachedDetector(gd, thresholds, nms_iou, cache=detection_cache), make_depth(depth, device=device),
                   make_vqa(vqa, **(vqa_options or {})))

    def with_thresholds(self, thresholds: Thresholds, nms_iou: float | None) -> Toolbox:
        """The same backends, with ``gd_detect`` at other thresholds and NMS; the detector's model and its cache
        of raw outputs are shared, so an image and prompt seen by either toolbox run through the model once."""
        return Toolbox(self.detector.with_thresholds(thresholds, nms_iou), self.depth_backend, self.vqa_backend)

    @classmethod
    def from_params(cls, common: Any, detector: str | None = None, **kwargs: Any) -> Toolbox:
        """From a stage's common params (``common.backends``, ``common.gd_thresholds``, ``common.gd_nms_iou``,
        ``common.device``); ``detector`` replaces ``common.backends.detector`` (e.g. a fine-tuned checkpoint)."""
        b = common.backends
        kwargs.setdefault("thresholds", Thresholds(*common.gd_thresholds))
        kwargs.setdefault("nms_iou", common.gd_nms_iou)
        return cls.from_specs(detector or b.detector, b.depth, b.vqa, device=common.device, **kwargs)

    # ----- the tools ---------------------------------------------------------------------------------
    def gd_detect(self, image: Any, prompt: str) -> list[dict[str, Any]]:
        """Detections ``{"bbox", "label", "score"}`` of the comma-separated names in ``prompt``."""
        return self.detector.detect(self.load(image), prompt)

    def depth(self, image: Any, bbox: Sequence[float]) -> float:
        """Metric depth (metres) of the object in ``bbox``."""
        loaded = self.load(image)
        return float(self.depth_backend.depth_at(loaded, check_box(bbox, *loaded.size)))

    def vqa(self, image: Any, bbox: Sequence[float] | None, question: str) -> str:
        """A short answer about the padded crop at ``bbox`` (the whole image when ``bbox`` is None)."""
        loaded = self.load(image)
        box = None if bbox is None else check_box(bbox, *loaded.size)
        return self.vqa_backend.answer(loaded, box, check_question(question))

    # ----- batch and sandbox helpers ----------------------------------------------------------------
    def gd_detect_many(self, images: Sequence[Any], prompts: Sequence[str],
                       thresholds: Thresholds | None = None) -> list[list[dict[str, Any]]]:
        """:meth:`gd_detect` for many images at once (batched on the model), optionally other thresholds."""
        return self.detector.detect_many([self.load(im) for im in images], prompts, thresholds)

    def prefetch_detections(self, images: Sequence[Any], codes: Sequence[str]) -> int:
        """Run, in one batch, every ``gd_detect`` call with a constant prompt that ``codes[i]`` makes on
        ``images[i]``, so that the programs later find the detections in the cache; returns how many
        (image, prompt) pairs were asked for. Prompts a program builds at run time, and prompts ``gd_detect``
        would reject, are left to the program."""
        from valor_lib.grounding.queries import extract_grounding_queries

        pairs = {}
        for image, code in zip(images, codes, strict=True):
            for prompt in extract_grounding_queries(code).prompts:
                try:
                    check_prompt(prompt)
                except ToolInputError:
                    continue
                pairs[(id(image), prompt)] = (image, prompt)
        if pairs:
            self.gd_detect_many(*zip(*pairs.values(), strict=True))
        return len(pairs)

    def tools(self) -> dict[str, Callable[..., Any]]:
        """The parent-side callables for ``execute(code, tools=...)``: ``fn(image, *args, **kwargs)``."""
        return {"gd_detect": self.gd_detect, "depth": self.depth, "vqa": self.vqa}
