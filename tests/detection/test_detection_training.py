"""The per-image grounding loss, the training loop (freezing, checkpoints, resume), inference and evaluation."""

import itertools
import json

import numpy as np
import pytest
import torch
from transformers import GroundingDinoForObjectDetection
from transformers.loss.loss_grounding_dino import GroundingDinoHungarianMatcher, GroundingDinoImageLoss

from valor_lib.detection.data import load_coco
from valor_lib.detection.evaluate import coco_map, evaluate_map, match_detections, precision_recall, predict
from valor_lib.detection.inference import (
    CaptionScores,
    GroundingDinoDetector,
    RawDetections,
    Thresholds,
    match_phrases,
    nms,
)
from valor_lib.detection.loss import PerImageGroundingLoss, install_grounding_loss
from valor_lib.detection.sampler import BalancedBatchSampler
from valor_lib.detection.train import (
    TrainConfig,
    batch_schedule,
    build_optimizer,
    lr_factor,
    lr_schedule,
    set_trainable,
    train_detector,
)


def _outputs_and_targets():
    """Three images whose captions differ in length and layout; one matched query each."""
    seq = 8
    label_maps = (
        torch.tensor([[0, 1, 1, 0, 0, 0, 0, 0]]),  # "a b ."
        torch.tensor([[0, 0, 1, 0, 0, 0, 0, 0]]),  # "[CLS] . c ."
        torch.tensor([[0, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 0]]),  # "e . f . g h ."
    )
    outputs = {"logits": torch.zeros(3, 4, seq), "label_maps": label_maps}
    targets = [{"class_labels": torch.tensor([0])}, {"class_labels": torch.tensor([0])},
               {"class_labels": torch.tensor([0])}]
    indices = [(torch.tensor([0]), torch.tensor([0]))] * 3
    return outputs, targets, indices


def test_targets_come_from_each_images_own_label_map():
    outputs, targets, indices = _outputs_and_targets()
    matcher = GroundingDinoHungarianMatcher(class_cost=1, bbox_cost=5, giou_cost=2)
    ours = PerImageGroundingLoss(matcher, 0.25, ["labels"])._get_target_classes_one_hot(outputs, targets, indices)
    for b, target in enumerate(targets):
        assert torch.equal(ours[b, 0], outputs["label_maps"][b][target["class_labels"][0]])
        assert ours[b, 1:].sum() == 0
    upstream = GroundingDinoImageLoss(matcher, 0.25, ["labels"])._get_target_classes_one_hot(outputs, targets, indices)
    # the transformers criterion trains image 2 towards tokens of image 1's caption: the bug fixed here
    assert not torch.equal(upstream[2, 0], outputs["label_maps"][2][0])


def _batch(shapes_coco, processor, n=3):
    from valor_lib.detection.collate import GroundingCollator

    coco = load_coco(*shapes_coco)
    batch = GroundingCollator(processor, coco.categories, 2)(list(coco)[:n], np.random.default_rng(0))
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}, batch["labels"]


def test_encoder_proposals_get_gradients_only_with_our_loss(shapes_coco, tiny_detector):
    model, processor = tiny_detector
    inputs, labels = _batch(shapes_coco, processor)
    proposal_heads = (model.model.encoder_output_bbox_embed.layers[-1].weight, model.model.enc_output.weight)

    model(**inputs, labels=labels).loss.backward()  # transformers' own loss
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in proposal_heads)
    model.zero_grad()

    criterion = install_grounding_loss(model)
    out = model(**inputs, labels=labels)
    assert torch.isfinite(out.loss)
    assert {"loss_ce", "loss_bbox", "loss_giou", "loss_ce_enc", "loss_giou_enc", "loss_ce_0"} <= set(out.loss_dict)
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in proposal_heads)
    criterion.remove()
    assert not hasattr(model, "_loss_function")


def test_our_loss_equals_upstream_where_upstream_is_right(shapes_coco, tiny_detector):
    """Decoder heads of a single image: nothing to fix there, so both losses agree."""
    model, processor = tiny_detector
    inputs, labels = _batch(shapes_coco, processor, n=1)
    model.eval()
    upstream = model(**inputs, labels=labels).loss_dict
    criterion = install_grounding_loss(model)
    ours = model(**inputs, labels=labels).loss_dict
    criterion.remove()
    for key in ("loss_ce", "loss_bbox", "loss_giou", "loss_ce_0", "loss_giou_0"):
        assert float(ours[key].detach()) == pytest.approx(float(upstream[key].detach()), rel=1e-5)


