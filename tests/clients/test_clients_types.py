"""Requests, messages, images, sampling parameters and results."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from valor_lib.clients import (
    ChatRequest,
    ChatResult,
    ImagePart,
    Message,
    RequestFailedError,
    SamplingParams,
    TextPart,
    system,
    user,
)


def _png(color=(10, 20, 30), size=(6, 4)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_message_content_mixes_text_and_images_in_order(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(_png())
    pil = Image.new("RGB", (3, 3), "red")
    m = user("look", pil, "and", path, _png((1, 2, 3)))
    kinds = [type(p).__name__ for p in m.content]
    assert kinds == ["TextPart", "ImagePart", "TextPart", "ImagePart", "ImagePart"]
    assert m.text == "look\nand"
    assert len(m.images) == 3


def test_str_is_never_taken_as_a_path():
    with pytest.raises(TypeError, match=r"pathlib\.Path"):
        ImagePart("photo.png")


def test_bad_roles_and_images_outside_user_turns_are_rejected():
    with pytest.raises(ValueError, match="role"):
        Message("tool", "x")
    with pytest.raises(ValueError, match="only user messages"):
        Message("assistant", [Image.new("RGB", (2, 2))])
    with pytest.raises(ValueError, match="no content"):
        Message("user", [])
    with pytest.raises(ValueError, match="not a readable image"):
        ImagePart(b"not an image")


def test_image_hash_follows_pixels_and_encoding_is_png():
    a = ImagePart(Image.new("RGB", (4, 4), (1, 2, 3)))
    b = ImagePart(Image.new("RGB", (4, 4), (1, 2, 3)))
    c = ImagePart(Image.new("RGB", (4, 4), (1, 2, 4)))
    assert a.sha256 == b.sha256 != c.sha256
    data, mime = a.encoded()
    assert mime == "image/png" and data.startswith(b"\x89PNG")
    assert a.data_url().startswith("data:image/png;base64,")
    assert ImagePart(data).to_pil().getpixel((0, 0)) == (1, 2, 3)


def test_files_are_sent_as_they_are(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8), "blue").save(path, format="JPEG")
    part = ImagePart(Path(path))
    data, mime = part.encoded()
    assert mime == "image/jpeg" and data == path.read_bytes()


def test_sampling_params_validate():
    for bad in ({"temperature": -1}, {"top_p": 0}, {"top_k": 0}, {"max_tokens": 0},
                {"reasoning_effort": "extreme"}, {"stop": [""]}):
        with pytest.raises(ValueError):
            SamplingParams(**bad)
    with pytest.raises(TypeError, match="list of strings"):
        SamplingParams(stop="END")
    assert SamplingParams(stop=["a"]).stop == ("a",)
    assert SamplingParams(temperature=0.0).as_dict() == {"temperature": 0.0}


def test_sample_index_enters_the_key_only_when_sampling():
    greedy = ChatRequest.from_prompt("q", temperature=0.0)
    assert greedy.with_sample_index(3).key_payload() == greedy.key_payload()
    hot = ChatRequest.from_prompt("q", temperature=1.0)
    assert hot.with_sample_index(1).key_payload() != hot.with_sample_index(2).key_payload()
    assert hot.key_payload() == hot.with_sample_index(0).key_payload()  # None means 0
    default = ChatRequest.from_prompt("q")  # provider default temperature samples
    assert default.params.is_sampling


def test_seed_is_offset_by_sample_index_when_sampling():
    hot = ChatRequest.from_prompt("q", temperature=0.7, seed=100)
    assert [hot.with_sample_index(i).effective_seed for i in range(3)] == [100, 101, 102]
    assert ChatRequest.from_prompt("q", temperature=0.0, seed=100).with_sample_index(5).effective_seed == 100


def test_request_shapes():
    r = ChatRequest.from_prompt("hi", [Image.new("RGB", (2, 2))], system="be brief", max_tokens=5)
    assert [m.role for m in r.messages] == ["system", "user"]
    assert r.params.max_tokens == 5
    r2 = ChatRequest([{"role": "user", "content": "hello"}])
    assert r2.messages[0].content == (TextPart("hello"),)
    with pytest.raises(ValueError, match="at least one"):
        ChatRequest(())
    with pytest.raises(ValueError, match="last message"):
        ChatRequest((system("x"),))


def test_failed_result_raises_on_text():
    ok = ChatResult("k", True, "yes")
    assert ok.text == "yes"
    bad = ChatResult("k", False, None, "rate_limit", "HTTP 429")
    with pytest.raises(RequestFailedError, match="rate_limit"):
        _ = bad.text
    assert bad.as_dict()["error_type"] == "rate_limit"
