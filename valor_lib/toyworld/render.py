"""Render toy scenes to pixels: perspective floor, wall, posters, rugs, shadows, occluding objects, noise.

Objects are drawn far to near (painter's order), so nearer objects occlude farther ones. Rendering also
fills in each object's amodal 2D box, its visible fraction and whether an image border cuts it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from valor_lib.toyworld.camera import Camera
from valor_lib.toyworld.scene import WALL_DEPTH, Distractor, Scene, SceneObject
from valor_lib.toyworld.vocab import CATEGORIES, COLORS

Box = tuple[float, float, float, float]


@dataclass
class Rendered:
    """A rendered scene: the RGB image and the per-pixel id of the visible object (-1: none)."""

    image: Image.Image
    ids: np.ndarray


def object_box(obj: SceneObject, camera: Camera) -> Box:
    """Unclipped image box of an object's front silhouette."""
    w, h, _ = obj.size
    u1, v_top = camera.project(obj.x - w / 2, h, obj.z)
    u2, v_bottom = camera.project(obj.x + w / 2, 0.0, obj.z)
    return u1, v_top, u2, v_bottom


def _clip(box: Box, camera: Camera) -> list[float]:
    x1, y1, x2, y2 = box
    return [round(min(max(x1, 0.0), camera.width), 2), round(min(max(y1, 0.0), camera.height), 2),
            round(min(max(x2, 0.0), camera.width), 2), round(min(max(y2, 0.0), camera.height), 2)]


def _background(scene: Scene, camera: Camera) -> np.ndarray:
    """Wall above the floor line, textured floor below it, in float RGB."""
    h, w = camera.height, camera.width
    style = scene.style
    img = np.empty((h, w, 3), np.float32)
    rows = np.arange(h, dtype=np.float32) + 0.5
    wall_line = camera.floor_row(WALL_DEPTH)
    wall = np.asarray(style.wall_color, np.float32)
    shade = 1.0 - 0.15 * (rows / h)[:, None]
    img[:] = wall[None, None, :] * shade[:, :, None]
    floor_rows = rows > wall_line
    v = rows[floor_rows]
    z = camera.focal * camera.mount_height / (v - camera.cy)
    u = np.arange(w, dtype=np.float32) + 0.5
    x = (u[None, :] - camera.cx) * z[:, None] / camera.focal
    a, b = (np.asarray(c, np.float32) for c in style.floor_colors)
    s = style.tile_size
    if style.floor == "tiles":
        pattern = (np.floor(x / s) + np.floor(z[:, None] / s)) % 2
    elif style.floor == "planks":
        pattern = np.broadcast_to(np.floor(x / (s * 0.35)) % 2, x.shape) * 0.5 + (np.sin(z[:, None] * 3) > 0.9) * 0.5
    else:
        pattern = np.zeros_like(x)
    floor = a[None, None, :] * (1 - pattern[..., None]) + b[None, None, :] * pattern[..., None]
    fog = np.clip((z - 2.0) / 14.0, 0, 0.35)[:, None, None]
    img[floor_rows] = floor * (1 - fog) + wall[None, None, :] * fog
    img[int(wall_line): int(wall_line) + 2] *= 0.7
    return img


