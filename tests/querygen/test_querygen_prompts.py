"""The query-generation prompt and the validation of its JSON replies."""

import json

import pytest
from PIL import Image

from valor_lib.querygen import InvalidReply, build_request, parse_reply, prompt_text
from valor_lib.querygen.prompts import requested_count

FIVE = [f"Is the red chair {w} the blue table?" for w in ("left of", "right of", "above", "below", "behind")]


def test_prompt_asks_for_the_requested_number_and_json():
    text = prompt_text(5)
    assert "write five different questions" in text and '"suitable": true' in text and "<question 5>" in text
    assert requested_count(text) == 5 and requested_count(prompt_text(3)) == 3
    assert requested_count("Describe this image.") is None
    with pytest.raises(ValueError):
        prompt_text(0)


def test_request_carries_the_image():
    request = build_request(Image.new("RGB", (8, 8)), 5, sample_index=1)
    assert len(request.messages[-1].images) == 1 and request.sample_index == 1


def test_valid_replies():
    reply = parse_reply(json.dumps({"suitable": True, "reason": "two objects", "objects": ["chair"], "queries": FIVE}), 5)
    assert reply.suitable and reply.queries == FIVE
    fenced = "```json\n" + json.dumps({"suitable": False, "reason": "blank", "objects": [], "queries": []}) + "\n```"
    assert parse_reply(fenced, 5).suitable is False


@pytest.mark.parametrize(("reply", "problem"), [
    ("Sure! Here are some questions.", "no JSON"),
    ("{'suitable': True}", "not valid JSON"),
    ('["a", "b"]', "no JSON object"),
    (json.dumps({"suitable": "yes", "queries": FIVE}), "true or false"),
    (json.dumps({"suitable": True, "queries": FIVE[:4]}), "expected 5"),
    (json.dumps({"suitable": True, "queries": [*FIVE[:4], "Count the chairs."]}), "not a usable question"),
    (json.dumps({"suitable": True, "queries": [*FIVE[:4], FIVE[0].upper()]}), "not all different"),
    (json.dumps({"suitable": True, "queries": [1, 2, 3, 4, 5]}), "list of strings"),
])
def test_invalid_replies_say_why(reply, problem):
    with pytest.raises(InvalidReply, match=problem):
        parse_reply(reply, 5)
