"""VQA: crops padded by 25 %, answers cleaned, the toy colour brain reading only the request's pixels."""

import pytest
from PIL import Image, ImageDraw

from valor_lib.clients import ChatClient, ChatRequest, user
from valor_lib.tools import ToolBackendError, ToolInputError
from valor_lib.tools.backends import make_vqa
from valor_lib.tools.images import load_image
from valor_lib.tools.toy_vqa import UNKNOWN, ToyColourVQA
from valor_lib.tools.vqa import ClientVQA, check_question, clean_answer, vqa_request


def test_clean_answer():
    assert clean_answer("  Red.\n") == "red"
    assert clean_answer("Yes,") == "yes"
    assert clean_answer("3.5") == "3.5"
    assert clean_answer("") == ""


def test_question_checks():
    assert check_question(" what colour is it? ") == "what colour is it?"
    for bad in ("", "   ", None, 3, "x" * 600):
        with pytest.raises(ToolInputError):
            check_question(bad)


def test_request_carries_the_padded_crop_and_the_question():
    image = load_image(Image.new("RGB", (200, 100)))
    request = vqa_request(image, (40, 20, 80, 60), "What color is it?")
    (message,) = request.messages
    crop = message.images[0].to_pil()
    assert crop.size == (60, 60)  # 40x40 box + 25 % of 40 on every side
    assert "Question: What color is it?" in message.text and "crop" in message.text
    whole = vqa_request(image, None, "How many?").messages[0]
    assert whole.images[0].to_pil().size == (200, 100) and "crop" not in whole.text
    edge = vqa_request(image, (0, 0, 20, 20), "q").messages[0].images[0].to_pil()
    assert edge.size == (25, 25)  # clipped at the image border


def test_toy_brain_reads_colours_from_rendered_objects(scenes):
    vqa = ClientVQA(ChatClient("toy:vqa", role="vqa"))
    right = total = 0
    for scene, image in scenes:
        loaded = load_image(image)
        for obj in scene.objects:
            x1, y1, x2, y2 = obj.bbox
            if obj.visible < 0.9 or min(x2 - x1, y2 - y1) < 6:
                continue
            total += 1
            right += vqa.answer(loaded, tuple(obj.bbox), "What color is this object?") == obj.color
    assert total >= 10 and right / total >= 0.8


def test_toy_brain_yes_no_and_honest_fallbacks():
    brain = ToyColourVQA()
    image = Image.new("RGB", (40, 40), (150, 150, 150))
    ImageDraw.Draw(image).rectangle([10, 10, 30, 30], fill=(200, 40, 40))
    assert brain.dominant_colour(image) == "red"
    assert brain.answer("is it red?", image, is_crop=True) == "yes"
    assert brain.answer("is the object blue?", image, is_crop=True) == "no"
    assert brain.answer("is it violet?", image, is_crop=True) == "no"  # synonym of purple
    assert brain.answer("what is this object made of?", image, is_crop=True) == UNKNOWN
    assert brain.answer("what color is the sofa?", image, is_crop=False) == UNKNOWN  # no crop to read
    request = ChatRequest((user("close crop around one object.\nQuestion: What colour is it?", image),))
    assert brain(request) == "red"
    assert brain(ChatRequest((user("Question: what colour?"),))) == UNKNOWN


class FailingClient:
    spec = "test:failing"

    def complete(self, request):
        from valor_lib.clients import ChatResult

        return ChatResult(key="k", ok=False, error_type="server", error="boom")


def test_failed_vqa_call_is_an_error_not_an_answer():
    with pytest.raises(ToolBackendError, match="boom"):
        ClientVQA(FailingClient()).answer(load_image(Image.new("RGB", (8, 8))), None, "what?")


def test_make_vqa_checks_the_role():
    assert isinstance(make_vqa("toy:vqa"), ClientVQA)
    with pytest.raises(ValueError, match="cannot serve as vqa"):
        make_vqa("vllm:some/model")
