"""The pretrained toy detector as a fixed, committed asset: ``data/pretrained/toy-detector/seed-<n>/``.

The paper's GroundingDINO-T is a download, the same for every run; its toy stand-in is pretrained once per
detector seed on the source split and committed (2.9 MB each), so the toy pipeline starts from a detector
pretrained for 42 epochs instead of training a weaker one inside its 20-minute budget. Each asset holds the
weights as ``save_pretrained`` wrote them, the training log (``training.json``, ``history.json``) and
``recipe.json``: everything the pretraining depends on (world seed, source split, detector settings) plus how
and when it was built. The ``toy_world`` stage uses an asset only when its recipe equals the one params.yaml
asks for; any other recipe (a changed epoch count, a new seed) is pretrained in the stage, as before.

Rebuild after changing the pretraining code or recipe::

    python -m valor_lib.toyworld.detector_asset --seeds 0 1 2      # or: make toy-detectors

Three seeds take about 28 min on two cores (side by side, one thread each; 18 CPU minutes per seed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from valor_lib.paths import data_dir
from valor_lib.toyworld.config import ToyWorldParams

RECIPE_FILE = "recipe.json"
# Settings that do not change the pretrained weights: which seed to use, and how the stage calls the detector.
NOT_IN_RECIPE = {"seed", "mining_thresholds", "answering_grid"}


def asset_root() -> Path:
    """``data/pretrained/toy-detector``."""
    return data_dir("pretrained", "toy-detector")


def asset_dir(detector_seed: int) -> Path:
    """Where the asset of one pretraining seed lives."""
    return asset_root() / f"seed-{detector_seed}"


def recipe(params: ToyWorldParams, world_seed: int, detector_seed: int) -> dict[str, Any]:
    """Everything the pretrained weights depend on: the source split (world seed, size, visibility cut-off)
    and the detector's pretraining settings with its seed."""
    return {"world_seed": world_seed, "source_images": params.source_images, "min_visible": params.min_visible,
            "detector_seed": detector_seed,
            "detector": params.detector.model_dump(exclude=NOT_IN_RECIPE)}


def _flat(built: dict[str, Any]) -> dict[str, Any]:
    """A recipe with its detector settings as ``detector.<key>`` entries."""
    return {**{k: v for k, v in built.items() if k != "detector"},
            **{f"detector.{k}": v for k, v in built.get("detector", {}).items()}}


def recipe_differences(wanted: dict[str, Any], built: dict[str, Any]) -> list[str]:
    """``key: built -> wanted`` for every recipe entry that differs."""
    want, have = _flat(wanted), _flat(built)
    return [f"{k}: {have.get(k)!r} -> {want.get(k)!r}" for k in sorted(set(want) | set(have))
            if want.get(k) != have.get(k)]


def read_recipe(folder: Path) -> dict[str, Any] | None:
    """The recipe an asset folder was built with (None: no finished asset there)."""
    path = folder / RECIPE_FILE
    return json.loads(path.read_text())["recipe"] if path.exists() else None


def asset_status(params: ToyWorldParams, world_seed: int, detector_seed: int) -> tuple[Path | None, str]:
    """(the asset folder to use, or None; a one-line reason) for the detector ``params`` ask for."""
    folder = asset_dir(detector_seed)
    built = read_recipe(folder)
    if built is None:
        return None, f"no pretrained toy detector for seed {detector_seed} in {folder}"
    differences = recipe_differences(recipe(params, world_seed, detector_seed), built)
    if differences:
        return None, f"{folder} was pretrained with another recipe ({'; '.join(differences)})"
    return folder, f"pretrained toy detector from {folder}"


def install_asset(folder: Path, out_dir: Path) -> None:
    """Copy an asset's files into ``out_dir`` (replacing what is there); the recipe stays with the asset."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(folder, out_dir, ignore=shutil.ignore_patterns(RECIPE_FILE))


def _render_source(params: ToyWorldParams, world_seed: int, world: Path) -> None:
    """The source split alone, as ``build_world`` writes it (each image depends only on seed, split, index)."""
    from valor_lib.toyworld.build import SplitPlan, generate, write_split

    plan = SplitPlan("source", "source", params.source_images)
    for split_plan, items in generate([plan], world_seed, params.min_visible, workers=1):
        write_split(world, split_plan, items, params, world_seed)


def build_asset(params: ToyWorldParams, world_seed: int, detector_seed: int, progress: bool = True) -> Path:
    """Pretrain the toy detector of ``detector_seed`` and write it atomically to :func:`asset_dir`."""
    from valor_lib.detection.toy import pretrain_toy_detector
    from valor_lib.provenance import git_state, package_versions

    code = git_state()  # the code this run imports, before anything can change under it
    folder = asset_dir(detector_seed)
    partial = folder.with_name(folder.name + ".partial")  # a rerun after an interrupt resumes from its checkpoint
    with tempfile.TemporaryDirectory(prefix="toy-source-") as world:
        _render_source(params, world_seed, Path(world))
        result = pretrain_toy_detector(params.detector, partial, seed=detector_seed, progress=progress,
                                       world=Path(world))
    built = {"recipe": recipe(params, world_seed, detector_seed), **code,
             "packages": {k: v for k, v in package_versions().items() if k in ("torch", "transformers")},
             "built_at": datetime.now(UTC).isoformat(timespec="seconds"), "seconds": result.seconds,
             "selected_epoch": result.selected_epoch}
    (partial / RECIPE_FILE).write_text(json.dumps(built, indent=1))
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)
    return folder


def build_assets(params: ToyWorldParams, world_seed: int, seeds: list[int], workers: int) -> dict[int, Path]:
    """:func:`build_asset` for every seed, ``workers`` side by side."""
    from valor_lib.processes import run_jobs

    progress = workers == 1 or len(seeds) == 1  # side by side, the bars of several processes would interleave
    jobs = {s: {"params": params, "world_seed": world_seed, "detector_seed": s, "progress": progress}
            for s in seeds}
    return run_jobs(build_asset, jobs, workers)


def main(argv: list[str] | None = None) -> None:
    """Command line: pretrain the assets of the given seeds from params.yaml's toy recipe."""
    from valor_lib.params import apply_profile, load_raw, validate_common, validate_section

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="detector seeds (default 0 1 2)")
    parser.add_argument("--workers", type=int, default=None,
                        help="seeds pretrained side by side (default toy_world.pretrain_workers)")
    args = parser.parse_args(argv)
    sections = apply_profile(load_raw(), "toy")
    params = cast(ToyWorldParams, validate_section("toy_world", sections["toy_world"]))
    world_seed = validate_common(sections["common"]).seed
    for seed, folder in build_assets(params, world_seed, args.seeds, args.workers or params.pretrain_workers).items():
        built = json.loads((folder / RECIPE_FILE).read_text())
        print(f"seed {seed}: {folder} ({built['seconds']:.0f} s, epoch {built['selected_epoch']} kept)")


if __name__ == "__main__":
    main()
