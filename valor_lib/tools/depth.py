"""Depth backends for ``depth(image, bbox)``: metric depth in metres at a box.

- ``moge:<checkpoint>``: MoGe-2 (optional ``moge`` package), the paper's choice (vit-l-normal).
- ``depth-anything-hf:<checkpoint>``: a transformers metric depth model (``AutoModelForDepthEstimation``).
- ``toy:ground-plane``: the toy world's estimator: the box's bottom row through a level pinhole camera of known
  height onto the floor plane. It sees the box only (and the camera calibration), never the scene.

Map-based backends compute one depth map per image, keep it in a bounded LRU cache keyed by the image's pixels
(never reused for another image, unlike the authors' code), and read it at the box centre robustly: the median
of a small window, ignoring inf / NaN / non-positive pixels, widening to the whole box if the window has none.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from valor_lib.tools.cache import LRUCache
from valor_lib.tools.errors import ToolBackendError, ToolInputError
from valor_lib.tools.images import Box, LoadedImage
from valor_lib.toyworld.camera import Camera


class DepthBackend(Protocol):
    """Something that measures metric depth at a box of an image."""

    name: str

    def depth_at(self, image: LoadedImage, box: Box) -> float: ...


def robust_depth(depth_map: np.ndarray, box: Box, image_size: tuple[int, int], window_frac: float = 0.1) -> float:
    """Median of the valid depths in a window at the box centre (``window_frac`` of the box's smaller side,
    at least 3x3 pixels); the whole box if the window holds no valid value."""
    h, w = depth_map.shape
    sx, sy = w / image_size[0], h / image_size[1]
    x1, y1, x2, y2 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = max(1.0, window_frac * min(x2 - x1, y2 - y1) / 2)
    for left, top, right, bottom in ((cx - half, cy - half, cx + half, cy + half), (x1, y1, x2, y2)):
        c0, c1 = max(0, math.floor(left)), min(w, max(math.floor(left) + 1, math.ceil(right)))
        r0, r1 = max(0, math.floor(top)), min(h, max(math.floor(top) + 1, math.ceil(bottom)))
        values = depth_map[r0:r1, c0:c1]
        valid = values[np.isfinite(values) & (values > 0)]
        if valid.size:
            return float(np.median(valid))
    raise ToolInputError(f"no valid depth inside bbox {list(box)} (sky or an invalid region)")


class MapDepth:
    """Base of depth-map backends: subclasses implement :meth:`predict_map` (H x W metres, inf where invalid)."""

    name = "map"

    def __init__(self, cache_size: int = 32):
        self.cache: LRUCache[np.ndarray] = LRUCache(cache_size)

    def predict_map(self, image: LoadedImage) -> np.ndarray:
        raise NotImplementedError

    def depth_map(self, image: LoadedImage) -> np.ndarray:
        """The image's depth map, computed once per distinct image content."""
        return self.cache.get_or_compute(image.key, lambda: self._checked_map(image))

    def _checked_map(self, image: LoadedImage) -> np.ndarray:
        depth = np.asarray(self.predict_map(image), dtype=np.float32)
        if depth.ndim != 2:
            raise ToolBackendError(f"{self.name}: depth map must be 2-D, got shape {depth.shape}")
        return depth

    def depth_at(self, image: LoadedImage, box: Box) -> float:
        return robust_depth(self.depth_map(image), box, image.size)


class GroundPlaneDepth:
    """Toy depth from geometry: the floor depth at the box's bottom row (objects stand on the floor).

    Boxes whose bottom is at or above the horizon get ``max_depth``."""

    name = "toy:ground-plane"

    def __init__(self, camera: Camera | None = None, max_depth: float = 100.0):
        self.camera = camera or Camera()
        self.max_depth = max_depth

    def depth_at(self, image: LoadedImage, box: Box) -> float:
        width, height = image.size
        if (width, height) != (self.camera.width, self.camera.height):
            raise ToolInputError(f"the ground-plane model is calibrated for {self.camera.width}x{self.camera.height} "
                                 f"images, got {width}x{height}")
        return round(min(self.camera.floor_depth(box[3]), self.max_depth), 4)


class DepthAnythingDepth(MapDepth):
    """A transformers metric depth model (Depth Anything V2 metric, DPT, ...) with its PIL image processor."""

    def __init__(self, model: Any, processor: Any, device: str = "auto", cache_size: int = 32, name: str = ""):
        super().__init__(cache_size)
        from valor_lib.detection.device import resolve_device

        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.name = name or f"depth-anything-hf:{getattr(model.config, '_name_or_path', '')}"

    @classmethod
    def from_pretrained(cls, path_or_id: str, device: str = "auto", cache_size: int = 32) -> DepthAnythingDepth:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        model = AutoModelForDepthEstimation.from_pretrained(path_or_id)
        processor = AutoImageProcessor.from_pretrained(path_or_id, backend="pil")
        if getattr(model.config, "depth_estimation_type", "metric") != "metric":
            raise ToolBackendError(f"{path_or_id} predicts relative depth; depth() needs a metric depth model")
        return cls(model, processor, device, cache_size, f"depth-anything-hf:{path_or_id}")

    def predict_map(self, image: LoadedImage) -> np.ndarray:
        import torch

        inputs = self.processor(images=image.image, return_tensors="pt").to(self.device)
        with torch.no_grad():
            outputs = self.model(**inputs)
        target = [(image.image.height, image.image.width)]
        depth = self.processor.post_process_depth_estimation(outputs, target_sizes=target)[0]["predicted_depth"]
        return depth.float().cpu().numpy()


class MogeDepth(MapDepth):
    """MoGe(-2) metric depth (``pip install git+https://github.com/microsoft/MoGe.git``)."""

    def __init__(self, checkpoint: str, device: str = "auto", cache_size: int = 32):
        super().__init__(cache_size)
        try:
            from moge.model.v2 import MoGeModel
        except ImportError as err:
            raise ToolBackendError(
                "depth backend 'moge' needs the moge package: pip install git+https://github.com/microsoft/MoGe.git"
                f" ({err})") from None
        from valor_lib.detection.device import resolve_device

        self.device = resolve_device(device)
        self.model = MoGeModel.from_pretrained(checkpoint).to(self.device).eval()
        self.name = f"moge:{checkpoint}"

    def predict_map(self, image: LoadedImage) -> np.ndarray:
        import torch

        pixels = torch.from_numpy(np.asarray(image.image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        with torch.no_grad():
            depth = self.model.infer(pixels.to(self.device))["depth"]
        return depth.float().cpu().numpy()
