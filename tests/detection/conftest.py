"""Tiny synthetic detection data (coloured shapes on grey, with COCO boxes) and a tiny GroundingDINO."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from valor_lib.detection.tiny import TinyDetectorConfig, build_tiny_detector

WORDS = ["square", "disc", "red", "blue", "thing"]
SMALL = TinyDetectorConfig(d_model=32, encoder_layers=1, decoder_layers=2, ffn_dim=32, heads=2, num_queries=6,
                           max_text_len=24, text_hidden=16, backbone_channels=[8, 16, 32], image_size=(48, 64))


def draw_scene(rng: np.random.Generator, width: int = 64, height: int = 48) -> tuple[Image.Image, list[dict]]:
    """A grey image with 1-2 shapes; returns the image and its boxes with category names."""
    image = Image.new("RGB", (width, height), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    objects = []
    for _ in range(int(rng.integers(1, 3))):
        w, h = int(rng.integers(10, 20)), int(rng.integers(10, 20))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        shape = str(rng.choice(["square", "disc"]))
        colour = (220, 30, 30) if rng.random() < 0.5 else (30, 30, 220)
        (draw.rectangle if shape == "square" else draw.ellipse)([x, y, x + w, y + h], fill=colour)
        objects.append({"bbox": [x, y, x + w, y + h], "category": shape})
    return image, objects


@pytest.fixture(scope="session")
def shapes_coco(tmp_path_factory):
    """(coco json path, image folder) of 6 synthetic images."""
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    cats = {"square": 1, "disc": 2}
    images, annotations = [], []
    for i in range(6):
        image, objects = draw_scene(rng)
        name = f"img{i}.png"
        image.save(root / name)
        images.append({"id": i + 1, "file_name": name, "width": 64, "height": 48})
        for obj in objects:
            x1, y1, x2, y2 = obj["bbox"]
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": cats[obj["category"]],
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    path = root / "shapes.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": v, "name": k} for k, v in cats.items()]}))
    return path, root


@pytest.fixture
def tiny_detector():
    """A fresh randomly initialised tiny GroundingDINO and its processor."""
    import torch

    torch.manual_seed(0)
    return build_tiny_detector(WORDS, SMALL)


@pytest.fixture
def make_tiny():
    """A function returning a fresh tiny GroundingDINO (seeded) and its processor."""
    import torch

    def make():
        torch.manual_seed(0)
        return build_tiny_detector(WORDS, SMALL)

    return make
