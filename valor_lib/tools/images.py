"""Tool inputs: images (path, PIL image or encoded bytes) with a content key for caching, and boxes.

Every check raises :class:`ToolInputError` with a message a program author can act on.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from valor_lib.tools.errors import ToolInputError

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class LoadedImage:
    """An RGB image and a key identifying its content (same pixels -> same key, whatever the source)."""

    image: Image.Image
    key: str

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def _pixel_key(image: Image.Image) -> str:
    digest = hashlib.sha256(f"{image.mode}|{image.width}x{image.height}|".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def load_image(source: Any) -> LoadedImage:
    """Read a tool's image argument: a file path (str or PathLike), a PIL image, or encoded image bytes."""
    if isinstance(source, LoadedImage):
        return source
    if isinstance(source, Image.Image):
        try:
            rgb = source.convert("RGB")
        except (OSError, ValueError) as err:
            raise ToolInputError(f"image cannot be converted to RGB: {err}") from None
    elif isinstance(source, str | os.PathLike | bytes | bytearray):
        data = _read_bytes(source)
        try:
            with Image.open(io.BytesIO(data)) as im:
                rgb = im.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise ToolInputError(f"not a readable image ({_describe(source)}): {err}") from None
    else:
        raise ToolInputError(f"image must be a file path, PIL image or image bytes, got {type(source).__name__}")
    if rgb.width < 1 or rgb.height < 1:
        raise ToolInputError(f"image has no pixels ({rgb.width}x{rgb.height})")
    return LoadedImage(rgb, _pixel_key(rgb))


def _describe(source: Any) -> str:
    return str(source) if isinstance(source, str | os.PathLike) else f"{len(source)} bytes"


def _read_bytes(source: str | os.PathLike | bytes | bytearray) -> bytes:
    if isinstance(source, bytes | bytearray):
        if not source:
            raise ToolInputError("image bytes are empty")
        return bytes(source)
    path = Path(source)
    if not path.is_file():
        raise ToolInputError(f"image file not found: {path}")
    data = path.read_bytes()
    if not data:
        raise ToolInputError(f"image file is empty: {path}")
    return data


def check_box(bbox: Any, width: int, height: int) -> Box:
    """A box ``[x1, y1, x2, y2]`` in pixels, clipped to the image; errors for anything malformed, non-finite,
    inverted, without area, or entirely outside the image."""
    if isinstance(bbox, dict) and "bbox" in bbox:
        raise ToolInputError("pass the box itself (detection['bbox']), not the whole detection dict")
    if isinstance(bbox, str | bytes) or not hasattr(bbox, "__len__") or len(bbox) != 4:
        raise ToolInputError(f"bbox must be 4 numbers [x1, y1, x2, y2], got {bbox!r}")
    values = []
    for v in bbox:
        if isinstance(v, bool | np.bool_):
            raise ToolInputError(f"bbox must hold numbers, got {bbox!r}")
        if not isinstance(v, Real):
            try:
                v = float(v)  # numpy scalars, 0-d arrays
            except (TypeError, ValueError):
                raise ToolInputError(f"bbox must hold numbers, got {bbox!r}") from None
        if not math.isfinite(float(v)):
            raise ToolInputError(f"bbox holds a non-finite value: {bbox!r}")
        values.append(float(v))
    x1, y1, x2, y2 = values
    if x2 <= x1 or y2 <= y1:
        raise ToolInputError(f"bbox must have x2 > x1 and y2 > y1, got {bbox!r}")
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise ToolInputError(f"bbox {bbox!r} lies outside the {width}x{height} image")
    clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
    if clipped[2] - clipped[0] < 1e-6 or clipped[3] - clipped[1] < 1e-6:
        raise ToolInputError(f"bbox {bbox!r} has no area inside the {width}x{height} image")
    return clipped


def padded_crop(image: Image.Image, box: Box, pad: float) -> Image.Image:
    """The box enlarged by ``pad`` times its width and height on each side, clipped to the image, cropped."""
    x1, y1, x2, y2 = box
    px, py = pad * (x2 - x1), pad * (y2 - y1)
    left, top = max(0, math.floor(x1 - px)), max(0, math.floor(y1 - py))
    right, bottom = min(image.width, math.ceil(x2 + px)), min(image.height, math.ceil(y2 + py))
    right, bottom = max(right, left + 1), max(bottom, top + 1)
    return image.crop((left, top, right, bottom))
