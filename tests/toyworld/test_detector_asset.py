"""The pretrained toy detector as a committed asset: recipes, matching, building and installing."""

from __future__ import annotations

import json

import pytest

from valor_lib.toyworld.config import ToyDetectorParams, ToyWorldParams
from valor_lib.toyworld.detector_asset import (
    RECIPE_FILE,
    asset_dir,
    asset_status,
    build_asset,
    install_asset,
    recipe,
    recipe_differences,
)
from valor_lib.toyworld.models import pretrain_toy_model

TINY_DETECTOR = dict(holdout_images=1, epochs=1, batch_size=2, d_model=32, num_queries=5, threads=1)


def _world(sizes: dict, **detector) -> ToyWorldParams:
    return ToyWorldParams(**sizes, detector=ToyDetectorParams(**{**TINY_DETECTOR, **detector}))


def _fake_asset(params: ToyWorldParams, world_seed: int, seed: int) -> None:
    folder = asset_dir(seed)
    folder.mkdir(parents=True)
    (folder / RECIPE_FILE).write_text(json.dumps({"recipe": recipe(params, world_seed, seed)}))


def test_the_recipe_leaves_out_what_does_not_change_the_weights(small_world_sizes):
    plain = _world(small_world_sizes)
    called_otherwise = _world(small_world_sizes, seed=5, mining_thresholds=[0.2, 0.2], answering_grid=[0.3])
    assert recipe(plain, 0, 1) == recipe(called_otherwise, 0, 1)
    assert recipe(plain, 0, 1) != recipe(_world(small_world_sizes, epochs=2), 0, 1)
    assert recipe(plain, 0, 1) != recipe(plain, 1, 1)
    assert recipe(plain, 0, 1) != recipe(plain, 0, 2)


def test_differences_name_each_changed_setting(small_world_sizes):
    built = recipe(_world(small_world_sizes), 0, 0)
    wanted = recipe(_world({**small_world_sizes, "source_images": 9}, lr=1e-3), 0, 0)
    assert recipe_differences(wanted, built) == ["detector.lr: 0.0006 -> 0.001", "source_images: 4 -> 9"]
    assert recipe_differences(built, built) == []


def test_an_asset_is_used_only_for_its_own_recipe(tmp_path, monkeypatch, small_world_sizes):
    monkeypatch.setenv("VALOR_ROOT", str(tmp_path))
    params = _world(small_world_sizes)
    folder, why = asset_status(params, 0, 0)
    assert folder is None and why.startswith("no pretrained toy detector for seed 0")
    _fake_asset(params, 0, 0)
    assert asset_status(params, 0, 0)[0] == asset_dir(0)
    folder, why = asset_status(_world(small_world_sizes, epochs=3), 0, 0)
    assert folder is None and "another recipe (detector.epochs: 1 -> 3)" in why
    assert asset_status(params, 0, 1)[0] is None


def test_installing_copies_everything_but_the_recipe(tmp_path, monkeypatch, small_world_sizes):
    monkeypatch.setenv("VALOR_ROOT", str(tmp_path))
    params = _world(small_world_sizes)
    _fake_asset(params, 0, 0)
    (asset_dir(0) / "model.safetensors").write_bytes(b"weights")
    out = tmp_path / "models" / "detector-base"
    out.mkdir(parents=True)
    (out / "stale.json").write_text("{}")
    install_asset(asset_dir(0), out)
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors"]


@pytest.mark.slow
def test_a_built_asset_equals_in_world_pretraining_and_is_installed_without_training(small_world,
                                                                                     small_world_sizes, tmp_path):
    """The asset renders its own source split, which equals the world's; the stage then trains nothing."""
    import shutil

    from safetensors.torch import load_file

    params = _world(small_world_sizes, seed=0)  # the world's seed is 3, the detector's 0
    here = pretrain_toy_model("detector-base", params, tmp_path / "here", seed=3, progress=False)
    folder = build_asset(params, 3, 0, progress=False)
    try:
        built = json.loads((folder / RECIPE_FILE).read_text())
        assert built["recipe"] == recipe(params, 3, 0) and built["selected_epoch"] is None
        assert asset_status(params, 3, 0)[0] == folder
        installed = pretrain_toy_model("detector-base", params, tmp_path / "installed", seed=3, progress=False)
        assert installed.resumed_from == installed.steps == here.steps  # a finished run: nothing trained
        weights = load_file(installed.out_dir / "model.safetensors")
        trained_here = load_file(here.out_dir / "model.safetensors")
        assert weights.keys() == trained_here.keys()
        assert all((weights[k] == trained_here[k]).all() for k in weights)
    finally:
        shutil.rmtree(folder.parent)


def test_the_committed_assets_are_the_ones_params_yaml_asks_for():
    """Else `dvc repro` would pretrain the detector inside the toy_world stage, far over its time budget."""
    from valor_lib.params import apply_profile, load_raw, validate_common, validate_section

    sections = apply_profile(load_raw(), "toy")
    params = validate_section("toy_world", sections["toy_world"])
    for seed in (0, 1, 2):
        folder, why = asset_status(params, validate_common(sections["common"]).seed, seed)
        assert folder is not None, why
        assert (folder / "model.safetensors").is_file() and (folder / "training.json").is_file()