def _ignore_case():
    """One image, three queries: query 0 matched; query 1 sits on an ignore region, query 2 elsewhere."""
    outputs = {"logits": torch.full((1, 3, 4), 0.5), "text_mask": torch.ones(1, 1, 4, dtype=torch.bool),
               "label_maps": (torch.tensor([[0, 1, 0, 0]]),),
               "pred_boxes": torch.tensor([[[0.2, 0.2, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2], [0.5, 0.2, 0.1, 0.1]]])}
    target = {"class_labels": torch.tensor([0]), "boxes": torch.tensor([[0.2, 0.2, 0.2, 0.2]])}
    return outputs, target, [(torch.tensor([0]), torch.tensor([0]))]


def test_unmatched_predictions_on_ignore_regions_get_no_classification_loss():
    outputs, target, indices = _ignore_case()
    criterion = PerImageGroundingLoss(GroundingDinoHungarianMatcher(class_cost=1, bbox_cost=5, giou_cost=2), 0.25,
                                      ["labels"])
    plain = criterion.loss_labels(outputs, [target], indices, 1)["loss_ce"]
    region = {**target, "ignore_boxes": torch.tensor([[0.71, 0.69, 0.2, 0.2]])}
    assert criterion.scored_queries(outputs, [region], indices).tolist() == [[True, False, True]]
    ignored = criterion.loss_labels(outputs, [region], indices, 1)["loss_ce"]
    # every unmatched query contributes the same here (equal logits, all-zero targets): one of two drops out
    unmatched_each = (plain - criterion.loss_labels({**outputs, "logits": outputs["logits"][:, :1]}, [target],
                                                    indices, 1)["loss_ce"]) / 2
    assert float(ignored) == pytest.approx(float(plain - unmatched_each), rel=1e-6)
    # a matched query keeps its loss even on an ignore region; an empty region list changes nothing
    on_match = {**target, "ignore_boxes": torch.tensor([[0.2, 0.2, 0.2, 0.2]])}
    assert criterion.scored_queries(outputs, [on_match], indices).all()
    empty = {**target, "ignore_boxes": torch.zeros(0, 4)}
    assert float(criterion.loss_labels(outputs, [empty], indices, 1)["loss_ce"]) == float(plain)


def test_collator_flips_ignore_regions_with_the_image(shapes_coco, tiny_detector):
    from dataclasses import replace

    from valor_lib.detection.collate import GroundingCollator

    _, processor = tiny_detector
    coco = load_coco(*shapes_coco)
    sample = replace(coco[0], ignore_regions=((4.0, 8.0, 20.0, 24.0),))
    kept = GroundingCollator(processor, coco.categories, 2)([coco[0], sample], np.random.default_rng(0))
    assert "ignore_boxes" not in kept["labels"][0]
    assert torch.allclose(kept["labels"][1]["ignore_boxes"], torch.tensor([[12 / 64, 16 / 48, 16 / 64, 16 / 48]]))
    flipped = GroundingCollator(processor, coco.categories, 2, hflip=1.0)([sample], np.random.default_rng(0))
    assert torch.allclose(flipped["labels"][0]["ignore_boxes"], torch.tensor([[52 / 64, 16 / 48, 16 / 64, 16 / 48]]))


def test_model_trains_with_ignore_regions(shapes_coco, tiny_detector):
    model, processor = tiny_detector
    inputs, labels = _batch(shapes_coco, processor, n=2)
    install_grounding_loss(model)
    model.eval()
    first = model(**inputs, labels=labels)
    plain = first.loss_dict
    # every query's own box as an ignore region: all unmatched queries drop out of the classification loss
    everywhere = [{**t, "ignore_boxes": boxes.detach()} for t, boxes in zip(labels, first.pred_boxes, strict=True)]
    out = model(**inputs, labels=everywhere)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    # boxes are untouched; classification loses the unmatched queries that cover the image
    assert float(out.loss_dict["loss_bbox"].detach()) == pytest.approx(float(plain["loss_bbox"].detach()))
    assert float(out.loss_dict["loss_ce"].detach()) < float(plain["loss_ce"].detach())


def test_freezing_switches_backbone_and_text_encoder(tiny_detector):
    model, _ = tiny_detector
    set_trainable(model, freeze_backbone=True, freeze_text=True)
    assert not any(p.requires_grad for p in model.model.backbone.conv_encoder.model.parameters())
    assert not any(p.requires_grad for p in model.model.text_backbone.parameters())
    assert all(p.requires_grad for p in model.model.decoder.parameters())
    set_trainable(model, freeze_backbone=False, freeze_text=False)
    assert all(p.requires_grad for p in model.parameters())


