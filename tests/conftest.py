"""Shared test setup: offline hubs, protocol test servers, rendered toy scenes and a tiny GroundingDINO."""

from __future__ import annotations

import os
import shutil

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


SMALL_WORLD = dict(eval_items=6, train_items=4, omni3d_rows=30, pool_images=3, source_images=4,
                   detection_val_images=3, knowledge_images=3, pretrain_queries=150, min_visible=0.3, workers=1)


@pytest.fixture(scope="session")
def small_world_root(tmp_path_factory):
    """A repository root with this checkout's params.yaml and dvc.yaml and a small generated toy world
    (``SMALL_WORLD``, seed 3; about 4 s)."""
    from valor_lib.paths import repo_root
    from valor_lib.toyworld.build import build_world
    from valor_lib.toyworld.config import ToyWorldParams

    root = tmp_path_factory.mktemp("repo")
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(repo_root() / name, root / name)
    build_world(ToyWorldParams(**SMALL_WORLD), 3, root / "data" / "toy")
    return root


@pytest.fixture(scope="session")
def small_world_sizes():
    """The sizes the small toy world was generated with (``ToyWorldParams`` fields)."""
    return dict(SMALL_WORLD)


@pytest.fixture
def small_world(small_world_root, monkeypatch):
    """The small toy world, as ``data/toy`` of the repository root (``$VALOR_ROOT``) during the test."""
    monkeypatch.setenv("VALOR_ROOT", str(small_world_root))
    return small_world_root / "data" / "toy"
