"""What the VLM verifier is shown: numbered box overlays and padded, upscaled crops.

Boxes are pixel ``[x1, y1, x2, y2]`` in the original image. An overlay is the image resized so that its
longer side is ``long_side`` (small images are enlarged so numbers stay legible), with each box outlined and
tagged ``"<number>: <label>"``. A crop is the box grown by ``padding`` of its width and height on every side
(clipped to the image), resized so that its longer side is ``long_side``, aspect ratio kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from valor_lib.tools.images import check_box, padded_crop

BOX_COLOR = (0, 230, 0)
TEXT_COLOR = (0, 0, 0)


@dataclass(frozen=True)
class NumberedBox:
    """A box as the verifier sees it: its number on the overlay, its label and pixel coordinates."""

    number: int
    label: str
    bbox: tuple[float, float, float, float]

    def listing(self) -> dict[str, object]:
        """The entry of the JSON box list sent with an overlay."""
        return {"id": self.number, "label": self.label, "box": [round(v, 1) for v in self.bbox]}


def padded_window_crop(image: Image.Image, bbox: Sequence[float], padding: float) -> Image.Image:
    """The box grown by ``padding`` of its size on each side (clipped to the image), cropped, not resized."""
    return padded_crop(image, check_box(bbox, image.width, image.height), padding)


def resize_long_side(image: Image.Image, long_side: int) -> Image.Image:
    """``image`` scaled (up or down) so that its longer side is ``long_side`` pixels."""
    if long_side < 1:
        raise ValueError(f"long_side must be >= 1, got {long_side}")
    scale = long_side / max(image.width, image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC) if size != image.size else image.copy()


def verification_crop(image: Image.Image, bbox: Sequence[float], padding: float = 0.1,
                      long_side: int = 640) -> Image.Image:
    """The crop the per-box check sees: padded box, upscaled to ``long_side`` on its longer side."""
    return resize_long_side(padded_window_crop(image.convert("RGB"), bbox, padding), long_side)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without scalable default font
        return ImageFont.load_default()


def draw_overlay(image: Image.Image, boxes: Sequence[NumberedBox], long_side: int = 1024) -> Image.Image:
    """The image at ``long_side`` with every box outlined and tagged with its number and label."""
    out = resize_long_side(image.convert("RGB"), long_side)
    scale = out.width / image.width
    draw = ImageDraw.Draw(out)
    line = max(2, round(long_side / 400))
    font = _font(max(10, round(long_side / 55)))
    for box in boxes:
        x1, y1, x2, y2 = (v * scale for v in check_box(box.bbox, image.width, image.height))
        draw.rectangle([x1, y1, x2, y2], outline=BOX_COLOR, width=line)
        tag = f"{box.number}: {box.label}"
        left, top, right, bottom = draw.textbbox((0, 0), tag, font=font)
        tw, th = right - left + 4, bottom - top + 4
        ty = y1 - th if y1 - th >= 0 else y1
        tx = min(x1, out.width - tw)
        draw.rectangle([tx, ty, tx + tw, ty + th], fill=BOX_COLOR)
        draw.text((tx + 2 - left, ty + 2 - top), tag, fill=TEXT_COLOR, font=font)
    return out
