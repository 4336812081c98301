"""What the verifier sees (overlays, crops) and how its JSON replies are validated."""

import json

import pytest
from PIL import Image

from valor_lib.grounding.prompts import (
    ReplyError,
    coarse_prompt,
    crop_prompt,
    dedup_prompt,
    follow_up,
    json_object,
    parse_drop,
    parse_match,
)
from valor_lib.grounding.views import NumberedBox, draw_overlay, padded_window_crop, verification_crop


def test_padded_crop_grows_by_a_fraction_and_clips():
    image = Image.new("RGB", (100, 100))
    assert padded_window_crop(image, [10, 20, 30, 60], 0.1).size == (24, 48)
    assert padded_window_crop(Image.new("RGB", (60, 60)), [0, 0, 50, 50], 0.5).size == (60, 60)
    for bad in ([5, 5, 5, 9], [1, 2, 3], [200, 200, 300, 300]):
        with pytest.raises(ValueError):
            padded_window_crop(image, bad, 0.1)


def test_crop_is_upscaled_to_the_long_side_keeping_aspect():
    image = Image.new("RGB", (256, 192), (10, 20, 30))
    image.paste((250, 0, 0), (100, 50, 120, 90))
    crop = verification_crop(image, [100, 50, 120, 90], 0.1, 640)
    assert max(crop.size) == 640 and crop.size == (320, 640)  # a 24 x 48 window
    assert crop.getpixel((160, 320)) == (250, 0, 0)


def test_overlay_is_resized_and_draws_every_box():
    image = Image.new("RGB", (256, 192), (128, 128, 128))
    boxes = [NumberedBox(1, "chair", (10, 10, 60, 80)), NumberedBox(2, "red lamp", (100, 40, 140, 150))]
    overlay = draw_overlay(image, boxes, 768)
    assert overlay.size == (768, 576)
    assert overlay.getpixel((30, 150)) == (0, 230, 0)  # left edge of box 1, scaled by 3
    assert image.getpixel((10, 50)) == (128, 128, 128)  # the original is untouched


def test_prompts_list_boxes_as_json_and_ask_for_the_reply_shape():
    boxes = [NumberedBox(1, "chair", (1.04, 2, 3, 4)), NumberedBox(2, "table", (5, 6, 7, 8))]
    text = coarse_prompt(boxes, 256, 192)
    listed = json.loads(text[text.index("[", text.index("Detections:")): text.index("]\n") + 1])
    assert listed == [{"id": 1, "label": "chair", "box": [1.0, 2, 3, 4]}, {"id": 2, "label": "table", "box": [5, 6, 7, 8]}]
    assert "256x192" in text and '{"drop"' in text
    assert "duplicates" in dedup_prompt(boxes, 256, 192).lower()
    assert '"red chair"' in crop_prompt("red chair") and '{"match"' in crop_prompt("red chair")
    assert "box 9 does not exist" in follow_up("box 9 does not exist", "coarse")


def test_json_object_tolerates_fences_and_chatter():
    assert json_object('Sure! ```json\n{"drop": [2]}\n``` done') == {"drop": [2]}
    assert json_object('{bad} then {"match": false}') == {"match": False}
    for text in ("", "no json here", "[1, 2]"):
        with pytest.raises(ReplyError):
            json_object(text)


def test_parse_drop_validates_numbers():
    assert parse_drop('{"drop": [3, "1", 3], "notes": "x"}', {1, 2, 3}).drop == [1, 3]
    assert parse_drop('{"drop": []}', {1}).drop == []
    for bad in ('{"keep": [1]}', '{"drop": 2}', '{"drop": [true]}', '{"drop": [7]}', '{"drop": ["one"]}'):
        with pytest.raises(ReplyError):
            parse_drop(bad, {1, 2, 3})


def test_parse_match_accepts_booleans_and_yes_no_words():
    assert parse_match('{"match": true, "reason": "a chair"}').match is True
    assert parse_match('{"match": "no"}').match is False
    for bad in ('{"match": 1}', '{"reason": "x"}'):
        with pytest.raises(ReplyError):
            parse_match(bad)
