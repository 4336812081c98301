"""Fine-tuning on pseudo-labels: presets, per-image negative phrases, the training loop (freezing, schedules,
resume, output loadable by the detector tool), and the command line."""

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image, ImageDraw

from valor_lib.detection.data import Instance
from valor_lib.detection.tiny import TinyDetectorConfig, build_tiny_detector
from valor_lib.grounding.export import PseudoImage, export_pseudo_labels, read_pseudo_images
from valor_lib.grounding.train import (
    PRESETS,
    FinetuneConfig,
    PseudoLabelCollator,
    PseudoSample,
    finetune_config,
    finetune_detector,
    train_on_pseudo_labels,
    training_datasets,
)

SMALL = TinyDetectorConfig(d_model=32, encoder_layers=1, decoder_layers=2, ffn_dim=32, heads=2, num_queries=6,
                           max_text_len=24, text_hidden=16, backbone_channels=[8, 16, 32], image_size=(48, 64))
WORDS = ["square", "disc", "red", "blue", "ring"]


def _pseudo_images(root, n=6):
    rng = np.random.default_rng(0)
    images = []
    for i in range(n):
        image = Image.new("RGB", (64, 48), (128, 128, 128))
        draw = ImageDraw.Draw(image)
        boxes = []
        for _ in range(2):
            x, y, w = int(rng.integers(0, 40)), int(rng.integers(0, 25)), int(rng.integers(10, 20))
            shape = str(rng.choice(["square", "disc"]))
            (draw.rectangle if shape == "square" else draw.ellipse)([x, y, x + w, y + w], fill=(220, 30, 30))
            boxes.append({"bbox": [x, y, x + w, y + w], "label": shape if i % 2 else f"red {shape}", "score": 0.5})
        name = f"src{i % 2}/img{i}.png"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(root / name)
        images.append(PseudoImage(name, f"src{i % 2}", name, 64, 48, tuple(boxes), ("square", "disc", "ring")))
    return images


def test_presets_and_overrides():
    paper = finetune_config({"epochs": 1}, "paper", seed=3)
    assert (paper.lr, paper.epochs, paper.batch_size, paper.scheduler, paper.grad_clip) == (1.0e-6, 4, 16, "step", 0.1)
    assert paper.freeze_backbone and paper.freeze_text and paper.seed == 3
    authors = finetune_config({}, "authors-code")
    assert (authors.lr, authors.epochs, authors.scheduler) == (1.0e-5, 10, "cosine")
    assert set(PRESETS) == {"paper", "authors-code"}
    with pytest.raises(ValueError):
        finetune_config({}, "nope")
    with pytest.raises(ValueError):
        finetune_config({"color": 1})
    with pytest.raises(ValueError):
        FinetuneConfig(scheduler="linear")
    with pytest.raises(ValueError, match="uncertain"):
        FinetuneConfig(uncertain="positive")
    with pytest.raises(ValueError, match="fine-tuning keeps the last weights"):
        finetune_detector(None, None, [], "unused", FinetuneConfig(select_every=1))


def test_negatives_are_only_labels_searched_for_and_not_found(tmp_path):
    images = _pseudo_images(tmp_path)
    datasets, parents = training_datasets(images, tmp_path, "queried")
    assert [d.name for d in datasets] == ["src0", "src1"] and parents == {"red disc": "disc", "red square": "square"}
    sample = datasets[1][0]
    heads = {i.category.split()[-1] for i in sample.instances}
    assert set(sample.negatives) == {"square", "disc", "ring"} - heads - {"ring"}  # "ring" never has a box
    assert training_datasets(images, tmp_path, "all")[0][0][0].negatives is None
    assert training_datasets(images, tmp_path, "none")[0][1][0].negatives == ()
    _, processor = build_tiny_detector(WORDS, SMALL)
    collator = PseudoLabelCollator(processor, datasets[0].categories, 10, parents, 0.5)
    only = PseudoSample(sample.image_path, 64, 48, (Instance((1, 1, 10, 10), "square"),), negatives=("disc",))
    for k in range(10):
        caption = collator([only], np.random.default_rng(k))["captions"][0]
        assert set(caption.replace(" .", ",").rstrip(",").split(", ")) <= {"square", "disc"}
    unrestricted = PseudoSample(sample.image_path, 64, 48, only.instances, negatives=None)
    captions = {collator([unrestricted], np.random.default_rng(k))["captions"][0] for k in range(10)}
    assert any("red" in c for c in captions)


