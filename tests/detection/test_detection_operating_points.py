"""One forward pass scored at many thresholds, and the choice of gd_detect's thresholds by F1."""

from __future__ import annotations

import pytest
from PIL import Image

from valor_lib.detection.data import load_coco
from valor_lib.detection.evaluate import (
    best_operating_point,
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


def test_the_best_operating_point_has_the_highest_f1_then_precision_then_the_lowest_text_threshold():
    rows = [{"box": 0.2, "text": 0.1, "f1": 0.5, "precision": 0.4},
            {"box": 0.3, "text": 0.2, "f1": 0.6, "precision": 0.5},
            {"box": 0.4, "text": 0.2, "f1": 0.6, "precision": 0.7},
            {"box": 0.1, "text": 0.1, "f1": 0.3, "precision": 0.9}]
    assert best_operating_point(rows) == Thresholds(0.4, 0.2)
    same = [{"box": 0.25, "text": t, "f1": 0.6, "precision": 0.7} for t in (0.25, 0.1, 0.2)]
    assert best_operating_point(same) == Thresholds(0.25, 0.1)  # text thresholds the data cannot tell apart
    tie = [{"box": 0.2, "text": 0.1, "f1": 0.6, "precision": 0.7}, {"box": 0.25, "text": 0.1, "f1": 0.6,
                                                                   "precision": 0.7}]
    assert best_operating_point(tie) == Thresholds(0.25, 0.1)
    with pytest.raises(ValueError, match="no operating points"):
        best_operating_point([])


def test_the_operating_point_figure_marks_the_best_and_the_configured_pair():
    from valor_lib.detection.figures import operating_point_figure

    rows = [{"box": b, "text": t, "f1": b - t / 2, "precision": b, "recall": 1 - b}
            for b, t in [(0.1, 0.1), (0.2, 0.1), (0.2, 0.2), (0.3, 0.1), (0.3, 0.2), (0.3, 0.3)]]
    fig = operating_point_figure(rows, [0.3, 0.1], [0.2, 0.1])
    heat, curves = fig.axes[0], fig.axes[1]
    assert heat.images[0].get_array().shape == (3, 3)  # text x box, NaN where text > box
    assert [t.get_text() for t in heat.get_legend().get_texts()] == ["best F1", "configured"]
    assert [line.get_label() for line in curves.lines] == ["precision", "recall", "f1"]
    assert list(curves.lines[0].get_xdata()) == [0.1, 0.2, 0.3]
