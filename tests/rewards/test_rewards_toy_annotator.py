"""Toy annotations from program semantics: oracle tools, scene variants, and the labels of hand-written
programs about a hand-made scene."""

import pytest
from reward_cases import BAD_FORMAT, DEVIATING, GOOD, NO_SPATIAL, PIXEL_SIZE, QUERY

from valor_lib.rewards.toy_annotator import (
    OracleTools,
    SceneImage,
    answers_match,
    oracle_labels,
    scene_variants,
)
from valor_lib.toyworld.camera import Camera
from valor_lib.toyworld.queries import answer_query, parse_query
from valor_lib.toyworld.scene import Scene, SceneObject, Style

CAMERA = Camera()


def _object(i, category, color, size, x, z):
    w, h, _ = size
    x1, y2 = CAMERA.project(x - w / 2, 0.0, z)
    x2, y1 = CAMERA.project(x + w / 2, h, z)
    return SceneObject(i, category, color, list(size), x, z, [x1, y1, x2, y2])


@pytest.fixture
def scene():
    objects = [_object(0, "chair", "blue", (0.5, 0.9, 0.5), -1.5, 4.0),
               _object(1, "chair", "green", (0.5, 0.95, 0.5), 1.0, 6.0),
               _object(2, "lamp", "red", (0.35, 1.6, 0.35), 0.2, 8.0)]
    return Scene("hand-made", "target", 0, Style("plain", [[0, 0, 0]], 1.0, [0, 0, 0], 1.0, [1, 1, 1], False, 0.0),
                 objects, [])


def test_variants_keep_geometry_consistent(scene):
    variants = scene_variants(scene, CAMERA, parse_query(QUERY))
    mirror = variants["mirror"].objects
    assert mirror[0].bbox[0] == pytest.approx(CAMERA.width - scene.objects[0].bbox[2])
    reversed_ = {o.id: o.z for o in variants["depth-reversed"].objects}
    assert reversed_ == {0: 8.0, 1: 6.0, 2: 4.0}
    for o in variants["taller"].objects:  # pixel height x depth / focal is still the real height
        assert (o.bbox[3] - o.bbox[1]) * o.z / CAMERA.focal == pytest.approx(o.height)
    assert answer_query(parse_query(QUERY), scene)[0] == "no"


def test_oracle_tools_answer_truthfully(scene):
    tools, image = OracleTools(), SceneImage(CAMERA.width, CAMERA.height, scene)
    chairs = tools.gd_detect(image, "chair, purple sofa")
    assert len(chairs) == 2 and {d["label"] for d in chairs} == {"chair"}
    lamp = tools.gd_detect(image, "red lamp")[0]["bbox"]
    assert tools.depth(image, lamp) == 8.0 and tools.vqa(image, lamp, "What color is it?") == "red"
    assert tools.vqa(image, lamp, "Is the lamp blue?") == "no" and tools.vqa(image, None, "Is it red?") == "unknown"
    assert [name for name, _ in tools.calls[id(image)]] == ["gd_detect", "gd_detect", "depth", "vqa", "vqa", "vqa"]


def test_answers_match():
    assert answers_match("Yes", "yes") and answers_match(1.05, "1.000") and not answers_match(1.2, "1.000")
    assert not answers_match(None, "no") and not answers_match(True, "1") and answers_match(3, "3")


def test_labels_of_hand_written_programs(scene):
    items = [(QUERY, r, scene) for r in (GOOD, NO_SPATIAL, PIXEL_SIZE, DEVIATING, BAD_FORMAT)]
    good, no_spatial, pixel, deviating, bad_format = oracle_labels(items, CAMERA)
    assert good.labels == dict.fromkeys(good.labels, 1) and all(good.correct.values())
    assert no_spatial.labels["spatial"] == 0 and no_spatial.labels["adherence"] == 1
    assert pixel.labels["attribute"] == 0 and pixel.labels["logic"] == 0 and pixel.labels["adherence"] == 1
    assert deviating.labels["adherence"] == 0 and deviating.labels["logic"] == 1  # the plan itself is right
    assert bad_format is None
    assert oracle_labels([("Who made this image?", GOOD, scene)], CAMERA) == [None]
