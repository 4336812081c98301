"""Each detector on the held-out detection set: mAP, precision at the answering pair, its own answering pair."""

from __future__ import annotations

import pytest

from valor_lib.detection.data import load_coco
from valor_lib.detection.evaluate import best_operating_point, evaluate_map, operating_points, threshold_grid
from valor_lib.detection.inference import GroundingDinoDetector
from valor_lib.grounding.heldout import own_threshold_rows, score_detector, score_detectors

GRID = [0.0, 0.05, 0.1]  # a randomly initialised detector scores low


@pytest.fixture
def heldout(toy_repo):
    return toy_repo / "data" / "toy" / "detection" / "val.json", toy_repo / "data" / "toy" / "images" / "detection-val"


def test_each_detector_gets_its_numbers_and_the_pair_its_calls_fare_best_at(heldout, detector_dir):
    spec = f"groundingdino-hf:{detector_dir}"
    scored = score_detectors({"pretrained": spec, "verified-seed1": spec}, *heldout, answering=[0.05, 0.0],
                             nms_iou=0.5, grid=GRID, precision_for=["pretrained"], device="cpu")
    first, other = scored["pretrained"], scored["verified-seed1"]
    assert {"mAP", "AP50", "precision", "recall"} <= set(first["detection"])
    assert "precision" not in other["detection"] and other["detection"]["mAP"] == first["detection"]["mAP"]
    detector = GroundingDinoDetector.from_pretrained(detector_dir, device="cpu")
    dataset = load_coco(*heldout, "heldout")
    assert first["detection"]["mAP"] == evaluate_map(detector, dataset, progress=False)["mAP"]
    rows = operating_points(detector, dataset, threshold_grid(GRID), nms_iou=0.5, progress=False)
    assert first["operating_points"] == rows  # one name per call, gd_nms_iou applied, as programs call it
    best = best_operating_point(rows)
    assert first["own_thresholds"] == [best.box, best.text]
    table = own_threshold_rows(scored)
    assert [r["detector"] for r in table] == ["pretrained", "verified-seed1"]
    assert [table[0]["box"], table[0]["text"]] == first["own_thresholds"]
    assert table[0]["call_score"] == max(r["call_score"] for r in rows)
    chosen = next(r for r in rows if (r["box"], r["text"]) == (best.box, best.text))
    assert (table[0]["call_precision"], table[0]["call_recall"]) == (chosen["precision"], chosen["recall"])


def test_scoring_leaves_the_callers_thread_count_as_it_was(heldout, detector_dir):
    import torch

    before = torch.get_num_threads()
    score_detector(f"groundingdino-hf:{detector_dir}", *heldout, answering=[0.05, 0.0], nms_iou=None,
                   precision_at_answering=False, device="cpu", threads=1 if before > 1 else 2)
    assert torch.get_num_threads() == before


def test_without_a_grid_no_own_pair_is_chosen(heldout, detector_dir):
    scored = score_detector(f"groundingdino-hf:{detector_dir}", *heldout, answering=[0.05, 0.0], nms_iou=None,
                            precision_at_answering=False, device="cpu")
    assert set(scored) == {"detection"} and "precision" not in scored["detection"]
    assert own_threshold_rows({"pretrained": scored}) == []
