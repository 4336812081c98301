"""On a small generated toy world: mining sources and exclusions, the toy VLM verifier (classifier, protocol,
error rate), and the claim that each verification stage raises pseudo-label precision."""

import json

import numpy as np
import pytest

from valor_lib.clients import ChatClient, ChatRequest, user
from valor_lib.grounding.annotations import precision_table
from valor_lib.grounding.prompts import coarse_prompt, crop_prompt, parse_drop, parse_match
from valor_lib.grounding.sources import (
    ExclusionParams,
    MiningSourceError,
    MiningSourceParams,
    load_sources,
)
from valor_lib.grounding.toy_annotations import annotate, annotate_stages, decision_accuracy
from valor_lib.grounding.toy_verifier import ToyVlmVerifier, understand
from valor_lib.grounding.verify import VerifierSettings, verify_candidates
from valor_lib.grounding.views import NumberedBox, draw_overlay, verification_crop
from valor_lib.toyworld import store

B = "data/toy/benchmarks"
SOURCES = [MiningSourceParams(name="omni3d-bench", format="omni3d", path=B, skip=4),
           MiningSourceParams(name="tallyqa", format="grit", path=f"{B}/tallyqa/tallyqa_train.jsonl", images=f"{B}/tallyqa"),
           MiningSourceParams(name="gqa", format="grit", path=f"{B}/gqa/gqa_train.jsonl", images=f"{B}/gqa", limit=2),
           MiningSourceParams(name="vsr", format="vsr", path=f"{B}/vsr/train.jsonl", images=f"{B}/vsr/images")]


def test_sources_load_and_exclusions_apply(toy_world):
    mined = load_sources(SOURCES, ExclusionParams(coco=["data/toy/detection/val.json"]), ["data/toy/images/detection-val"])
    assert mined.by_source() == {"omni3d-bench": 6, "tallyqa": 4, "gqa": 2, "vsr": 4}
    assert all(item.image.load().size == (256, 192) for item in mined.items)
    vsr = [i for i in mined.items if i.source == "vsr"]
    assert all(i.question.startswith("Is ") and i.question.endswith("?") for i in vsr)
    omni = [i for i in mined.items if i.source == "omni3d-bench"]
    assert omni[0].id == "omni3d-bench/00004" and len({i.image_key for i in omni}) < len(omni)  # shared images
    name = mined.items[-1].image_name
    fewer = load_sources(SOURCES, ExclusionParams(names=[name]))
    assert fewer.excluded["vsr"] == 1 and len(fewer.items) == len(mined.items) - 1


def test_the_heldout_split_can_never_be_mined(toy_world, tmp_path):
    scenes = list(store.load_scenes("detection-val"))
    rows = tmp_path / "q.jsonl"
    rows.write_text("".join(json.dumps({"question": "How many chairs are there?", "image": f"{s}.png"}) + "\n"
                            for s in scenes))
    leaking = MiningSourceParams(name="generated", format="queries", path=str(rows), images="data/toy/images/detection-val")
    with pytest.raises(MiningSourceError, match="held-out"):
        load_sources([leaking], ExclusionParams(), ["data/toy/images/detection-val"])
    excluded = load_sources([leaking], ExclusionParams(coco=["data/toy/detection/val.json"]))
    assert excluded.items == [] and excluded.excluded == {"generated": len(scenes)}
    with pytest.raises(MiningSourceError, match="distinct"):
        load_sources([SOURCES[1], SOURCES[1]], ExclusionParams())


def test_label_understanding():
    assert understand("red chairs").category == "chair" and understand("red chairs").color == "red"
    assert understand("crate").category == "box" and understand("object").known and understand("object").category is None
    assert not understand("giraffe").known and understand("violet couch").color == "purple"


@pytest.mark.slow
def test_classifier_learns_objects_from_the_knowledge_split(toy_world, verifier_model):
    report = json.loads((verifier_model / "config.json").read_text())["report"]
    held = report["heldout"]
    assert held["crops"] > 100 and held["category_accuracy"] > 0.6 and held["color_accuracy"] > 0.6
    assert held["background_accuracy"] > 0.7


