"""Depth backends: robust reading of depth maps, one map per image (never another image's), ground plane,
a tiny transformers metric depth model end to end, MoGe when installed."""

import importlib.util

import numpy as np
import pytest
from PIL import Image

from valor_lib.tools import ToolBackendError, ToolInputError
from valor_lib.tools.backends import make_depth
from valor_lib.tools.depth import GroundPlaneDepth, MapDepth, robust_depth
from valor_lib.tools.images import load_image
from valor_lib.toyworld.camera import Camera


def test_robust_depth_ignores_invalid_pixels():
    depth = np.full((10, 10), 4.0, np.float32)
    depth[5, 5] = np.inf
    depth[4, 4] = np.nan
    depth[4, 5] = -1.0
    depth[5, 4] = 0.0
    assert robust_depth(depth, (0, 0, 10, 10), (10, 10)) == 4.0
    sky = np.full((10, 10), np.inf, np.float32)
    sky[9, 9] = 7.0  # the centre window is all sky: widen to the box
    assert robust_depth(sky, (0, 0, 10, 10), (10, 10)) == 7.0
    with pytest.raises(ToolInputError, match="no valid depth"):
        robust_depth(np.full((10, 10), np.inf), (0, 0, 10, 10), (10, 10))
    half = np.full((5, 5), 2.0, np.float32)  # a map at half the image resolution
    half[:, 3:] = 9.0
    assert robust_depth(half, (6, 0, 10, 10), (10, 10)) == 9.0


class PixelDepth(MapDepth):
    """A depth 'model' whose map is derived from the pixels (mean brightness), counting its runs."""

    name = "pixel-depth"

    def __init__(self):
        super().__init__(cache_size=2)
        self.runs = 0

    def predict_map(self, image):
        self.runs += 1
        rgb = np.asarray(image.image, np.float32)
        return 1.0 + rgb.mean(-1) / 25.5


def test_depth_map_is_computed_once_per_image_and_never_reused_for_another():
    backend = PixelDepth()
    dark = load_image(Image.new("RGB", (20, 10), (10, 10, 10)))
    bright = load_image(Image.new("RGB", (20, 10), (240, 240, 240)))
    box = (2, 2, 8, 8)
    d1 = backend.depth_at(dark, box)
    assert backend.depth_at(dark, box) == d1 and backend.runs == 1  # same image: cached
    d2 = backend.depth_at(bright, box)
    assert backend.runs == 2 and d2 != d1  # a different image gets its own map (the authors reuse the first)
    same_pixels = load_image(Image.new("RGB", (20, 10), (10, 10, 10)))
    assert backend.depth_at(same_pixels, box) == d1 and backend.runs == 2  # keyed by content, not object
    backend.depth_at(load_image(Image.new("RGB", (20, 10), (99, 0, 0))), box)  # evicts bright (LRU of 2)
    backend.depth_at(dark, box)
    assert backend.runs == 3
    assert backend.depth_at(bright, box) == d2 and backend.runs == 4


def test_ground_plane_depth_uses_the_box_bottom_only():
    camera = Camera()
    backend = make_depth("toy:ground-plane")
    assert isinstance(backend, GroundPlaneDepth)
    image = load_image(Image.new("RGB", (camera.width, camera.height)))
    for z in (2.8, 5.0, 9.5):
        bottom = camera.floor_row(z)
        assert backend.depth_at(image, (10, bottom - 30, 40, bottom)) == pytest.approx(z, abs=1e-3)
    assert backend.depth_at(image, (10, 0, 40, camera.cy - 5)) == backend.max_depth  # above the horizon
    with pytest.raises(ToolInputError, match="calibrated"):
        backend.depth_at(load_image(Image.new("RGB", (100, 100))), (0, 0, 10, 10))
    with pytest.raises(ToolBackendError, match="ground-plane"):
        make_depth("toy:lidar")


def test_ground_plane_recovers_scene_depths(scenes):
    backend = GroundPlaneDepth()
    errors = []
    for scene, image in scenes:
        loaded = load_image(image)
        for obj in scene.objects:
            if not obj.truncated and obj.visible > 0.9:
                errors.append(abs(backend.depth_at(loaded, tuple(obj.bbox)) - obj.depth) / obj.depth)
    assert errors and max(errors) < 0.05


@pytest.fixture(scope="module")
def depth_model_dir(tmp_path_factory):
    """A tiny metric Depth Anything (random weights) with its PIL processor, saved offline."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
                            image_size=56, patch_size=14, out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=16, neck_hidden_sizes=[8, 8, 16, 16],
                                 fusion_hidden_size=8, head_hidden_size=4, depth_estimation_type="metric",
                                 max_depth=20)
    folder = tmp_path_factory.mktemp("depth")
    model = DepthAnythingForDepthEstimation(config)
    with torch.no_grad():  # untrained heads predict a constant: give the output something to depend on
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model.save_pretrained(folder)
    DPTImageProcessorPil(size={"height": 56, "width": 56}, keep_aspect_ratio=False).save_pretrained(folder)
    return folder


def test_depth_anything_backend_end_to_end(depth_model_dir, scenes):
    backend = make_depth(f"depth-anything-hf:{depth_model_dir}", device="cpu")
    (_, a), (_, b) = scenes[0], scenes[1]
    first, second = load_image(a), load_image(b)
    map_a = backend.depth_map(first)
    assert map_a.shape == (192, 256) and np.isfinite(map_a).all() and (map_a >= 0).all() and map_a.max() <= 20
    value = backend.depth_at(first, (100, 80, 140, 150))
    assert 0 < value <= 20
    assert not np.array_equal(backend.depth_map(second), map_a)
    assert len(backend.cache) == 2


@pytest.mark.skipif(importlib.util.find_spec("moge") is not None, reason="moge is installed")
def test_moge_without_the_package_says_how_to_install():
    with pytest.raises(ToolBackendError, match="pip install"):
        make_depth("moge:Ruicheng/moge-2-vitl-normal")


@pytest.mark.skipif(importlib.util.find_spec("moge") is None, reason="moge is not installed")
def test_moge_backend_end_to_end(scenes):  # pragma: no cover - needs the optional package and its weights
    backend = make_depth("moge:Ruicheng/moge-2-vitl-normal", device="auto")
    assert backend.depth_at(load_image(scenes[0][1]), (100, 80, 140, 150)) > 0