def _config(**kw):
    base = dict(epochs=2, batches_per_epoch=2, batch_size=2, lr=1.0e-3, max_labels=4, checkpoint_every=1, device="cpu",
                grad_clip=1.0, threads=1)
    return FinetuneConfig(**(base | kw))


def _model():
    torch.manual_seed(0)
    return build_tiny_detector(WORDS, SMALL)


def test_finetuning_trains_the_unfrozen_parts_and_saves_a_loadable_detector(tmp_path):
    images = _pseudo_images(tmp_path / "img")
    datasets, parents = training_datasets(images, tmp_path / "img")
    model, processor = _model()
    frozen = {k: v.clone() for k, v in model.model.backbone.conv_encoder.model.state_dict().items()}
    head = model.bbox_embed[0].layers[-1].weight.detach().clone()
    result = finetune_detector(model, processor, datasets, tmp_path / "out", _config(scheduler="cosine"), parents,
                               progress=False, live_dir=tmp_path / "live")
    assert result.steps == 4 and len(result.history) == 4
    assert result.history[-1]["lr"] < result.history[0]["lr"]  # cosine decays every step
    after = model.model.backbone.conv_encoder.model.state_dict()
    assert all(torch.equal(frozen[k], after[k]) for k in frozen if after[k].dtype.is_floating_point)
    assert not torch.equal(head, model.bbox_embed[0].layers[-1].weight)
    info = json.loads((tmp_path / "out" / "training.json").read_text())
    assert info["complete"] and info["datasets"] == {"src0": 3, "src1": 3}
    assert (tmp_path / "live" / "metrics.json").exists() or any((tmp_path / "live").rglob("*.tsv"))
    from valor_lib.grounding.mining import load_detector

    detector = load_detector(f"groundingdino-hf:{tmp_path / 'out'}", device="cpu")
    with Image.open(tmp_path / "img" / images[0].file) as im:
        assert isinstance(detector.detect(im.convert("RGB"), "square, disc"), list)
    again = finetune_detector(*_model(), datasets, tmp_path / "out", _config(scheduler="cosine"), parents, False)
    assert again.steps == 4 and again.resumed_from == 4  # a finished run is read back, not redone


