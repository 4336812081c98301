"""Verification pipeline overhead (prints, never asserts on time).
Run: ``pytest tests/benchmarks/bench_grounding.py -m benchmark -s``.

A brain that keeps every box isolates the pipeline's own cost (request building: overlays and 640 px crops, the
client, JSON validation, fsync'd JSONL records). Baseline, in the same process: drawing the same overlays and
crops in a bare loop. Also reported: a resumed rerun (no calls) and ``gd_detect`` prompt extraction speed.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PIL import Image

from valor_lib.clients import ChatClient, register_toy_brain, unregister_toy_brain
from valor_lib.grounding.queries import extract_grounding_queries
from valor_lib.grounding.verify import VerifierSettings, verify_candidates
from valor_lib.grounding.views import NumberedBox, draw_overlay, verification_crop

IMAGES, BOXES = 48, 8


class KeepAll:
    name = "keep-all"

    def __call__(self, request):
        text = request.messages[0].text
        return json.dumps({"match": True}) if '"match"' in text else json.dumps({"drop": []})


@pytest.mark.benchmark
def test_verification_overhead(tmp_path):
    rng = np.random.default_rng(0)
    candidates = {}
    for i in range(IMAGES):
        name = f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (192, 256, 3), dtype=np.uint8)).save(tmp_path / name)
        boxes = []
        for k in range(BOXES):
            x, y = rng.uniform(0, 200), rng.uniform(0, 140)
            boxes.append({"box_id": f"{name}#{k}", "bbox": [x, y, x + 40, y + 40], "label": "chair", "score": 0.5})
        candidates[name] = {"id": name, "file": name, "width": 256, "height": 192, "boxes": boxes, "queried": ["chair"]}
    settings = VerifierSettings(overlay_long_side=512)

    started = time.perf_counter()
    for record in candidates.values():
        with Image.open(tmp_path / record["file"]) as im:
            image = im.convert("RGB")
        numbered = [NumberedBox(k + 1, b["label"], tuple(b["bbox"])) for k, b in enumerate(record["boxes"])]
        draw_overlay(image, numbered, 512)
        for b in record["boxes"]:
            verification_crop(image, b["bbox"], 0.1, 640)
        draw_overlay(image, numbered, 512)
    bare_s = time.perf_counter() - started

    register_toy_brain("bench-keep-all", lambda: KeepAll(), replace=True)
    try:
        client = ChatClient("toy:bench-keep-all", role="vlm_verifier")
        started = time.perf_counter()
        verify_candidates(client, candidates, tmp_path, tmp_path / "v", settings, progress=False)
        pipeline_s = time.perf_counter() - started
        started = time.perf_counter()
        verify_candidates(client, candidates, tmp_path, tmp_path / "v", settings, progress=False)
        resumed_s = time.perf_counter() - started
    finally:
        unregister_toy_brain("bench-keep-all")

    code = "\n".join(f'x{i} = gd_detect(image, "red " + "chair{i}, table")' for i in range(20))
    started = time.perf_counter()
    for _ in range(200):
        extract_grounding_queries(code)
    extract_s = time.perf_counter() - started

    print(f"\nverification of {IMAGES} images x {BOXES} boxes: {IMAGES / pipeline_s:.1f} images/s "
          f"({pipeline_s / bare_s:.2f}x the bare view-drawing loop, {IMAGES / bare_s:.1f} images/s); "
          f"resumed rerun {resumed_s / pipeline_s:.2f}x; prompt extraction {200 / extract_s:.0f} programs/s")
