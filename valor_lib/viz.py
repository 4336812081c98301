"""Drawing helpers shared by the notebooks: boxes on images, image grids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageDraw

PALETTE = ((0, 220, 0), (255, 60, 60), (60, 140, 255), (255, 200, 0), (200, 0, 255), (0, 220, 220))


def draw_boxes(image: Image.Image, boxes: Sequence[dict[str, Any]], color: tuple[int, int, int] = PALETTE[0],
               numbered: bool = False, scale: int = 2) -> Image.Image:
    """A copy of ``image`` (upscaled by ``scale``) with boxes ``{"bbox", "label", "score"?}`` drawn on it."""
    out = image.convert("RGB").resize((image.width * scale, image.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(out)
    for i, box in enumerate(boxes):
        x1, y1, x2, y2 = (v * scale for v in box["bbox"])
        c = tuple(box.get("color", color))
        draw.rectangle([x1, y1, x2, y2], outline=c, width=2)
        text = f"{i}: " if numbered else ""
        text += str(box.get("label", ""))
        if "score" in box and box["score"] is not None:
            text += f" {box['score']:.2f}"
        if text:
            tw = draw.textlength(text)
            draw.rectangle([x1, max(y1 - 11, 0), x1 + tw + 2, max(y1 - 11, 0) + 11], fill=c)
            draw.text((x1 + 1, max(y1 - 11, 0)), text, fill=(0, 0, 0))
    return out


def image_grid(images: Sequence[Image.Image], titles: Sequence[str] | None = None, ncols: int = 4,
               width: float = 16.0) -> Any:
    """A matplotlib figure laying ``images`` out in a grid with optional titles."""
    import matplotlib.pyplot as plt

    nrows = max(1, -(-len(images) // ncols))
    aspect = images[0].height / images[0].width if images else 0.75
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, width / ncols * aspect * nrows * 1.15), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, im in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(im)
        if titles:
            ax.set_title(titles[i], fontsize=8, wrap=True)
    fig.tight_layout()
    return fig
