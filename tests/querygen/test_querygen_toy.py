"""The toy query generator: template queries about what it perceived, and the whole request-to-JSON path on a
rendered image."""

import json

import numpy as np
import pytest

from valor_lib.clients import ChatClient
from valor_lib.querygen import build_request, parse_reply
from valor_lib.querygen.toy_querygen import ToyQueryGenerator, typical_size
from valor_lib.toyworld.queries import parse_query
from valor_lib.toyworld.scene import SceneObject


def _seen(category, color, bbox, z):
    return SceneObject(0, category, color, typical_size(category), 0.0, z, bbox)


def test_writes_distinct_well_formed_queries_about_what_it_saw():
    objects = [_seen("chair", "red", [20, 80, 60, 140], 4.0), _seen("table", "blue", [100, 90, 180, 140], 5.5),
               _seen("lamp", "yellow", [190, 40, 210, 130], 7.5), _seen("chair", "green", [215, 95, 240, 130], 8.6)]
    for i, o in enumerate(objects):
        o.id = i
    queries = ToyQueryGenerator().write(objects, 5, np.random.default_rng(0))
    assert len(queries) == 5 and len(set(queries)) == 5
    for q in queries:
        spec = parse_query(q)
        assert spec is not None
        assert {r.category for r in spec.refs} <= {"chair", "table", "lamp"}


def test_unknown_requests_get_no_json():
    from valor_lib.clients import ChatRequest, user

    assert "send an image" in ToyQueryGenerator()(ChatRequest((user("Hello"),)))


@pytest.mark.slow
def test_end_to_end_on_a_rendered_image(scenes, detector_dir, tmp_path):
    """The whole request -> tools -> JSON reply path, with a tiny GroundingDINO saved to a folder."""
    image = tmp_path / "scene.png"
    scenes[0][1].save(image)
    options = {"detector": f"groundingdino-hf:{detector_dir}", "thresholds": [0.0, 0.0]}
    with ChatClient("toy:querygen", role="querygen", brain_options=options) as client:
        reply = parse_reply(client.complete(build_request(image, 5)).text, 5)
    assert reply.objects, "an untrained detector at threshold 0 still reports boxes"
    assert reply.suitable is False or all(parse_query(q) for q in reply.queries)
    assert json.dumps(reply.objects)


def test_perceives_through_the_pipelines_tools_and_thresholds():
    from valor_lib.params import CommonParams, apply_profile, load_raw
    from valor_lib.querygen.toy_querygen import perception_options

    raw = apply_profile(load_raw(), "toy")["common"]
    common = CommonParams(**{**raw, "gd_thresholds": [0.2, 0.15]})
    options = perception_options(common)
    brain = ToyQueryGenerator(**options)
    assert options["detector"] == common.backends.detector
    assert (brain.thresholds.box, brain.thresholds.text) == (0.2, 0.15)
    assert "thresholds=(0.2, 0.15)" in brain.name
