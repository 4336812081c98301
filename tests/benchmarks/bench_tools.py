"""Tool throughput: batched vs one-image-at-a-time detection, and repeated calls served from the per-image
caches (prints ratios, never asserts on time). Run: ``pytest tests/benchmarks/bench_tools.py -m benchmark -s``.

The detector is a tiny random GroundingDINO of the toy size (256 x 192 images), so the numbers measure the
wrapper's overheads and batching, not a real model's speed.
"""

from __future__ import annotations

import time

import pytest

from valor_lib.detection.inference import GroundingDinoDetector, Thresholds
from valor_lib.detection.tiny import TinyDetectorConfig, build_tiny_detector
from valor_lib.detection.toy import toy_words
from valor_lib.tools.depth import GroundPlaneDepth
from valor_lib.tools.detector import CachedDetector
from valor_lib.tools.images import load_image
from valor_lib.tools.toolbox import Toolbox
from valor_lib.tools.vqa import ClientVQA
from valor_lib.toyworld.camera import Camera
from valor_lib.toyworld.render import render_pruned
from valor_lib.toyworld.scene import sample_scene

PROMPT = "chair, table, sofa, lamp, box, ball, cabinet, vase"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@pytest.mark.benchmark
def test_batched_and_cached_detection():
    import torch

    from valor_lib.clients import ChatClient

    torch.manual_seed(0)
    camera = Camera()
    images = [render_pruned(sample_scene(f"b-{i}", i, camera), camera, 0.3).image for i in range(32)]
    model, processor = build_tiny_detector(toy_words(), TinyDetectorConfig())
    single = GroundingDinoDetector(model, processor, device="cpu", batch_size=1)
    batched = GroundingDinoDetector(model, processor, device="cpu", batch_size=8)
    single.detect(images[0], PROMPT)  # warm-up
    one_by_one = _timed(lambda: [single.detect(im, PROMPT, Thresholds(0.1, 0.1)) for im in images])
    in_batches = _timed(lambda: batched.detect_batch(images, [PROMPT] * len(images), Thresholds(0.1, 0.1)))
    toolbox = Toolbox(CachedDetector(batched), GroundPlaneDepth(), ClientVQA(ChatClient("toy:vqa", role="vqa")))
    cold = _timed(lambda: [toolbox.gd_detect(im, PROMPT) for im in images])
    warm = _timed(lambda: [toolbox.gd_detect(im, PROMPT) for im in images])
    n = len(images)
    print(f"\n{n} images: one by one {1000 * one_by_one / n:.1f} ms/image, batched x8 {1000 * in_batches / n:.1f} "
          f"ms/image (speed-up {one_by_one / in_batches:.2f}x); gd_detect cold {1000 * cold / n:.1f} ms, "
          f"cached {1000 * warm / n:.2f} ms (speed-up {cold / max(warm, 1e-9):.0f}x)")


@pytest.mark.benchmark
def test_a_threshold_sweep_reuses_the_model_outputs():
    """gd_detect at 5 threshold pairs on the same images: a fresh cache per pair (one forward pass per pair, as
    before the cache held raw outputs) vs one shared cache (one forward pass in all)."""
    import torch

    torch.manual_seed(0)
    camera = Camera()
    images = [render_pruned(sample_scene(f"s-{i}", i, camera), camera, 0.3).image for i in range(32)]
    model, processor = build_tiny_detector(toy_words(), TinyDetectorConfig())
    detector = GroundingDinoDetector(model, processor, device="cpu", batch_size=8)
    loaded = [load_image(im) for im in images]
    sweep = [Thresholds(b, t) for b, t in ((0.15, 0.1), (0.2, 0.15), (0.25, 0.1), (0.3, 0.25), (0.35, 0.25))]
    detector.detect(images[0], PROMPT)  # warm-up
    per_pair = _timed(lambda: [CachedDetector(detector, th, 0.5).detect_many(loaded, [PROMPT] * len(loaded))
                               for th in sweep])
    shared = CachedDetector(detector, sweep[0], 0.5)
    reused = _timed(lambda: [shared.with_thresholds(th, 0.5).detect_many(loaded, [PROMPT] * len(loaded))
                             for th in sweep])
    print(f"\n{len(sweep)} threshold pairs x {len(images)} images: a forward pass per pair {per_pair:.2f} s, "
          f"one shared {reused:.2f} s (speed-up {per_pair / reused:.2f}x)")
