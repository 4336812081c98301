"""Read the generated toy world: scenes (ground truth) and images by split."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from valor_lib.paths import require, toy_dir
from valor_lib.toyworld.scene import Scene

if TYPE_CHECKING:
    import pandas as pd

BUILD_HINT = "generate the toy world first (notebooks/00_toy_world.ipynb, or `dvc repro toy_world`)"


def world_dir() -> Path:
    """``data/toy``, which must exist."""
    return require(toy_dir(), BUILD_HINT)


def manifest() -> dict:
    """The toy world's manifest (sizes, seed, camera)."""
    return json.loads(require(world_dir() / "manifest.json", BUILD_HINT).read_text())


def image_path(split: str, scene_id: str) -> Path:
    """The canonical PNG of a scene."""
    return world_dir() / "images" / split / f"{scene_id}.png"


def load_image(split: str, scene_id: str) -> Image.Image:
    """A scene's image as RGB."""
    with Image.open(require(image_path(split, scene_id), BUILD_HINT)) as im:
        return im.convert("RGB")


@cache
def _scenes(path: Path, mtime: float) -> dict[str, Scene]:
    with path.open() as f:
        return {s.id: s for s in (Scene.from_dict(json.loads(line)) for line in f)}


def load_scenes(split: str, root: Path | None = None) -> dict[str, Scene]:
    """Ground-truth scenes of a split of the world in ``root`` (default ``data/toy``), keyed by scene id (for
    scoring and annotations only)."""
    path = require((root or world_dir()) / "scenes" / f"{split}.jsonl", BUILD_HINT)
    return _scenes(path, path.stat().st_mtime)


def split_of(scene_id: str) -> str:
    """The split a scene id belongs to (ids are ``<split>-<index>``)."""
    return scene_id.rsplit("-", 1)[0]


BENCHMARK_FILES: dict[str, tuple[str, ...]] = {
    "omni3d-bench": ("omni3d-bench/train.parquet",),
    "tallyqa": ("tallyqa/tallyqa_val.jsonl",),
    "gqa": ("gqa/gqa_val.jsonl",),
    "robospatial": ("robospatial/compatibility.parquet", "robospatial/configuration.parquet"),
    "vsr": ("vsr/dev.jsonl",),
    "blink": ("blink/Counting/val.parquet", "blink/Spatial_Relation/val.parquet"),
    "countbenchqa": ("countbenchqa/test.parquet",),
    "realworldqa": ("realworldqa/test.parquet",),
}


def benchmark_table(benchmark: str) -> pd.DataFrame:
    """A toy benchmark's evaluation rows as a table (image columns dropped), for display."""
    import pandas as pd

    frames = []
    for rel in BENCHMARK_FILES[benchmark]:
        path = require(world_dir() / "benchmarks" / rel, BUILD_HINT)
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
            df = df.drop(columns=[c for c in ("image", "img", "image_1") if c in df.columns])
        else:
            df = pd.read_json(path, lines=True)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)
