"""Toy scenes: objects standing on a floor in front of a back wall, plus hard-negative distractors.

A scene is plain data (JSON-serialisable); :mod:`valor_lib.toyworld.render` turns it into pixels and
fills in each object's 2D box and visibility. Sampling is deterministic given a ``numpy`` Generator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from valor_lib.toyworld.camera import Camera
from valor_lib.toyworld.vocab import CATEGORIES, COLORS

DOMAINS = ("target", "source")
DISTRACTOR_KINDS = ("poster", "rug", "shadow")
WALL_DEPTH = 12.0
MIN_DEPTH, MAX_DEPTH = 2.7, 10.0


@dataclass
class SceneObject:
    """A real object on the floor. ``x`` is its lateral centre and ``z`` the depth of its front face (m)."""

    id: int
    category: str
    color: str
    size: list[float]  # [width, height, depth] in metres
    x: float
    z: float
    bbox: list[float] = field(default_factory=list)  # amodal box clipped to the image [x1, y1, x2, y2] px
    visible: float = 1.0  # fraction of the full silhouette that is seen (occlusion and image borders)
    truncated: bool = False  # cut by an image border

    @property
    def width(self) -> float:
        return self.size[0]

    @property
    def height(self) -> float:
        return self.size[1]

    @property
    def depth(self) -> float:
        return self.z


@dataclass
class Distractor:
    """Something that looks like an object but is not one: a wall poster, a flat rug, a shadow."""

    kind: str
    x: float
    z: float
    size: list[float]  # poster: [width, height]; rug: [width, length]; shadow: [width, length]
    elevation: float = 0.0  # poster: height of its bottom edge above the floor
    color: str | None = None
    mimics: str | None = None  # the category a poster shows
    bbox: list[float] = field(default_factory=list)


@dataclass
class Style:
    """Everything about a scene's look that is not an object: floor, wall, lighting, noise."""

    floor: str  # "tiles" | "planks" | "plain"
    floor_colors: list[list[int]]
    tile_size: float
    wall_color: list[int]
    brightness: float
    tint: list[float]
    light_from_left: bool
    noise: float


@dataclass
class Scene:
    """One toy image's full description; rendering it is deterministic."""

    id: str
    domain: str
    seed: int
    style: Style
    objects: list[SceneObject]
    distractors: list[Distractor]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scene:
        return cls(
            id=d["id"], domain=d["domain"], seed=d["seed"], style=Style(**d["style"]),
            objects=[SceneObject(**o) for o in d["objects"]],
            distractors=[Distractor(**x) for x in d["distractors"]],
        )

    def by_category(self, category: str) -> list[SceneObject]:
        return [o for o in self.objects if o.category == category]


@dataclass(frozen=True)
class Layout:
    """How crowded a scene is and which categories it favours (benchmarks differ here)."""

    min_objects: int = 2
    max_objects: int = 7
    focus_category: str | None = None  # counting scenes: many instances of one category
    focus_count: tuple[int, int] = (0, 0)
    p_poster: float = 0.7
    p_rug: float = 0.5
    p_shadow: float = 0.5
    p_truncated: float = 0.15


def _style(rng: np.random.Generator, domain: str) -> Style:
    if domain == "source":
        floor = "plain"
        base = rng.integers(150, 200, size=3)
        colors = [base.tolist(), (base - rng.integers(5, 15)).tolist()]
        wall = rng.integers(185, 225, size=3).tolist()
        brightness, tint, noise = float(rng.uniform(0.95, 1.05)), [1.0, 1.0, 1.0], 2.0
    else:
        floor = str(rng.choice(["tiles", "planks"]))
        a = rng.integers(90, 200, size=3)
        b = np.clip(a + rng.integers(-60, 60, size=3), 40, 230)
        colors = [a.tolist(), b.tolist()]
        wall = rng.integers(120, 230, size=3).tolist()
        brightness = float(rng.uniform(0.72, 1.2))
        tint = rng.uniform(0.88, 1.12, size=3).round(3).tolist()
        noise = float(rng.uniform(3.0, 9.0))
    return Style(floor, colors, float(rng.uniform(0.4, 1.1)), wall, brightness, tint,
                 bool(rng.random() < 0.5), noise)