def test_an_interrupted_run_resumes_exactly(tmp_path):
    images = _pseudo_images(tmp_path / "img")
    datasets, parents = training_datasets(images, tmp_path / "img")
    full = finetune_detector(*_model(), datasets, tmp_path / "full", _config(), parents, progress=False)

    class Stop(Exception):
        pass

    model, processor = _model()
    calls = {"n": 0}
    original = model.forward

    def forward(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise Stop
        return original(*args, **kwargs)

    model.forward = forward
    with pytest.raises(Stop):
        finetune_detector(model, processor, datasets, tmp_path / "cut", _config(), parents, progress=False)
    assert (tmp_path / "cut" / "checkpoint" / "state.pt").exists()
    resumed = finetune_detector(*_model(), datasets, tmp_path / "cut", _config(), parents, progress=False)
    assert resumed.resumed_from == 3 and resumed.steps == 4
    assert [round(h["loss"], 5) for h in resumed.history] == [round(h["loss"], 5) for h in full.history]
    with pytest.raises(ValueError, match="different config"):
        finetune_detector(*_model(), datasets, tmp_path / "full", _config(lr=1.0), parents, progress=False)


def test_train_on_exported_pseudo_labels_with_a_box_budget(tmp_path):
    images = _pseudo_images(tmp_path / "img")
    export_pseudo_labels(images, tmp_path / "labels")
    model, processor = _model()
    model.save_pretrained(tmp_path / "base")
    processor.save_pretrained(tmp_path / "base")
    result = train_on_pseudo_labels(f"groundingdino-hf:{tmp_path / 'base'}", tmp_path / "labels", tmp_path / "img",
                                    tmp_path / "tuned", _config(epochs=1), max_boxes=3, progress=False)
    info = json.loads((tmp_path / "tuned" / "training.json").read_text())
    assert result.steps == 2 and sum(info["datasets"].values()) == 2  # two images reach 3 boxes
    assert len(read_pseudo_images(tmp_path / "labels")) == 6


def test_training_with_uncertain_boxes_as_ignore_regions(tmp_path, monkeypatch):
    """The exported unsettled boxes reach the loss as ignore regions (the loss's effect: tests/detection)."""
    from dataclasses import replace

    from valor_lib.detection.loss import PerImageGroundingLoss

    images = [replace(im, uncertain=(tuple(float(v) for v in im.boxes[0]["bbox"]),))
              for im in _pseudo_images(tmp_path / "img")]
    export_pseudo_labels(images, tmp_path / "labels")
    model, processor = _model()
    model.save_pretrained(tmp_path / "base")
    processor.save_pretrained(tmp_path / "base")
    seen = []
    scored = PerImageGroundingLoss.scored_queries

    def spy(outputs, targets, indices):
        seen.append([len(t.get("ignore_boxes", ())) for t in targets])
        return scored(outputs, targets, indices)

    monkeypatch.setattr(PerImageGroundingLoss, "scored_queries", staticmethod(spy))
    for mode in ("background", "ignore"):
        seen.clear()
        result = train_on_pseudo_labels(f"groundingdino-hf:{tmp_path / 'base'}", tmp_path / "labels",
                                        tmp_path / "img", tmp_path / mode, _config(epochs=1, uncertain=mode),
                                        progress=False)
        assert result.steps == 2 and all(np.isfinite(h["loss"]) for h in result.history)
        # background: no target carries regions; ignore: every image of every batch and head carries its one box
        assert seen == [] if mode == "background" else (seen and all(n == [1, 1] for n in seen))


@pytest.mark.slow
def test_runs_side_by_side_match_runs_in_turn(tmp_path):
    from valor_lib.grounding.train import train_runs

    export_pseudo_labels(_pseudo_images(tmp_path / "img"), tmp_path / "labels")
    model, processor = _model()
    model.save_pretrained(tmp_path / "base")
    processor.save_pretrained(tmp_path / "base")

    def jobs(folder):
        return {s: {"detector": f"groundingdino-hf:{tmp_path / 'base'}", "labels_dir": tmp_path / "labels",
                    "image_root": tmp_path / "img", "out_dir": tmp_path / folder / str(s),
                    "config": _config(epochs=1, seed=s), "progress": False} for s in (0, 1)}

    apart = train_runs(jobs("apart"), workers=2)
    in_turn = train_runs(jobs("in-turn"), workers=1)
    assert set(apart) == {0, 1}
    for s in (0, 1):
        assert [h["loss"] for h in apart[s].history] == pytest.approx([h["loss"] for h in in_turn[s].history])
    assert apart[0].history != apart[1].history


@pytest.mark.slow
def test_command_line_uses_the_stage_params(tmp_path, monkeypatch):
    from pathlib import Path

    from valor_lib.grounding.train import main

    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "params.yaml").write_text((repo / "params.yaml").read_text())
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    labels = tmp_path / "results" / "pseudo_labelling"
    export_pseudo_labels(_pseudo_images(labels / "images"), labels / "verified")
    model, processor = _model()
    model.save_pretrained(tmp_path / "data/toy/models/detector-base")
    processor.save_pretrained(tmp_path / "data/toy/models/detector-base")
    monkeypatch.setenv("VALOR_ROOT", str(tmp_path))
    result = main(["--out", str(tmp_path / "cli"), "--seed", "1"])
    info = json.loads((tmp_path / "cli" / "training.json").read_text())
    configured = yaml.safe_load((repo / "params.yaml").read_text())["detector_finetuning"]["training"]
    assert info["config"]["seed"] == 1 and info["config"]["negatives"] == configured["negatives"]
    assert result.steps == info["steps"]


def test_without_negatives_a_caption_names_only_the_images_own_labels(tmp_path):
    images = _pseudo_images(tmp_path)
    datasets, parents = training_datasets(images, tmp_path, "none")
    sample = datasets[1][0]
    _, processor = build_tiny_detector(WORDS, SMALL)
    collator = PseudoLabelCollator(processor, datasets[0].categories, 10, parents, 0.5)
    own = {i.category for i in sample.instances} | {i.category.split()[-1] for i in sample.instances}
    for k in range(10):
        caption = collator([sample], np.random.default_rng(k))["captions"][0]
        assert set(caption.replace(" .", ",").rstrip(",").split(", ")) <= own
