"""The toy detector: a tiny GroundingDINO pretrained on the toy world's source domain.

The source split has plain floors and no posters, rugs or shadows; its boxes are the "web data" our
detector is pretrained on. Captions name boxes either by category ("chair") or by colour and category
("red chair"), with absent categories and colours as negatives, so colour-conditioned prompts work. The
target domain (textured floors, posters of objects, rugs, shadows) is never seen, which is what leaves the
detector over-predicting there at low thresholds: the gap VLM-verified pseudo-labels are meant to close.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from valor_lib.detection.data import DetectionDataset, DetectionSample, Instance, load_coco
from valor_lib.detection.inference import box_iou
from valor_lib.detection.tiny import TinyDetectorConfig, build_tiny_detector
from valor_lib.detection.train import TrainConfig, TrainResult, train_detector
from valor_lib.toyworld import store
from valor_lib.toyworld.config import ToyDetectorParams
from valor_lib.toyworld.vocab import CATEGORIES, COLOR_SYNONYMS, COLORS

# Words a program may plausibly put in a prompt beyond our categories and colours (whole tokens in the vocab).
EXTRA_WORDS = ("object", "objects", "thing", "furniture", "item", "poster", "picture", "rug", "carpet", "shadow",
               "floor", "wall", "person", "people", "the", "a", "of", "and", "small", "large", "big", "tall", "dark",
               "light", "left", "right", "front", "behind", "near", "far", "on", "in", "top", "bottom")


def toy_words() -> list[str]:
    """Every whole word of the toy detector's vocabulary."""
    words = [w for cat in CATEGORIES.values() for w in (cat.name, cat.plural, *cat.synonyms)]
    words += [*COLORS, *(s for syns in COLOR_SYNONYMS.values() for s in syns), *EXTRA_WORDS]
    return list(dict.fromkeys(words))


def colour_phrase(color: str, category: str) -> str:
    return f"{color} {category}"


def colour_parents() -> dict[str, str]:
    """``{"red chair": "chair", ...}``: every colour phrase under its bare category name."""
    return {colour_phrase(c, k): k for k in CATEGORIES for c in COLORS}


def source_dataset(split: str = "source", world: Path | None = None) -> DetectionDataset:
    """A split of the toy world in ``world`` (default ``data/toy``) as a detection dataset whose boxes are named
    by colour and category ("red chair").

    Boxes come from the split's scene records (the same boxes as its COCO file, plus each object's colour).
    They stand in for human annotations of the source domain; nothing that predicts reads them."""
    root = world or store.world_dir()
    scenes = store.load_scenes(split, root)
    folder = root / "images" / split
    samples = []
    for scene in scenes.values():
        instances = tuple(Instance(tuple(o.bbox), colour_phrase(o.color, o.category)) for o in scene.objects
                          if o.bbox[2] > o.bbox[0] and o.bbox[3] > o.bbox[1])
        samples.append(DetectionSample(folder / f"{scene.id}.png", 256, 192, instances, None))
    return DetectionDataset(split, samples, list(colour_parents()), {"scenes": split})


def category_view(dataset: DetectionDataset) -> DetectionDataset:
    """The same boxes named by bare category (for COCO evaluation over the 8 categories)."""
    parents = colour_parents()
    samples = [DetectionSample(s.image_path, s.width, s.height,
                               tuple(Instance(i.bbox, parents.get(i.category, i.category)) for i in s.instances),
                               s.image_id) for s in dataset.samples]
    return DetectionDataset(dataset.name, samples, list(CATEGORIES), dict(dataset.source))


def target_dataset() -> DetectionDataset:
    """The held-out target-domain detection set (``detection/val.json``), bare category names."""
    root = store.world_dir()
    return load_coco(root / "detection" / "val.json", root / "images" / "detection-val", "detection-val")