def _candidates(split, seed=0):
    """Over-predicted candidates built around scene truth: two jittered boxes per object (a duplicate), a box
    with a wrong label, boxes on distractors labelled as what posters show, background boxes."""
    rng = np.random.default_rng(seed)
    records = {}
    for scene in store.load_scenes(split).values():
        boxes = []
        for obj in scene.objects:
            for _ in range(2):
                jitter = rng.normal(0, 0.04, 4) * np.array([obj.bbox[2] - obj.bbox[0], obj.bbox[3] - obj.bbox[1]] * 2)
                boxes.append((obj.category, list(np.asarray(obj.bbox) + jitter)))
            boxes.append(("vase" if obj.category != "vase" else "sofa", list(obj.bbox)))
        for dis in scene.distractors:
            boxes.append((dis.mimics or "box", list(dis.bbox)))
        boxes.append(("chair", [5.0, 5.0, 40.0, 30.0]))
        boxes = [(label, [min(max(v, 0), 255) for v in b]) for label, b in boxes]
        boxes = [(label, b) for label, b in boxes if b[2] - b[0] > 2 and b[3] - b[1] > 2]
        name = f"{scene.id}.png"
        records[name] = {"id": name, "file": name, "image_name": name, "width": 256, "height": 192,
                         "queried": sorted({label for label, _ in boxes}),
                         "boxes": [{"box_id": f"{name}#{k}", "bbox": [round(float(v), 2) for v in b], "label": label,
                                    "score": round(1 - k / 100, 3)} for k, (label, b) in enumerate(boxes)]}
    return records


@pytest.mark.slow
def test_each_stage_raises_precision_with_the_toy_verifier(toy_world, verifier_model, tmp_path):
    candidates = _candidates("tallyqa-train") | _candidates("gqa-train") | _candidates("vsr-train")
    image_root = toy_world / "data" / "toy" / "images"
    for name, record in candidates.items():
        record["file"] = f"{store.split_of(name[:-4])}/{name}"
    client = ChatClient("toy:vlm-verifier", role="vlm_verifier",
                        brain_options={"model": str(verifier_model), "error_rate": 0.0})
    v = verify_candidates(client, candidates, image_root, tmp_path / "v", VerifierSettings(overlay_long_side=512),
                          progress=False)
    table = {r["stage"]: r for r in precision_table(annotate_stages(candidates, v.survivors, list(candidates)),
                                                    ["detections", "coarse", "crop", "dedup"])}
    p = [table[s]["precision"] for s in ("detections", "coarse", "crop", "dedup")]
    assert p[0] < p[1] <= p[2] < p[3] and p[3] > 0.6 and table["dedup"]["tp"] >= 0.15 * table["detections"]["tp"]
    decisions = {r["stage"]: r for r in decision_accuracy(candidates, v.survivors, list(candidates))}
    assert decisions["coarse"]["boxes shown"] == table["detections"]["boxes"]
    assert decisions["coarse"]["decision accuracy"] > 0.75 and decisions["dedup"]["decision accuracy"] > 0.8


@pytest.mark.slow
def test_toy_verifier_answers_the_real_requests_and_errs_at_its_rate(toy_world, verifier_model):
    scene = next(iter(store.load_scenes("tallyqa-train").values()))
    image = store.load_image("tallyqa-train", scene.id)
    boxes = [NumberedBox(i + 1, o.category, tuple(o.bbox)) for i, o in enumerate(scene.objects)]
    coarse = ChatRequest((user(coarse_prompt(boxes, 256, 192), image, draw_overlay(image, boxes, 512)),))
    honest, liar = ToyVlmVerifier(verifier_model), ToyVlmVerifier(verifier_model, error_rate=1.0)
    kept = set(range(1, len(boxes) + 1)) - set(parse_drop(honest(coarse), {b.number for b in boxes}).drop)
    flipped = set(parse_drop(liar(coarse), {b.number for b in boxes}).drop)
    assert kept == flipped
    crop = ChatRequest((user(crop_prompt(scene.objects[0].category), verification_crop(image, scene.objects[0].bbox)),))
    assert parse_match(honest(crop)).match != parse_match(liar(crop)).match
    assert "review" in honest(ChatRequest((user("What is the capital of France?", image),)))
    assert honest.name != liar.name


def test_ground_truth_annotation_counts_duplicates_and_misses(toy_world):
    scene = next(s for s in store.load_scenes("tallyqa-train").values() if len(s.objects) >= 2)
    a, b = scene.objects[0], scene.objects[1]
    boxes = [{"box_id": "0", "bbox": a.bbox, "label": a.category, "score": 0.9},
             {"box_id": "1", "bbox": a.bbox, "label": a.category, "score": 0.8},
             {"box_id": "2", "bbox": a.bbox, "label": f"{a.color} {a.category}", "score": 0.7}]
    record = annotate("img", "coarse", boxes, [a.category, b.category], scene)
    assert [x["verdict"] for x in record["boxes"]] == ["tp", "fp", "fp"]
    missed = {m["label"] for m in record["missed"]}
    assert f"{b.color} {b.category}" in missed
