"""One forward pass scored at many thresholds, and the choice of gd_detect's thresholds by how programs' calls
fare."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from valor_lib.detection.data import DetectionDataset, DetectionSample, Instance, load_coco
from valor_lib.detection.evaluate import (
    best_operating_point,
    call_scores,
    operating_points,
    precision_recall,
    predict,
    predict_sweep,
    score_operating_points,
    threshold_grid,
)
from valor_lib.detection.inference import GroundingDinoDetector, Thresholds


def test_a_sweep_returns_what_each_threshold_alone_returns(shapes_coco, tiny_detector):
    detector = GroundingDinoDetector(*tiny_detector, device="cpu", batch_size=2)
    coco = load_coco(*shapes_coco)
    images = [Image.open(s.image_path) for s in list(coco)[:3]]
    prompts = ["square, disc", "square", "red disc, blue square"]
    sweep = [Thresholds(0.0, 0.0), Thresholds(0.3, 0.2), Thresholds(0.5, 0.5)]
    swept = detector.detect_sweep(images, prompts, sweep, nms_iou=0.5)
    assert len(swept) == 3 and all(len(per_image) == 3 for per_image in swept)
    for thresholds, found in zip(sweep, swept, strict=True):
        assert found == detector.detect_batch(images, prompts, thresholds, nms_iou=0.5)
    assert sum(map(len, swept[0])) >= sum(map(len, swept[1])) >= sum(map(len, swept[2]))
    assert predict_sweep(detector, coco, sweep[:2], progress=False)[1] == predict(detector, coco, sweep[1],
                                                                                     progress=False)
    with pytest.raises(ValueError, match="no thresholds"):
        detector.detect_sweep(images, prompts, [])


def test_operating_points_score_every_pair_of_the_grid(shapes_coco, tiny_detector):
    detector = GroundingDinoDetector(*tiny_detector, device="cpu")
    coco = load_coco(*shapes_coco)
    grid = threshold_grid([0.3, 0.0, 0.1])
    assert grid == [Thresholds(0.0, 0.0), Thresholds(0.1, 0.0), Thresholds(0.1, 0.1), Thresholds(0.3, 0.0),
                    Thresholds(0.3, 0.1), Thresholds(0.3, 0.3)]
    rows = operating_points(detector, coco, grid, nms_iou=0.5, progress=False)
    assert [(r["box"], r["text"]) for r in rows] == [(t.box, t.text) for t in grid]
    alone = precision_recall(coco, predict(detector, coco, grid[4], nms_iou=0.5, progress=False, prompt_each=True))
    assert {k: rows[4][k] for k in alone} == alone
    calls = call_scores(coco, predict(detector, coco, grid[4], nms_iou=0.5, progress=False, prompt_each=True))
    assert {k: rows[4][k] for k in calls} == calls
    assert calls["calls_present"] + calls["calls_absent"] == len(coco) * len(coco.categories)
    for r in rows:
        p, q = r["precision"], r["recall"]
        assert r["f1"] == pytest.approx(2 * p * q / (p + q) if p + q else 0.0, abs=1e-4)
    swept = predict_sweep(detector, coco, grid, nms_iou=0.5, progress=False, prompt_each=True)
    assert score_operating_points(coco, grid, swept) == rows  # detections made once, scored without the model
    with pytest.raises(ValueError, match="2 detection sets for 6 threshold pairs"):
        score_operating_points(coco, grid, swept[:2])


def test_prompt_each_calls_the_detector_once_per_category_name(shapes_coco, tiny_detector):
    detector = GroundingDinoDetector(*tiny_detector, device="cpu", batch_size=3)
    coco = load_coco(*shapes_coco)
    loose = Thresholds(0.0, 0.0)
    each = predict(detector, coco, loose, batch_size=2, nms_iou=0.5, progress=False, prompt_each=True)
    for sample, found in zip(coco.samples, each, strict=True):
        with Image.open(sample.image_path) as im:
            image = im.convert("RGB")
        calls = [detector.detect(image, name, loose, nms_iou=0.5) for name in coco.categories]
        assert found == [d for call in calls for d in call]
    joint = predict(detector, coco, loose, nms_iou=0.5, progress=False)
    assert sum(map(len, each)) != sum(map(len, joint))  # one caption per name scores phrases differently


def _box(x: float, label: str, score: float) -> dict:
    return {"bbox": [x, 0.0, x + 10.0, 10.0], "label": label, "score": score}


def test_call_scores_judge_each_name_s_call_as_a_program_uses_it():
    two_cups = DetectionSample(Path("a.png"), 100, 100, (Instance((0, 0, 10, 10), "cup"), Instance((50, 0, 60, 10), "cup")))
    one_chair = DetectionSample(Path("b.png"), 100, 100, (Instance((20, 0, 30, 10), "chair"),))
    data = DetectionDataset("toy", [two_cups, one_chair], ["cup", "chair", "lamp"])
    detections = [
        [_box(50, "cup", 0.9), _box(0, "cup", 0.4), _box(80, "chair", 0.5)],  # cup: top hit, count right; chair absent
        [_box(70, "chair", 0.8), _box(20, "chair", 0.3)],  # chair: its top box misses, one box too many; cup/lamp empty
    ]
    scores = call_scores(data, detections)
    assert scores == {"top_box_hit": 0.5, "count_exact": 0.5, "call_score": 0.5, "empty_when_absent": 0.75,
                      "calls_present": 2, "calls_absent": 4}
    assert call_scores(data, [[], []])["call_score"] == 0.0  # nothing found: nothing a program can use
    assert call_scores(data, [[], []])["empty_when_absent"] == 1.0


def test_the_best_operating_point_has_the_best_call_score_then_f1_then_precision_then_the_lowest_text():
    rows = [{"box": 0.2, "text": 0.1, "call_score": 0.4, "f1": 0.9, "precision": 0.9},
            {"box": 0.3, "text": 0.2, "call_score": 0.5, "f1": 0.5, "precision": 0.5},
            {"box": 0.4, "text": 0.2, "call_score": 0.5, "f1": 0.6, "precision": 0.4},
            {"box": 0.45, "text": 0.2, "call_score": 0.5, "f1": 0.6, "precision": 0.7}]
    assert best_operating_point(rows) == Thresholds(0.45, 0.2)  # box-level F1 alone would take 0.2 / 0.1
    same = [{"box": 0.25, "text": t, "call_score": 0.5, "f1": 0.6, "precision": 0.7} for t in (0.25, 0.1, 0.2)]
    assert best_operating_point(same) == Thresholds(0.25, 0.1)  # text thresholds the data cannot tell apart
    tie = [{"box": 0.2, "text": 0.1, "call_score": 0.5, "f1": 0.6, "precision": 0.7},
           {"box": 0.25, "text": 0.1, "call_score": 0.5, "f1": 0.6, "precision": 0.7}]
    assert best_operating_point(tie) == Thresholds(0.25, 0.1)
    with pytest.raises(ValueError, match="no operating points"):
        best_operating_point([])


def test_the_operating_point_figure_marks_the_best_and_the_configured_pair():
    from valor_lib.detection.figures import operating_point_figure

    rows = [{"box": b, "text": t, "f1": b - t / 2, "precision": b, "recall": 1 - b, "call_score": b, "top_box_hit": b,
             "count_exact": 1 - b, "empty_when_absent": b}
            for b, t in [(0.1, 0.1), (0.2, 0.1), (0.2, 0.2), (0.3, 0.1), (0.3, 0.2), (0.3, 0.3)]]
    fig = operating_point_figure(rows, [0.3, 0.1], [0.2, 0.1])
    heat, curves = fig.axes[0], fig.axes[1]
    assert heat.images[0].get_array().shape == (3, 3)  # text x box, NaN where text > box
    assert [t.get_text() for t in heat.get_legend().get_texts()] == ["best call score", "configured"]
    assert [line.get_label() for line in curves.lines] == ["precision", "recall", "f1", "top_box_hit", "count_exact",
                                                           "empty_when_absent"]
    assert list(curves.lines[0].get_xdata()) == [0.1, 0.2, 0.3]