def split_source(holdout: int, world: Path | None = None) -> tuple[DetectionDataset, DetectionDataset]:
    """(training part, held-out last ``holdout`` images) of the source split of ``world`` (default ``data/toy``)."""
    full = source_dataset(world=world)
    if holdout >= len(full):
        raise ValueError(f"holdout_images={holdout} leaves no source images to train on ({len(full)} in total)")
    n = len(full) - holdout
    return full.subset(range(n), "source-train"), full.subset(range(n, len(full)), "source-heldout")


def tiny_config_from(params: ToyDetectorParams) -> TinyDetectorConfig:
    return TinyDetectorConfig(d_model=params.d_model, num_queries=params.num_queries,
                              encoder_layers=params.encoder_layers, decoder_layers=params.decoder_layers)


def train_config_from(params: ToyDetectorParams, seed: int, device: str = "cpu") -> TrainConfig:
    return TrainConfig(epochs=params.epochs, batch_size=params.batch_size, lr=params.lr,
                       weight_decay=params.weight_decay, adam_beta2=params.adam_beta2,
                       backbone_lr_scale=params.backbone_lr_scale, scheduler=params.scheduler,
                       lr_step_epochs=params.lr_step_epochs, lr_gamma=params.lr_gamma,
                       warmup_steps=params.warmup_steps, select_every=params.select_every,
                       grad_clip=params.grad_clip, freeze_backbone=False, freeze_text=False,
                       max_labels=params.max_labels, p_coarse=params.p_coarse, hflip=params.hflip,
                       checkpoint_every=100, seed=seed, device=device, threads=params.threads)


def pretrain_toy_detector(params: ToyDetectorParams, out_dir: str | os.PathLike, seed: int = 0,
                          device: str = "cpu", progress: bool = True, world: Path | None = None) -> TrainResult:
    """Build the tiny GroundingDINO and pretrain it on the source split of ``world`` (default ``data/toy``);
    saved to ``out_dir``. With ``params.select_every``, the epoch with the best mAP on the held-out source images
    is kept."""
    import torch

    from valor_lib.detection.evaluate import evaluate_map
    from valor_lib.detection.inference import GroundingDinoDetector

    torch.manual_seed(seed)
    train, held = split_source(params.holdout_images, world)
    source_val = category_view(held)
    model, processor = build_tiny_detector(toy_words(), tiny_config_from(params))

    def source_map(trained: Any) -> float:
        detector = GroundingDinoDetector(trained, processor, device=device)
        return evaluate_map(detector, source_val, progress=False)["mAP"]

    return train_detector(model, processor, [train], out_dir, train_config_from(params, seed, device),
                          parents=colour_parents(), progress=progress, validate=source_map)