def test_the_backbone_gets_its_own_learning_rate_and_frozen_parts_none(tiny_detector):
    model, _ = tiny_detector
    backbone = {id(p) for p in model.model.backbone.conv_encoder.model.parameters()}
    set_trainable(model, freeze_backbone=False, freeze_text=True)
    optimizer = build_optimizer(model, TrainConfig(lr=1.0e-3, backbone_lr_scale=0.1, adam_beta2=0.95))
    rest, slow = optimizer.param_groups
    assert rest["lr"] == 1.0e-3 and slow["lr"] == pytest.approx(1.0e-4)
    assert {id(p) for p in slow["params"]} == backbone and not backbone & {id(p) for p in rest["params"]}
    assert all(g["betas"] == (0.9, 0.95) for g in optimizer.param_groups)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == trainable
    set_trainable(model, freeze_backbone=True, freeze_text=True)
    assert len(build_optimizer(model, TrainConfig()).param_groups) == 1  # a frozen backbone leaves no empty group
    set_trainable(model, freeze_backbone=False, freeze_text=False)
    with pytest.raises(ValueError, match="adam_beta2"):
        TrainConfig(adam_beta2=1.0)
    with pytest.raises(ValueError, match="backbone_lr_scale"):
        TrainConfig(backbone_lr_scale=0)


CFG = TrainConfig(epochs=2, batches_per_epoch=2, batch_size=2, lr=1.0e-4, freeze_backbone=False, freeze_text=False,
                  max_labels=2, checkpoint_every=1, device="cpu", grad_clip=1.0)


def _train(make_tiny, tmp, shapes_coco, config=CFG, progress=False, validate=None):
    model, processor = make_tiny()
    coco = load_coco(*shapes_coco)
    return train_detector(model, processor, [coco.subset(range(3), "a"), coco.subset(range(3, 6), "b")], tmp,
                          config, progress=progress, validate=validate)


@pytest.mark.slow
def test_training_saves_a_loadable_detector_and_resumes_exactly(shapes_coco, tmp_path, monkeypatch, make_tiny):
    full = _train(make_tiny, tmp_path / "full", shapes_coco)
    assert full.steps == 4 and len(full.history) == 4
    assert (tmp_path / "full" / "config.json").exists() and not (tmp_path / "full" / "checkpoint").exists()
    info = json.loads((tmp_path / "full" / "training.json").read_text())
    assert info["complete"] and info["datasets"] == {"a": 3, "b": 3}
    again = _train(make_tiny, tmp_path / "full", shapes_coco)  # finished: nothing to redo
    assert again.history == full.history
    detector = GroundingDinoDetector.from_pretrained(tmp_path / "full", device="cpu")
    assert isinstance(detector.model, GroundingDinoForObjectDetection)

    # interrupt after step 3 (a checkpoint is written every step), then resume
    import valor_lib.detection.train as train_mod

    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def flaky_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", flaky_step)
    with pytest.raises(KeyboardInterrupt):
        _train(make_tiny, tmp_path / "resumed", shapes_coco)
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    state = torch.load(tmp_path / "resumed" / train_mod.CHECKPOINT_DIR / train_mod.STATE_FILE, weights_only=False)
    assert state["step"] == 3
    resumed = _train(make_tiny, tmp_path / "resumed", shapes_coco)
    assert resumed.resumed_from == 3
    assert [round(h["loss"], 4) for h in resumed.history] == [round(h["loss"], 4) for h in full.history]
    with pytest.raises(ValueError, match="different config"):
        _train(make_tiny, tmp_path / "resumed", shapes_coco, TrainConfig(**{**CFG.__dict__, "lr": 1.0e-3}))


