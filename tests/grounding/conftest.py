"""A small toy world (built once per session) under a temporary repository root, and a crop classifier
trained on its knowledge split (the toy VLM verifier's eyes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from valor_lib.toyworld.config import ToyWorldParams

WORLD = dict(eval_items=4, train_items=4, omni3d_rows=10, pool_images=2, source_images=2, detection_val_images=3,
             knowledge_images=60, pretrain_queries=0, min_visible=0.3, workers=1)


@pytest.fixture(scope="session")
def toy_repo(tmp_path_factory) -> Path:
    """A repository root holding ``dvc.yaml`` and a freshly generated small ``data/toy``."""
    from valor_lib.toyworld.build import build_world

    root = tmp_path_factory.mktemp("repo")
    (root / "dvc.yaml").write_text("stages: {}\n")
    build_world(ToyWorldParams.model_construct(**WORLD), 3, root / "data" / "toy")
    return root


@pytest.fixture
def toy_world(toy_repo, monkeypatch) -> Path:
    """Make ``toy_repo`` the repository root for this test."""
    monkeypatch.setenv("VALOR_ROOT", str(toy_repo))
    return toy_repo


@pytest.fixture(scope="session")
def verifier_model(toy_repo) -> Path:
    """A crop classifier trained briefly on the small world's knowledge split (in ``data/toy/models``)."""
    import os

    from valor_lib.grounding.toy_classifier import build_toy_verifier
    from valor_lib.toyworld.config import ToyVlmVerifierParams

    params = ToyVlmVerifierParams(input_size=24, padding=0.1, crops_per_object=3, background_crops=3,
                                  holdout_fraction=0.2, epochs=8, batch_size=64, lr=3.0e-3, threads=1)
    old = os.environ.get("VALOR_ROOT")
    os.environ["VALOR_ROOT"] = str(toy_repo)
    try:
        out = toy_repo / "data" / "toy" / "models" / "vlm-verifier"
        build_toy_verifier(params, out, seed=0, progress=False)
    finally:
        if old is None:
            os.environ.pop("VALOR_ROOT")
        else:
            os.environ["VALOR_ROOT"] = old
    return out