def evaluate_toy_detector(model_dir: str | os.PathLike, params: ToyDetectorParams, answering: Sequence[float],
                          answering_nms: float | None = None, device: str = "cpu",
                          progress: bool = False) -> dict[str, Any]:
    """The pretrained toy detector's numbers: COCO mAP on held-out source images (with ``select_every``, the
    same images chose the kept epoch) and on the target-domain detection set (never used to choose), precision /
    recall on the target at the ``answering`` thresholds with ``answering_nms`` (``gd_detect``'s, from
    ``common.gd_thresholds`` / ``common.gd_nms_iou``; one call per category name, as programs call it) and at the
    mining thresholds (all names in one prompt, no NMS), false positives on posters / rugs / shadows, inference
    time per image, and precision / recall / F1 and the call scores on the target at every pair of
    ``params.answering_grid``, called as ``gd_detect`` is (``operating_points``), with the best pair
    (``chosen_thresholds``, by ``call_score``): held-out detection data, not benchmarks, picks the answering
    thresholds."""
    import time

    from PIL import Image

    from valor_lib.detection.evaluate import (
        best_operating_point,
        match_detections,
        precision_recall,
        predict,
        predict_sweep,
        score_operating_points,
        threshold_grid,
    )
    from valor_lib.detection.inference import GroundingDinoDetector, Thresholds

    detector = GroundingDinoDetector.from_pretrained(model_dir, device=device)
    _, held = split_source(params.holdout_images)
    source, target = category_view(held), target_dataset()
    out: dict[str, Any] = {"map": {"source": coco_map_of(detector, source, progress),
                                   "target": coco_map_of(detector, target, progress)}, "target": {}}
    grid = threshold_grid(params.answering_grid)
    answer = Thresholds(*answering)
    sweep = grid if answer in grid else [*grid, answer]  # the answering pair's detections come from the same pass
    swept = predict_sweep(detector, target, sweep, nms_iou=answering_nms, progress=progress, prompt_each=True)
    mining = Thresholds(*params.mining_thresholds)
    for name, thresholds, nms_iou, dets in (
            ("inference", answer, answering_nms, swept[sweep.index(answer)]),
            ("mining", mining, None, predict(detector, target, mining, nms_iou=None, progress=progress))):
        hits = [match_detections([i.bbox for i in s.instances], [i.category for i in s.instances], d)
                for s, d in zip(target.samples, dets, strict=True)]
        on_distractors = distractor_false_positives(target, dets, hits)
        out["target"][name] = {"thresholds": [thresholds.box, thresholds.text], "nms_iou": nms_iou,
                               **precision_recall(target, dets), "fp_on_posters": on_distractors.poster,
                               "fp_on_rugs": on_distractors.rug, "fp_on_shadows": on_distractors.shadow}
    out["operating_points"] = score_operating_points(target, grid, swept[:len(grid)])
    chosen = best_operating_point(out["operating_points"])
    out["chosen_thresholds"] = [chosen.box, chosen.text]
    images = []
    for sample in target.samples[:16]:
        with Image.open(sample.image_path) as im:
            images.append(im.convert("RGB"))
    prompt = ", ".join(target.categories)
    detector.detect(images[0], prompt)  # warm-up
    start = time.perf_counter()
    for image in images:
        detector.detect(image, prompt)
    out["ms_per_image"] = round(1000 * (time.perf_counter() - start) / len(images), 1)
    return out


def coco_map_of(detector: Any, dataset: DetectionDataset, progress: bool = False) -> dict[str, float]:
    """mAP and AP50 of a detector on a dataset."""
    from valor_lib.detection.evaluate import evaluate_map

    result = evaluate_map(detector, dataset, progress=progress)
    return {"mAP": result["mAP"], "AP50": result["AP50"]}


@dataclass(frozen=True)
class DistractorHits:
    """False positives that land on hard negatives (IoU >= 0.5 with a poster, rug or shadow)."""

    poster: int
    rug: int
    shadow: int
    false_positives: int


def distractor_false_positives(dataset: DetectionDataset, detections: Sequence[Sequence[dict[str, Any]]],
                               hits: Sequence[Sequence[bool]], iou: float = 0.5) -> DistractorHits:
    """Count unmatched detections that overlap a distractor, by kind (scoring only: reads scene truth)."""
    import torch

    scenes = store.load_scenes("detection-val")
    counts = {"poster": 0, "rug": 0, "shadow": 0}
    fps = 0
    for sample, dets, hit in zip(dataset.samples, detections, hits, strict=True):
        scene = scenes[sample.image_path.stem]
        wrong = [d for d, h in zip(dets, hit, strict=True) if not h]
        fps += len(wrong)
        if not wrong or not scene.distractors:
            continue
        overlap = box_iou(torch.tensor([d["bbox"] for d in wrong], dtype=torch.float32),
                          torch.tensor([x.bbox for x in scene.distractors], dtype=torch.float32))
        for i in range(len(wrong)):
            j = int(overlap[i].argmax())
            if overlap[i, j] >= iou:
                counts[scene.distractors[j].kind] += 1
    return DistractorHits(counts["poster"], counts["rug"], counts["shadow"], fps)
