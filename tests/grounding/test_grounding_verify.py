"""The three verification stages through a scripted VLM: decisions, follow-ups after bad JSON, failures,
resuming, and stale inputs."""

import json
import re

import pytest
from PIL import Image

from valor_lib.clients import ChatClient, register_toy_brain, unregister_toy_brain
from valor_lib.clients.errors import CallError
from valor_lib.grounding.verify import StaleVerificationError, VerifierSettings, verify_candidates
from valor_lib.resumable import read_records

ROLE = "grounding-test-vlm"


class ScriptedVerifier:
    """Stage 1 drops boxes labelled "poster"; stage 2 rejects "shadow"; stage 3 drops the later of two identical
    boxes. ``garble`` labels get one unusable reply first; ``always_garble`` never a usable one; ``explode``
    raises a provider error."""

    name = "scripted-vlm"

    def __init__(self):
        self.calls = []

    def __call__(self, request):
        text = request.messages[0].text
        self.calls.append(text)
        turns = len(request.messages)
        if "explode" in text:
            raise CallError("bad_request", "refused")
        if '"match"' in text:
            label = re.search(r'labelled the box "([^"]+)"', text).group(1)
            if label == "always_garble" or (label == "garble" and turns == 1):
                return "I think so"
            return json.dumps({"match": label != "shadow", "reason": "scripted"})
        boxes = json.loads(text[text.index("[", text.index("Detections:")): text.index("]\n") + 1])
        if "Find duplicates" in text:
            seen, drop = [], []
            for b in boxes:
                (drop if b["box"] in seen else seen).append(b["id"] if b["box"] in seen else b["box"])
            return json.dumps({"drop": drop})
        return json.dumps({"drop": [b["id"] for b in boxes if b["label"] == "poster"], "notes": "scripted"})


@pytest.fixture
def brain():
    scripted = ScriptedVerifier()
    register_toy_brain(ROLE, lambda: scripted, replace=True)
    yield scripted
    unregister_toy_brain(ROLE)


def _candidates(root, boxes_per_image):
    records = {}
    for i, boxes in enumerate(boxes_per_image):
        name = f"img{i}.png"
        Image.new("RGB", (64, 48), (100 + i, 90, 80)).save(root / name)
        records[name] = {"id": name, "file": name, "image_name": name, "width": 64, "height": 48,
                         "queried": sorted({b[0] for b in boxes}),
                         "boxes": [{"box_id": f"{name}#{k}", "bbox": list(b[1]), "label": b[0], "score": 0.5}
                                   for k, b in enumerate(boxes)]}
    return records


SETTINGS = VerifierSettings(reasoning_effort="medium", max_attempts=2, overlay_long_side=128, crop_long_side=64,
                            chunk_size=3)


def test_three_stages_keep_what_each_stage_accepts(tmp_path, brain):
    candidates = _candidates(tmp_path, [
        [("chair", (1, 1, 20, 20)), ("poster", (30, 2, 50, 20)), ("chair", (1, 1, 20, 20)), ("shadow", (5, 30, 25, 45))],
        [("lamp", (10, 10, 30, 40))],
        [],
    ])
    v = verify_candidates(ChatClient(f"toy:{ROLE}", role="vlm_verifier"), candidates, tmp_path, tmp_path / "v",
                          SETTINGS, progress=False)
    assert v.survivors["coarse"]["img0.png"] == ["img0.png#0", "img0.png#2", "img0.png#3"]
    assert v.survivors["crop"]["img0.png"] == ["img0.png#0", "img0.png#2"]
    assert v.survivors["dedup"] == {"img0.png": ["img0.png#0"], "img1.png": ["img1.png#0"], "img2.png": []}
    assert v.counts() == {"detections": 5, "coarse": 4, "crop": 3, "dedup": 2}
    assert v.dropped("crop") == {"img0.png": ["img0.png#3"], "img1.png": [], "img2.png": []}
    assert v.dropped("coarse")["img0.png"] == ["img0.png#1"]
    assert v.calls == {"coarse": 2, "crop": 4, "dedup": 1} and v.failures == {"coarse": 0, "crop": 0, "dedup": 0}
    coarse = {r["id"]: r for r in read_records(tmp_path / "v" / "coarse.jsonl", key="id")}
    assert coarse["img0.png"]["dropped"] == ["img0.png#1"] and coarse["img0.png"]["decision"]["notes"] == "scripted"
    assert "Detections:" in coarse["img0.png"]["prompt"] and coarse["img0.png"]["boxes"][1]["number"] == 2
    dedup = read_records(tmp_path / "v" / "dedup.jsonl", key="id")
    assert [b["box_id"] for b in dedup[0]["boxes"]] == ["img0.png#0", "img0.png#2"]  # renumbered survivors


def test_unusable_replies_get_a_follow_up_then_fail(tmp_path, brain):
    candidates = _candidates(tmp_path, [[("garble", (1, 1, 20, 20)), ("always_garble", (30, 2, 50, 20))]])
    v = verify_candidates(ChatClient(f"toy:{ROLE}", role="vlm_verifier"), candidates, tmp_path, tmp_path / "v",
                          SETTINGS, progress=False)
    crops = {r["id"]: r for r in read_records(tmp_path / "v" / "crop.jsonl", key="id")}
    ok, bad = crops["img0.png#0"], crops["img0.png#1"]
    assert ok["kept"] and ok["attempts"] == 2 and ok["replies"][0] == "I think so" and ok["error"] is None
    assert not bad["kept"] and bad["attempts"] == 2 and bad["error"].startswith("unusable reply")
    assert v.failures["crop"] == 1 and v.survivors["dedup"]["img0.png"] == ["img0.png#0"]


def test_provider_failures_drop_the_boxes_and_are_recorded(tmp_path, brain):
    candidates = _candidates(tmp_path, [[("explode", (1, 1, 20, 20))], [("chair", (1, 1, 20, 20))]])
    v = verify_candidates(ChatClient(f"toy:{ROLE}", role="vlm_verifier"), candidates, tmp_path, tmp_path / "v",
                          SETTINGS, progress=False)
    assert v.survivors["coarse"]["img0.png"] == [] and v.failures["coarse"] == 1
    record = read_records(tmp_path / "v" / "coarse.jsonl", key="id")[0]
    assert record["error"].startswith("bad_request") and record["dropped"] == ["img0.png#0"]
    assert v.survivors["dedup"]["img1.png"] == ["img1.png#0"]


def test_a_rerun_resumes_without_calls_and_refuses_changed_inputs(tmp_path, brain):
    candidates = _candidates(tmp_path, [[("chair", (1, 1, 20, 20)), ("chair", (1, 1, 20, 20))]])
    client = ChatClient(f"toy:{ROLE}", role="vlm_verifier")
    first = verify_candidates(client, candidates, tmp_path, tmp_path / "v", SETTINGS, progress=False)
    n = len(brain.calls)
    again = verify_candidates(client, candidates, tmp_path, tmp_path / "v", SETTINGS, progress=False)
    assert len(brain.calls) == n and again.survivors == first.survivors and again.calls == {"coarse": 0, "crop": 0,
                                                                                            "dedup": 0}
    candidates["img0.png"]["boxes"][0]["bbox"] = [2, 2, 20, 20]
    with pytest.raises(StaleVerificationError):
        verify_candidates(client, candidates, tmp_path, tmp_path / "v", SETTINGS, progress=False)