def _footprints_clash(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two floor footprints (x, z, width, depth) overlap, with a small gap."""
    ax, az, aw, ad = a
    bx, bz, bw, bd = b
    gap = 0.08
    return abs(ax - bx) < (aw + bw) / 2 + gap and az < bz + bd + gap and bz < az + ad + gap


def sample_objects(rng: np.random.Generator, camera: Camera, layout: Layout) -> list[SceneObject]:
    """Place non-intersecting objects on the floor inside (or, sometimes, across the edge of) the view."""
    n = int(rng.integers(layout.min_objects, layout.max_objects + 1))
    cats = [str(c) for c in rng.choice(list(CATEGORIES), size=n)]
    if layout.focus_category:
        lo, hi = layout.focus_count
        k = int(rng.integers(lo, hi + 1))
        cats = [layout.focus_category] * k + cats[: max(0, n - k)]
    objects: list[SceneObject] = []
    footprints: list[tuple[float, float, float, float]] = []
    for cat_name in cats:
        cat = CATEGORIES[cat_name]
        size = [float(rng.uniform(*cat.width)), float(rng.uniform(*cat.height)), float(rng.uniform(*cat.depth))]
        for _ in range(30):
            z = float(rng.uniform(MIN_DEPTH, MAX_DEPTH))
            half_view = (camera.width / 2) * z / camera.focal
            if rng.random() < layout.p_truncated:
                x = float(rng.choice([-1, 1]) * (half_view + rng.uniform(-0.3, 0.1) * size[0]))
            else:
                x = float(rng.uniform(-half_view + size[0] / 2, half_view - size[0] / 2))
            fp = (x, z, size[0], size[2])
            if not any(_footprints_clash(fp, other) for other in footprints):
                footprints.append(fp)
                color = str(rng.choice(list(COLORS)))
                objects.append(SceneObject(len(objects), cat_name, color, [round(s, 4) for s in size],
                                           round(x, 4), round(z, 4)))
                break
    return objects


def sample_distractors(rng: np.random.Generator, camera: Camera, layout: Layout) -> list[Distractor]:
    """Posters on the back wall, rugs and loose shadows on the floor."""
    out: list[Distractor] = []
    half_wall = (camera.width / 2) * WALL_DEPTH / camera.focal
    if rng.random() < layout.p_poster:
        for _ in range(int(rng.integers(1, 3))):
            mimics = str(rng.choice(list(CATEGORIES)))
            w, h = float(rng.uniform(1.0, 2.4)), float(rng.uniform(1.0, 2.2))
            out.append(Distractor("poster", float(rng.uniform(-half_wall + w / 2, half_wall - w / 2)), WALL_DEPTH,
                                  [w, h], elevation=float(rng.uniform(0.6, 1.6)),
                                  color=str(rng.choice(list(COLORS))), mimics=mimics))
    if rng.random() < layout.p_rug:
        z = float(rng.uniform(MIN_DEPTH, MAX_DEPTH - 2))
        w, length = float(rng.uniform(0.8, 2.2)), float(rng.uniform(0.8, 2.0))
        half = (camera.width / 2) * z / camera.focal
        out.append(Distractor("rug", float(rng.uniform(-half + w / 2, half - w / 2)), z, [w, length],
                              color=str(rng.choice(list(COLORS)))))
    if rng.random() < layout.p_shadow:
        z = float(rng.uniform(MIN_DEPTH, MAX_DEPTH - 1))
        half = (camera.width / 2) * z / camera.focal
        out.append(Distractor("shadow", float(rng.uniform(-half, half)), z,
                              [float(rng.uniform(0.4, 1.2)), float(rng.uniform(0.3, 0.8))]))
    return out


def sample_scene(scene_id: str, seed: int, camera: Camera, domain: str = "target",
                 layout: Layout | None = None) -> Scene:
    """A scene (before rendering) drawn from ``seed``; the source domain has no distractors."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
    layout = layout or Layout()
    rng = np.random.default_rng(seed)
    style = _style(rng, domain)
    objects = sample_objects(rng, camera, layout)
    distractors = sample_distractors(rng, camera, layout) if domain == "target" else []
    return Scene(scene_id, domain, seed, style, objects, distractors)