def _shape_mask(shape: str, box: Box, size: tuple[int, int]) -> tuple[Image.Image, list[tuple[Box, float]]]:
    """Silhouette mask of a category's shape inside ``box`` plus detail rectangles (box, darkening)."""
    mask = Image.new("L", size, 0)
    d = ImageDraw.Draw(mask)
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    details: list[tuple[Box, float]] = []

    def rect(ax: float, ay: float, bx: float, by: float) -> None:
        d.rectangle([x1 + ax * bw, y1 + ay * bh, x1 + bx * bw - 1e-3, y1 + by * bh - 1e-3], fill=255)

    if shape == "chair":
        rect(0.0, 0.0, 1.0, 0.48)
        rect(0.0, 0.48, 1.0, 0.58)
        rect(0.0, 0.58, 0.12, 1.0)
        rect(0.88, 0.58, 1.0, 1.0)
        details.append(((x1, y1 + 0.48 * bh, x2, y1 + 0.58 * bh), 0.75))
    elif shape == "table":
        rect(0.0, 0.0, 1.0, 0.14)
        rect(0.02, 0.14, 0.1, 1.0)
        rect(0.9, 0.14, 0.98, 1.0)
        details.append(((x1, y1 + 0.1 * bh, x2, y1 + 0.14 * bh), 0.7))
    elif shape == "sofa":
        rect(0.06, 0.0, 0.94, 0.5)
        rect(0.0, 0.3, 0.1, 0.92)
        rect(0.9, 0.3, 1.0, 0.92)
        rect(0.0, 0.5, 1.0, 0.92)
        rect(0.04, 0.92, 0.1, 1.0)
        rect(0.9, 0.92, 0.96, 1.0)
        details.append(((x1 + 0.1 * bw, y1 + 0.5 * bh, x2 - 0.1 * bw, y1 + 0.56 * bh), 0.8))
    elif shape == "lamp":
        d.polygon([(x1 + 0.2 * bw, y1), (x1 + 0.8 * bw, y1), (x2, y1 + 0.3 * bh), (x1, y1 + 0.3 * bh)], fill=255)
        rect(0.45, 0.3, 0.55, 0.95)
        rect(0.2, 0.95, 0.8, 1.0)
        details.append(((x1 + 0.45 * bw, y1 + 0.3 * bh, x1 + 0.55 * bw, y1 + 0.95 * bh), 0.6))
    elif shape == "box":
        rect(0.0, 0.0, 1.0, 1.0)
        details.append(((x1, y1, x2, y1 + 0.12 * bh), 1.2))
        details.append(((x1 + 0.45 * bw, y1, x1 + 0.55 * bw, y2), 0.85))
    elif shape == "ball":
        d.ellipse([x1, y1, x2, y2], fill=255)
        details.append(((x1 + 0.25 * bw, y1 + 0.2 * bh, x1 + 0.4 * bw, y1 + 0.35 * bh), 1.35))
    elif shape == "cabinet":
        rect(0.0, 0.0, 1.0, 1.0)
        details.append(((x1 + 0.49 * bw, y1 + 0.04 * bh, x1 + 0.51 * bw, y2 - 0.04 * bh), 0.6))
        details.append(((x1 + 0.4 * bw, y1 + 0.45 * bh, x1 + 0.45 * bw, y1 + 0.52 * bh), 0.5))
        details.append(((x1 + 0.55 * bw, y1 + 0.45 * bh, x1 + 0.6 * bw, y1 + 0.52 * bh), 0.5))
    elif shape == "vase":
        d.ellipse([x1, y1 + 0.25 * bh, x2, y2], fill=255)
        rect(0.32, 0.0, 0.68, 0.45)
        details.append(((x1 + 0.32 * bw, y1, x1 + 0.68 * bw, y1 + 0.06 * bh), 0.7))
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return mask, details


def _paint(img: np.ndarray, mask: np.ndarray, color: np.ndarray, box: Box, light_from_left: bool,
           flat: bool = False) -> None:
    """Fill ``mask`` with ``color`` shaded across the box (flat paint has no shading)."""
    x1, _, x2, _ = box
    cols = np.arange(img.shape[1], dtype=np.float32)
    t = np.clip((cols - x1) / max(x2 - x1, 1.0), 0, 1)
    shade = (1.15 - 0.35 * t) if light_from_left else (0.8 + 0.35 * t)
    if flat:
        shade = np.ones_like(shade)
    layer = color[None, None, :] * shade[None, :, None]
    img[mask] = np.broadcast_to(layer, img.shape)[mask]


def _darken(img: np.ndarray, box: Box, factor: float, clip_mask: np.ndarray) -> None:
    x1, y1, x2, y2 = (round(v) for v in box)
    region = np.zeros(clip_mask.shape, bool)
    region[max(y1, 0): max(y2, 0), max(x1, 0): max(x2, 0)] = True
    sel = region & clip_mask
    img[sel] = np.clip(img[sel] * factor, 0, 255)


