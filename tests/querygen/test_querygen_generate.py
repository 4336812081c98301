"""The query-generation engine against a scripted Gemini-protocol server: retries of invalid replies,
failures, the uniform seeded choice, and resumption without repeated calls."""

import json
from collections import Counter

import pytest
from PIL import Image

from valor_lib.clients import ChatClient, RetryPolicy
from valor_lib.querygen import QueryGenerator, choose_index, generated_queries, list_images
from valor_lib.querygen.prompts import requested_count


def _images(folder, n):
    folder.mkdir()
    for i in range(n):
        Image.new("RGB", (16, 12), (10 * i, 0, 0)).save(folder / f"img-{i:02d}.png")
    return folder


def scripted_vlm(request):
    """Image 0: blank (unsuitable); image 1: always prose; image 2: prose once, then JSON; others: JSON."""
    message = request.messages[-1]
    red = message.images[0].to_pil().getpixel((0, 0))[0] // 10
    count = requested_count(message.text)
    if red == 0:
        return json.dumps({"suitable": False, "reason": "blank", "objects": [], "queries": []})
    if red == 1 or (red == 2 and request.params.temperature is None and _seen.setdefault(red, 0) == 0):
        _seen[red] = 1
        return "This image shows a room with furniture."
    queries = [f"Is object {k} of image {red} left of object {k + 1}?" for k in range(count)]
    return json.dumps({"suitable": True, "reason": "several objects", "objects": ["a", "b"], "queries": queries})


_seen: dict[int, int] = {}
scripted_vlm.name = "scripted-vlm"


@pytest.fixture
def vlm(make_server, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaFAKE-querygen-tests")
    _seen.clear()
    server = make_server(scripted_vlm)
    client = ChatClient("gemini:gemini-2.5-flash", role="querygen", base_url=server.gemini_base_url, cache="off",
                        retry=RetryPolicy(max_attempts=2, initial_delay_s=0.01))
    yield client, server
    client.close()


def test_generation_retries_records_failures_and_resumes(vlm, tmp_path):
    client, server = vlm
    images = list_images(_images(tmp_path / "imgs", 6), "*.png", seed=3)
    out = tmp_path / "candidates.jsonl"
    generator = QueryGenerator(client, candidates=5, attempts=3, seed=0)
    records = {r["id"]: r for r in generator.run(images, out, target=10, progress=False)}
    assert len(records) == 6 and [r["id"] for r in generator.run(images, out, 10, progress=False)] == [
        i.id for i in images]
    assert records["img-00"]["suitable"] is False and records["img-00"]["question"] is None
    assert records["img-01"]["error"].startswith("invalid reply") and records["img-01"]["attempts"] == 3
    assert records["img-02"]["suitable"] and records["img-02"]["attempts"] == 2
    chosen = records["img-03"]
    assert chosen["question"] == chosen["candidates"][choose_index("img-03", 5, 0)]
    calls = len(server.answered())
    generator.run(images, out, target=10, progress=False)  # resumed: everything is done already
    assert len(server.answered()) == calls
    with_query = [f"generated/{i.id}" for i in images if records[i.id]["question"]]
    assert len(with_query) == 4 and [r["id"] for r in generated_queries(records.values(), 2)] == with_query[:2]


def test_generation_stops_once_enough_images_have_a_query(vlm, tmp_path):
    client, _ = vlm
    images = list_images(_images(tmp_path / "imgs", 12), "*.png", seed=0)
    records = QueryGenerator(client, seed=0).run(images, tmp_path / "c.jsonl", target=2, progress=False)
    assert sum(bool(r["question"]) for r in records) >= 2 and len(records) < 12


def test_choice_is_uniform_and_seeded():
    picks = Counter(choose_index(f"image-{i}", 5, seed=7) for i in range(2000))
    assert set(picks) == set(range(5)) and min(picks.values()) > 330
    assert choose_index("a", 5, 1) == choose_index("a", 5, 1)


def test_list_images_is_seeded_and_checked(tmp_path):
    folder = _images(tmp_path / "imgs", 5)
    assert [i.id for i in list_images(folder, seed=1)] == [i.id for i in list_images(folder, seed=1)]
    assert sorted(i.id for i in list_images(folder, seed=1)) == [f"img-{i:02d}" for i in range(5)]
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "missing")


def test_a_model_that_fails_on_everything_stops_the_run(tmp_path):
    with ChatClient("toy:querygen", role="querygen", brain_options={"detector": "groundingdino-hf:data/no/such"}) as c:
        images = list_images(_images(tmp_path / "imgs", 3), "*.png")
        with pytest.raises(RuntimeError, match="failed on all 3 images"):
            QueryGenerator(c).run(images, tmp_path / "c.jsonl", target=2, progress=False)
