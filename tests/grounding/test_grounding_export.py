"""Pseudo-label export (one record per image, ODVG + COCO + label map), selection, and annotations."""

import json

import pytest
from PIL import Image

from valor_lib.detection.data import load_coco, load_odvg
from valor_lib.grounding.annotations import (
    AnnotationError,
    _parse_missed,
    annotation_id,
    check_annotation,
    precision_table,
    read_annotations,
    write_annotations,
)
from valor_lib.grounding.export import (
    PseudoImage,
    export_pseudo_labels,
    label_parents,
    read_pseudo_images,
    select_images,
)


def _images(root):
    (root / "a").mkdir(parents=True, exist_ok=True)
    out = []
    for i, boxes in enumerate([
        [([1, 1, 10, 10], "chair"), ([20, 5, 30, 25], "red chair"), ([2, 30, 12, 40], "table")],
        [([5, 5, 15, 15], "lamp")],
        [],
        [([3, 3, 9, 9], "chair"), ([11, 11, 19, 19], "chair")],
    ]):
        name = f"a/img{i}.png"
        Image.new("RGB", (40, 48)).save(root / name)
        out.append(PseudoImage(name, "tallyqa" if i % 2 == 0 else "vsr", name, 40, 48,
                               tuple({"bbox": b, "label": label, "score": 0.5} for b, label in boxes),
                               ("chair", "sofa")))
    return out


def test_export_writes_one_record_per_image_in_odvg_and_coco(tmp_path):
    images = _images(tmp_path / "img")
    summary = export_pseudo_labels(images, tmp_path / "out")
    assert summary.to_dict()["total_images"] == 3 and summary.boxes == {"tallyqa": 3, "vsr": 3}
    label_map = json.loads((tmp_path / "out" / "label_map.json").read_text())
    assert label_map == {"0": "chair", "1": "lamp", "2": "red chair", "3": "table"}
    tally = load_odvg(tmp_path / "out" / "odvg" / "tallyqa.jsonl", tmp_path / "img", tmp_path / "out" / "label_map.json")
    assert len(tally) == 1 and [i.category for i in tally[0].instances] == ["chair", "red chair", "table"]
    coco = load_coco(tmp_path / "out" / "coco.json", tmp_path / "img")
    assert [len(s.instances) for s in coco] == [3, 1, 2] and coco.categories == ["chair", "lamp", "red chair", "table"]
    assert coco[0].instances[2].bbox == (2.0, 30.0, 12.0, 40.0)
    back = read_pseudo_images(tmp_path / "out")
    assert sorted(im.id for im in back) == ["a/img0.png", "a/img1.png", "a/img3.png"]
    assert {im.queried for im in back} == {("chair", "sofa")}
    from valor_lib.grounding.train import training_datasets

    datasets, _ = training_datasets(back, tmp_path / "img")
    assert [d.name for d in datasets] == ["tallyqa", "vsr"] and [len(d) for d in datasets] == [1, 2]


def test_uncertain_boxes_travel_with_their_image_and_become_ignore_regions(tmp_path):
    from dataclasses import replace

    from valor_lib.grounding.export import pseudo_images
    from valor_lib.grounding.train import training_datasets

    candidates = {"a/img0.png": {"file": "a/img0.png", "source": "vsr", "width": 40, "height": 48,
                                 "queried": ["chair"],
                                 "boxes": [{"box_id": f"b{k}", "bbox": [4 * k, 4 * k, 4 * k + 9, 4 * k + 9],
                                            "label": "chair", "score": 0.3} for k in range(3)] +
                                           [{"box_id": "dup", "bbox": [0, 0, 9, 8], "label": "chair", "score": 0.2}]}}
    made = pseudo_images(candidates, {"a/img0.png": ["b0"]}, uncertain={"a/img0.png": ["b2", "dup"]})
    # the second box on the kept object is a duplicate, not an unknown object
    assert made[0].uncertain == ((8, 8, 17, 17),) and len(made[0].boxes) == 1
    assert pseudo_images(candidates, {"a/img0.png": ["b0"]})[0].uncertain == ()
    images = _images(tmp_path / "img")
    images[1] = replace(images[1], uncertain=((1.0, 2.0, 8.0, 9.0),))
    export_pseudo_labels(images, tmp_path / "out")
    back = {im.id: im for im in read_pseudo_images(tmp_path / "out")}
    assert back["a/img1.png"].uncertain == ((1.0, 2.0, 8.0, 9.0),) and back["a/img0.png"].uncertain == ()
    vsr = {d.name: d for d in training_datasets(list(back.values()), tmp_path / "img", uncertain="ignore")[0]}["vsr"]
    assert [s.ignore_regions for s in vsr] == [((1.0, 2.0, 8.0, 9.0),), ()]
    plain = {d.name: d for d in training_datasets(list(back.values()), tmp_path / "img")[0]}["vsr"]
    assert all(s.ignore_regions == () for s in plain)  # the default treats them as background