def _ellipse_alpha(camera: Camera, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    yy, xx = np.mgrid[0: camera.height, 0: camera.width].astype(np.float32)
    r = ((xx + 0.5 - cx) / max(rx, 0.5)) ** 2 + ((yy + 0.5 - cy) / max(ry, 0.5)) ** 2
    return np.clip(1.2 - r, 0, 1) ** 1.5


def _floor_quad(camera: Camera, x: float, z: float, width: float, length: float) -> list[tuple[float, float]]:
    near_l, near_r = camera.project(x - width / 2, 0, z), camera.project(x + width / 2, 0, z)
    far_r, far_l = camera.project(x + width / 2, 0, z + length), camera.project(x - width / 2, 0, z + length)
    return [near_l, near_r, far_r, far_l]


def _bbox_of(points: list[tuple[float, float]], camera: Camera) -> list[float]:
    us, vs = zip(*points, strict=True)
    return _clip((min(us), min(vs), max(us), max(vs)), camera)


def _draw_distractor(img: np.ndarray, dis: Distractor, scene: Scene, camera: Camera) -> None:
    size = (camera.width, camera.height)
    if dis.kind == "poster":
        w, h = dis.size
        (u1, v1), (u2, v2) = camera.project(dis.x - w / 2, dis.elevation + h, dis.z), camera.project(
            dis.x + w / 2, dis.elevation, dis.z)
        frame = Image.new("L", size, 0)
        ImageDraw.Draw(frame).rectangle([u1, v1, u2, v2], fill=255)
        img[np.asarray(frame) > 0] = np.asarray([245, 245, 240], np.float32) if dis.color != "white" else 60.0
        cat = CATEGORIES[dis.mimics or "box"]
        ph = (v2 - v1) * 0.8
        pw = min((u2 - u1) * 0.8, ph * (sum(cat.width) / sum(cat.height)))
        cxp, cyp = (u1 + u2) / 2, (v1 + v2) / 2
        inner = (cxp - pw / 2, cyp - ph / 2, cxp + pw / 2, cyp + ph / 2)
        mask, _ = _shape_mask(cat.shape, inner, size)
        _paint(img, np.asarray(mask) > 0, np.asarray(COLORS[dis.color or "red"], np.float32), inner,
               scene.style.light_from_left, flat=True)
        dis.bbox = _clip((u1, v1, u2, v2), camera)
    elif dis.kind == "rug":
        quad = _floor_quad(camera, dis.x, dis.z, dis.size[0], dis.size[1])
        mask = Image.new("L", size, 0)
        ImageDraw.Draw(mask).polygon(quad, fill=255)
        m = np.asarray(mask) > 0
        img[m] = img[m] * 0.35 + np.asarray(COLORS[dis.color or "red"], np.float32) * 0.65
        dis.bbox = _bbox_of(quad, camera)
    elif dis.kind == "shadow":
        quad = _floor_quad(camera, dis.x, dis.z, dis.size[0], dis.size[1])
        us, vs = zip(*quad, strict=True)
        alpha = _ellipse_alpha(camera, sum(us) / 4, sum(vs) / 4, (max(us) - min(us)) / 2, (max(vs) - min(vs)) / 2)
        img *= (1 - 0.55 * alpha)[..., None]
        dis.bbox = _bbox_of(quad, camera)
    else:
        raise ValueError(f"unknown distractor kind {dis.kind!r}")


def render(scene: Scene, camera: Camera) -> Rendered:
    """Draw ``scene``; sets each object's ``bbox``, ``visible`` and ``truncated`` in place."""
    size = (camera.width, camera.height)
    img = _background(scene, camera)
    for dis in scene.distractors:
        _draw_distractor(img, dis, scene, camera)
    for obj in scene.objects:  # contact shadows
        u1, _, u2, v2 = object_box(obj, camera)
        alpha = _ellipse_alpha(camera, (u1 + u2) / 2, v2, (u2 - u1) * 0.6, max((u2 - u1) * 0.08, 1.0))
        img *= (1 - 0.45 * alpha)[..., None]
    ids = np.full((camera.height, camera.width), -1, np.int16)
    full_pixels: dict[int, int] = {}
    for obj in sorted(scene.objects, key=lambda o: -o.z):
        box = object_box(obj, camera)
        mask_img, details = _shape_mask(CATEGORIES[obj.category].shape, box, size)
        mask = np.asarray(mask_img) > 0
        color = np.asarray(COLORS[obj.color], np.float32)
        _paint(img, mask, color, box, scene.style.light_from_left)
        for detail_box, factor in details:
            _darken(img, detail_box, factor, mask)
        ids[mask] = obj.id
        full_pixels[obj.id] = int(mask.sum())
    for obj in scene.objects:
        x1, y1, x2, y2 = object_box(obj, camera)
        area = max((x2 - x1) * (y2 - y1), 1e-6)
        clipped = _clip((x1, y1, x2, y2), camera)
        inside = max(clipped[2] - clipped[0], 0) * max(clipped[3] - clipped[1], 0) / area
        seen = int((ids == obj.id).sum())
        obj.bbox = clipped
        obj.truncated = inside < 0.999
        obj.visible = round(inside * seen / max(full_pixels[obj.id], 1), 3)
    style = scene.style
    img *= style.brightness * np.asarray(style.tint, np.float32)[None, None, :]
    rng = np.random.default_rng(scene.seed + 7919)
    img += rng.normal(0.0, style.noise, img.shape).astype(np.float32)
    pixels = np.clip(img, 0, 255).astype(np.uint8)
    return Rendered(Image.fromarray(pixels, "RGB"), ids)


def render_pruned(scene: Scene, camera: Camera, min_visible: float) -> Rendered:
    """Render, dropping objects that end up less than ``min_visible`` seen; ids are renumbered 0..n-1."""
    for _ in range(len(scene.objects) + 1):
        rendered = render(scene, camera)
        keep = [o for o in scene.objects if o.visible >= min_visible]
        if len(keep) == len(scene.objects):
            return rendered
        for new_id, obj in enumerate(keep):
            obj.id = new_id
        scene.objects = keep
    return render(scene, camera)
