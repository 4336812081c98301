"""Captions, COCO/ODVG datasets, caption sampling with negatives and parents, the balanced sampler."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from valor_lib.detection.captions import (
    caption_from_phrases,
    chunk_phrases,
    normalize_phrase,
    phrase_spans,
    split_prompt,
)
from valor_lib.detection.collate import CaptionSampler, GroundingCollator, boxes_to_cxcywh
from valor_lib.detection.data import (
    DatasetFormatError,
    DetectionDataset,
    DetectionSample,
    Instance,
    clean_box,
    load_coco,
    load_odvg,
    write_odvg,
)
from valor_lib.detection.sampler import BalancedBatchSampler


def test_prompts_become_captions_and_spans():
    assert split_prompt(" Red Chair, table,, table. , lamp?") == ["red chair", "table", "lamp"]
    assert normalize_phrase("coffee  table.") == "coffee table"
    assert caption_from_phrases(["red chair", "table"]) == "red chair . table ."
    # [CLS] red chair . table . [SEP] [PAD]
    assert phrase_spans([101, 7, 8, 1012, 9, 1012, 102, 0]) == [(1, 3), (4, 5)]
    assert chunk_phrases(["a", "b c", "d"], [1, 2, 1], max_tokens=7) == [["a", "b c"], ["d"]]
    with pytest.raises(ValueError, match="more than a caption"):
        chunk_phrases(["long"], [9], max_tokens=8)
    with pytest.raises(ValueError):
        caption_from_phrases([])


def test_clean_box_clips_and_rejects():
    assert clean_box([-5, 2, 30, 60], 64, 48) == (0.0, 2.0, 30.0, 48.0)
    assert clean_box([10, 10, 10, 20], 64, 48) is None
    assert clean_box([float("nan"), 0, 5, 5], 64, 48) is None
    assert clean_box([1, 2, 3], 64, 48) is None


def test_coco_and_odvg_round_trip(shapes_coco, tmp_path):
    path, images = shapes_coco
    coco = load_coco(path, images)
    assert len(coco) == 6 and coco.categories == ["square", "disc"]
    assert coco[0].image_path.exists() and coco[0].image_id == 1 and coco[0].instances
    write_odvg(coco, tmp_path / "train.jsonl", tmp_path / "labels.json")
    record = json.loads((tmp_path / "train.jsonl").read_text().splitlines()[0])
    assert set(record) == {"filename", "height", "width", "detection"}
    inst = record["detection"]["instances"][0]
    assert set(inst) == {"bbox", "category", "label"} and coco.categories[inst["label"]] == inst["category"]
    assert json.loads((tmp_path / "labels.json").read_text()) == {"0": "square", "1": "disc"}
    odvg = load_odvg(tmp_path / "train.jsonl", images, tmp_path / "labels.json")
    assert [s.instances for s in odvg] == [s.instances for s in coco]


def test_bad_odvg_records_name_the_line(tmp_path):
    (tmp_path / "l.json").write_text('{"0": "cat"}')
    (tmp_path / "d.jsonl").write_text('{"filename": "a.png", "height": 4, "width": 4, "detection": {"instances": '
                                      '[{"bbox": [0, 0, 2, 2], "category": "cat", "label": 3}]}}\n')
    with pytest.raises(DatasetFormatError, match=r"d.jsonl:1"):
        load_odvg(tmp_path / "d.jsonl", tmp_path, tmp_path / "l.json")
    (tmp_path / "l.json").write_text('{"1": "cat"}')
    with pytest.raises(DatasetFormatError, match="indices"):
        load_odvg(tmp_path / "d.jsonl", tmp_path, tmp_path / "l.json")


FINE = ["red chair", "blue chair", "red table", "blue table", "red lamp"]
PARENTS = {"red chair": "chair", "blue chair": "chair", "red table": "table", "blue table": "table", "red lamp": "lamp"}


@pytest.mark.parametrize("p_coarse", [0.0, 1.0, 0.5])
def test_caption_never_holds_a_present_group_under_both_names(p_coarse):
    sampler = CaptionSampler(FINE, max_labels=6, parents=PARENTS, p_coarse=p_coarse)
    rng = np.random.default_rng(0)
    for _ in range(50):
        plan = sampler.plan(["red chair", "red chair", "blue table"], rng)
        assert len(plan.phrases) == len(set(plan.phrases)) <= 6
        names = [plan.phrases[i] for i in plan.class_labels]
        assert names[0] == names[1] and names[0] in ("red chair", "chair")
        if names[0] == "chair":  # coarse: no colour phrase of chairs anywhere
            assert not {"red chair", "blue chair"} & set(plan.phrases)
        else:  # fine: the bare name would make the box both positive and negative
            assert "chair" not in plan.phrases
        if p_coarse == 0.0:
            assert names == ["red chair", "red chair", "blue table"]
        if p_coarse == 1.0:
            assert names == ["chair", "chair", "table"]
    negatives = set()
    for _ in range(50):
        plan = sampler.plan(["red chair"], rng)
        negatives |= set(plan.phrases) - {plan.phrases[plan.class_labels[0]]}
    assert "lamp" in negatives and ("blue chair" in negatives or p_coarse == 1.0)


def test_caption_plan_does_not_depend_on_string_hashing():
    code = ("import numpy as np; from valor_lib.detection.collate import CaptionSampler; "
            f"s = CaptionSampler({FINE!r}, 6, {PARENTS!r}, 0.5); rng = np.random.default_rng(3); "
            "print([s.plan(['red chair', 'blue table', 'red lamp'], rng).phrases for _ in range(20)])")
    plans = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(plans) == 1


def test_caption_fits_the_text_length():
    counts = {n: 2 for n in FINE} | {"chair": 1, "table": 1, "lamp": 1}
    sampler = CaptionSampler(FINE, max_labels=8, parents=PARENTS, p_coarse=0.0, token_counts=counts, max_tokens=11)
    plan = sampler.plan(["red chair"], np.random.default_rng(1))
    assert 2 + sum(counts[p] + 1 for p in plan.phrases) <= 11
    assert plan.phrases[plan.class_labels[0]] == "red chair"


def test_collator_builds_model_inputs(shapes_coco, tiny_detector):
    _, processor = tiny_detector
    path, images = shapes_coco
    coco = load_coco(path, images)
    collate = GroundingCollator(processor, coco.categories, max_labels=2, hflip=1.0)
    batch = collate(list(coco)[:3], np.random.default_rng(0))
    assert batch["pixel_values"].shape == (3, 3, 48, 64) and batch["input_ids"].shape[0] == 3
    for sample, labels, caption in zip(list(coco)[:3], batch["labels"], batch["captions"], strict=True):
        phrases = caption.rstrip(" .").split(" . ")
        assert [phrases[i] for i in labels["class_labels"].tolist()] == [i.category for i in sample.instances]
        x1, y1, x2, y2 = sample.instances[0].bbox  # flipped horizontally
        expected = boxes_to_cxcywh([[64 - x2, y1, 64 - x1, y2]], 64, 48)[0]
        assert labels["boxes"][0].tolist() == pytest.approx(expected.tolist())


def test_balanced_sampler_is_uniform_over_datasets_and_deterministic():
    sampler = BalancedBatchSampler([1000, 10], batch_size=20, batches_per_epoch=200, seed=3)
    epoch = sampler.epoch(0)
    assert epoch == sampler.epoch(0) and epoch != sampler.epoch(1)
    draws = [d for batch in epoch for d, _ in batch]
    assert 0.45 < draws.count(1) / len(draws) < 0.55
    small = [i for batch in epoch for d, i in batch if d == 1]
    assert sorted(small[:10]) == list(range(10))  # each pass over a dataset uses every item once
    with pytest.raises(ValueError):
        BalancedBatchSampler([5, 0], batch_size=2)


def test_dataset_subset_keeps_the_label_map():
    ds = DetectionDataset("d", [DetectionSample(__file__, 4, 4, (Instance((0, 0, 1, 1), "a"),))] * 3, ["a", "b"])
    sub = ds.subset([0, 2], "s")
    assert len(sub) == 2 and sub.categories == ["a", "b"] and sub.name == "s"