def test_export_refuses_duplicate_image_ids_and_drops_stale_sources(tmp_path):
    images = _images(tmp_path / "img")
    with pytest.raises(ValueError):
        export_pseudo_labels([images[0], images[0]], tmp_path / "out")
    export_pseudo_labels(images, tmp_path / "out")
    export_pseudo_labels([images[1]], tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "odvg").iterdir()) == ["vsr.jsonl"]


def test_label_parents_use_trailing_words():
    assert label_parents(["chair", "red chair", "dark red chair", "table", "light"]) == {
        "dark red chair": "red chair", "red chair": "chair"}


def test_selection_reaches_the_box_budget_with_whole_images(tmp_path):
    images = _images(tmp_path / "img")
    assert [im.id for im in select_images(images, None)] == ["a/img0.png", "a/img1.png", "a/img3.png"]
    chosen = select_images(images, 2, seed=1)
    assert 2 <= sum(len(im.boxes) for im in chosen) <= 4 and all(im.boxes for im in chosen)
    assert select_images(images, 2, seed=1) == chosen


def test_annotations_round_trip_and_give_precision_per_stage(tmp_path):
    records = [
        {"id": annotation_id("x", "coarse"), "image_id": "x", "stage": "coarse", "annotator": "t",
         "boxes": [{"box_id": "x#0", "bbox": [0, 0, 1, 1], "label": "a", "verdict": "tp"},
                   {"box_id": "x#1", "bbox": [0, 0, 1, 1], "label": "a", "verdict": "fp"}], "missed": []},
        {"id": annotation_id("x", "dedup"), "image_id": "x", "stage": "dedup", "annotator": "t",
         "boxes": [{"box_id": "x#0", "bbox": [0, 0, 1, 1], "label": "a", "verdict": "tp"}],
         "missed": [{"bbox": [2, 2, 3, 3], "label": "a"}]},
    ]
    write_annotations(records, tmp_path / "ann.jsonl")
    back = read_annotations(tmp_path / "ann.jsonl")
    assert set(back) == {"x|coarse", "x|dedup"}
    table = {r["stage"]: r for r in precision_table(back.values(), ["coarse", "crop", "dedup"])}
    assert table["coarse"]["precision"] == 0.5 and table["dedup"]["precision"] == 1.0
    assert table["dedup"]["recall"] == 0.5 and table["crop"]["precision"] is None
    with pytest.raises(AnnotationError):
        check_annotation({**records[0], "boxes": [{"box_id": "x#0", "verdict": "maybe"}]})
    assert _parse_missed("1,2,3,4,red chair; 5,6,7,8,a, b") == [
        {"bbox": [1, 2, 3, 4], "label": "red chair"}, {"bbox": [5, 6, 7, 8], "label": "a,b"}]
    with pytest.raises(AnnotationError):
        _parse_missed("1,2,3,chair")


def test_annotation_widget_builds_and_saves(tmp_path):
    pytest.importorskip("ipywidgets")
    from valor_lib.grounding.annotations import AnnotationWidget

    image = Image.new("RGB", (40, 30))
    boxes = [{"box_id": "i#0", "bbox": [1, 1, 10, 10], "label": "chair", "score": 0.4}]
    widget = AnnotationWidget([("i", "dedup", image, boxes), ("j", "dedup", image, [])], tmp_path / "a.jsonl")
    widget.toggles[0].value = "fp"
    widget.missed.value = "20,5,30,25,lamp"
    widget._move(1)
    saved = read_annotations(tmp_path / "a.jsonl")["i|dedup"]
    assert saved["boxes"][0]["verdict"] == "fp" and saved["missed"] == [{"bbox": [20, 5, 30, 25], "label": "lamp"}]
    assert widget.status.value.endswith("after <i>dedup</i>")