@pytest.mark.slow
def test_selection_keeps_the_best_validated_epoch_and_resumes(shapes_coco, tmp_path, monkeypatch, make_tiny):
    scores = iter([0.1, 0.5, 0.5, 0.2])  # epochs 1, 2, 3, 4: the first of the two best is kept
    seen = []

    def validate(model):
        assert not model.training  # validated in eval mode, training resumes after
        seen.append(1)
        return next(scores)

    select = TrainConfig(**{**CFG.__dict__, "epochs": 4, "select_every": 1, "checkpoint_every": 100})
    picked = _train(make_tiny, tmp_path / "picked", shapes_coco, select, validate=validate)
    assert picked.selected_epoch == 2 and [v["epoch"] for v in picked.validation] == [1, 2, 3, 4]
    assert [v["score"] for v in picked.validation] == [0.1, 0.5, 0.5, 0.2] and len(seen) == 4
    two = _train(make_tiny, tmp_path / "two", shapes_coco, TrainConfig(**{**CFG.__dict__, "epochs": 2}))
    saved = GroundingDinoForObjectDetection.from_pretrained(tmp_path / "picked").state_dict()
    reference = GroundingDinoForObjectDetection.from_pretrained(tmp_path / "two").state_dict()
    assert all(torch.equal(saved[k], reference[k]) for k in reference)  # epoch 2's weights, not the last
    assert two.selected_epoch is None and two.validation == []
    info = json.loads((tmp_path / "picked" / "training.json").read_text())
    assert info["selected_epoch"] == 2 and len(info["validation"]) == 4

    every_other = TrainConfig(**{**select.__dict__, "epochs": 3, "select_every": 2})
    real_step, calls = torch.optim.AdamW.step, {"n": 0}

    def flaky_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # in epoch 3, after epoch 2's check
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    scores = iter([0.3, 0.4])
    monkeypatch.setattr(torch.optim.AdamW, "step", flaky_step)
    with pytest.raises(KeyboardInterrupt):
        _train(make_tiny, tmp_path / "resumed", shapes_coco, every_other, validate=validate)
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    resumed = _train(make_tiny, tmp_path / "resumed", shapes_coco, every_other, validate=validate)
    assert resumed.resumed_from == 4 and [v["epoch"] for v in resumed.validation] == [2, 3]  # and the last
    assert resumed.selected_epoch == 3
    with pytest.raises(ValueError, match="select_every needs a validate function"):
        _train(make_tiny, tmp_path / "none", shapes_coco, select)
    with pytest.raises(ValueError, match="select_every must be >= 0"):
        TrainConfig(select_every=-1)


