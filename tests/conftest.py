"""Shared test setup: offline hubs, protocol test servers, rendered toy scenes and a tiny GroundingDINO."""

from __future__ import annotations

import os

import pytest

from valor_lib.detection.tiny import TinyDetectorConfig, build_tiny_detector
from valor_lib.toyworld.camera import Camera
from valor_lib.toyworld.render import render_pruned
from valor_lib.toyworld.scene import sample_scene

# Nothing in the tests may reach a model or dataset hub.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_name] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY = TinyDetectorConfig(d_model=32, encoder_layers=1, decoder_layers=2, ffn_dim=32, heads=2, num_queries=8,
                          max_text_len=24, text_hidden=16, backbone_channels=[8, 16, 32])


@pytest.fixture
def make_server():
    """``make_server(brain=echo_brain, **options)``: a started ``valor_lib.testing.ModelServer`` on
    127.0.0.1 (OpenAI and Gemini protocols, optional faults and latency), stopped after the test."""
    from valor_lib.testing import ModelServer, echo_brain

    servers = []

    def make(brain=echo_brain, **options):
        servers.append(ModelServer(brain, **options).start())
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def scenes():
    """Eight rendered target-domain scenes: [(scene, PIL image)]."""
    camera = Camera()
    out = []
    for seed in range(8):
        scene = sample_scene(f"t-{seed}", 100 + seed, camera, "target")
        out.append((scene, render_pruned(scene, camera, 0.3).image))
    return out


@pytest.fixture(scope="session")
def detector_dir(tmp_path_factory):
    """A folder holding a tiny GroundingDINO (random weights) and its processor, as save_pretrained writes it."""
    import torch

    from valor_lib.detection.toy import toy_words

    torch.manual_seed(0)
    model, processor = build_tiny_detector(toy_words(), TINY)
    folder = tmp_path_factory.mktemp("detector")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