def test_the_learning_rate_warms_up_then_steps_or_follows_a_cosine():
    step = TrainConfig(lr_step_epochs=2, lr_gamma=0.1, warmup_steps=4)
    assert [lr_factor(s, step, per_epoch=5, total=30) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert [lr_factor(s, step, 5, 30) for s in (4, 9, 10, 19, 20, 29)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    cosine = TrainConfig(scheduler="cosine", warmup_steps=2)
    factors = [lr_factor(s, cosine, per_epoch=5, total=12) for s in range(13)]
    assert factors[:3] == [0.5, 1.0, 1.0] and factors[7] == pytest.approx(0.5) and factors[12] == pytest.approx(0.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[2:]))
    assert lr_factor(0, TrainConfig(scheduler="cosine"), 5, 10) == 1.0  # no warm-up: the full rate at once
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = lr_schedule(optimizer, cosine, 5, 12)
    seen = []
    for _ in range(12):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx(factors[:12])
    with pytest.raises(ValueError, match="scheduler must be one of"):
        TrainConfig(scheduler="linear")
    with pytest.raises(ValueError, match="warmup_steps must be >= 0"):
        TrainConfig(warmup_steps=-1)


def test_label_filter_drops_boxes_whose_phrase_was_not_asked():
    # caption "[CLS] red chair . table . [SEP]": spans (1, 3) and (4, 5)
    spans = [(1, 3), (4, 5)]
    probs = torch.zeros(4, 7)
    probs[0, 1:3] = 0.9  # red chair, both tokens
    probs[1, 2] = 0.9  # only "chair": "red chair" not matched -> dropped
    probs[2, 4] = 0.5  # table
    probs[3, 1:3] = torch.tensor([0.3, 0.3])  # red chair but weak
    boxes = torch.tensor([[0, 0, 10, 10], [5, 5, 20, 20], [1, 1, 8, 9], [2, 2, 4, 4]], dtype=torch.float32)
    dets = match_phrases(probs, spans, ["red chair", "table"], boxes, Thresholds(0.35, 0.25))
    assert [(d["label"], d["score"]) for d in dets] == [("red chair", 0.9), ("table", 0.5)]
    low = match_phrases(probs, spans, ["red chair", "table"], boxes, Thresholds(0.1, 0.1))
    assert [d["label"] for d in low] == ["red chair", "table", "red chair"]
    kept = CaptionScores.of(probs, spans, ["red chair", "table"], boxes)  # phrase columns only, thresholds later
    assert kept.probs.shape == (4, 3) and kept.spans == ((0, 2), (2, 3))
    for thresholds in (Thresholds(0.35, 0.25), Thresholds(0.1, 0.1), Thresholds(0.0, 0.0)):
        alone = match_phrases(probs, spans, ["red chair", "table"], boxes, thresholds)
        assert kept.at(thresholds) == alone
        raw = RawDetections((kept, kept))
        assert raw.at(thresholds) == sorted(alone + alone, key=lambda d: -d["score"])
        assert raw.at(thresholds, nms_iou=0.5) == nms(alone + alone, 0.5)


def test_nms_per_label_and_class_agnostic():
    dets = [{"bbox": [0, 0, 10, 10], "label": "a", "score": 0.9}, {"bbox": [1, 1, 10, 10], "label": "a", "score": 0.8},
            {"bbox": [0, 0, 10, 10], "label": "b", "score": 0.7}]
    assert [d["score"] for d in nms(dets, 0.5)] == [0.9, 0.7]
    assert [d["score"] for d in nms(dets, 0.5, class_agnostic=True)] == [0.9]


def test_detector_runs_batched_with_chunked_captions(shapes_coco, tiny_detector):
    model, processor = tiny_detector
    detector = GroundingDinoDetector(model, processor, device="cpu", batch_size=2)
    coco = load_coco(*shapes_coco)
    from PIL import Image

    images = [Image.open(s.image_path) for s in list(coco)[:3]]
    many = "square, disc, red square, blue disc, red thing, blue thing, thing, red disc, blue square"
    out = detector.detect_batch(images, [many, "square", "disc"], Thresholds(0.0, 0.0))
    assert len(out) == 3
    asked = set(many.split(", "))
    assert {d["label"] for d in out[0]} <= asked and len({d["label"] for d in out[0]}) > 1
    for d in out[0]:
        x1, y1, x2, y2 = d["bbox"]
        assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 48
    assert {d["label"] for d in out[1]} <= {"square"}
    with pytest.raises(ValueError, match="names no object"):
        detector.detect(images[0], " , ")


def test_coco_map_is_one_for_ground_truth_and_zero_for_misses(shapes_coco):
    coco = load_coco(*shapes_coco)
    perfect = [[{"bbox": list(i.bbox), "label": i.category, "score": 1.0} for i in s.instances] for s in coco]
    assert coco_map(coco, perfect)["mAP"] == pytest.approx(1.0)
    shifted = [[{"bbox": [i.bbox[0] + 30, i.bbox[1], i.bbox[2] + 30, i.bbox[3]], "label": i.category, "score": 1.0}
                for i in s.instances] for s in coco]
    assert coco_map(coco, shifted)["AP50"] < 0.5
    pr = precision_recall(coco, perfect)
    assert pr["precision"] == pr["recall"] == 1.0 and pr["fp"] == 0
    wrong_label = [[{**d, "label": "disc" if d["label"] == "square" else "square"} for d in dets] for dets in perfect]
    assert precision_recall(coco, wrong_label)["tp"] == 0
    assert match_detections([[0, 0, 10, 10]], ["a"], [{"bbox": [0, 0, 10, 10], "label": "a", "score": 0.5},
                                                      {"bbox": [0, 0, 10, 9], "label": "a", "score": 0.9}]) == [False, True]


def test_evaluate_map_runs_a_detector_end_to_end(shapes_coco, tiny_detector):
    model, processor = tiny_detector
    detector = GroundingDinoDetector(model, processor, device="cpu")
    coco = load_coco(*shapes_coco)
    result = evaluate_map(detector, coco, progress=False)
    assert set(result) >= {"mAP", "AP50"} and 0.0 <= result["mAP"] <= 1.0
    dets = predict(detector, coco, Thresholds(0.0, 0.0), progress=False)
    assert len(dets) == len(coco) and all(d["label"] in coco.categories for ds in dets for d in ds)


def test_evaluate_checkpoint_from_a_folder(shapes_coco, tiny_detector, tmp_path):
    from valor_lib.detection.evaluate import evaluate_checkpoint

    model, processor = tiny_detector
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    result = evaluate_checkpoint(tmp_path, *shapes_coco, device="cpu", progress=False)
    assert result["images"] == 6 and 0.0 <= result["AP50"] <= 1.0
    assert {"box0.35_text0.25", "box0.1_text0.1"} <= set(result)
    assert result["box0.1_text0.1"]["detections_per_image"] >= result["box0.35_text0.25"]["detections_per_image"]


def test_batch_schedule_resumed_mid_epoch_continues_the_full_schedule():
    sampler = BalancedBatchSampler([5, 3], batch_size=2, batches_per_epoch=3, seed=4)
    full = list(batch_schedule(sampler, 0, 7))
    assert [(e, i) for e, i, _ in full] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]
    assert list(batch_schedule(sampler, 4, 7)) == full[4:]
    assert full[0][2] == sampler.epoch(0)[0] and full[3][2] == sampler.epoch(1)[0]
