"""The toolbox: input checks, detector caching, spec resolution, the API text, and programs calling the
real tools through the sandbox."""

import io
import math

import numpy as np
import pytest
from PIL import Image

from valor_lib.detection.inference import Thresholds
from valor_lib.paths import MissingDataError
from valor_lib.tools import TOOL_NAMES, Toolbox, ToolInputError, tool_api_text
from valor_lib.tools.backends import resolve_model_path
from valor_lib.tools.detector import check_prompt
from valor_lib.tools.images import check_box, load_image


def test_images_from_paths_pil_and_bytes_share_a_key(tmp_path):
    image = Image.new("RGB", (16, 8), (1, 2, 3))
    image.save(tmp_path / "a.png")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    keys = {load_image(x).key for x in (tmp_path / "a.png", str(tmp_path / "a.png"), image, buf.getvalue())}
    assert len(keys) == 1
    (tmp_path / "bad.png").write_bytes(b"not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    for bad, message in ((tmp_path / "missing.png", "not found"), (tmp_path / "bad.png", "not a readable image"),
                         (tmp_path / "empty.png", "empty"), (b"", "empty"), (42, "must be a file path")):
        with pytest.raises(ToolInputError, match=message):
            load_image(bad)


def test_boxes_are_checked_and_clipped():
    assert check_box([-5, 2, 300, 40], 100, 50) == (0.0, 2.0, 100.0, 40.0)
    assert check_box(np.array([1, 2, 3, 4]), 10, 10) == (1.0, 2.0, 3.0, 4.0)
    assert check_box((np.float32(1), 2, 3, np.int64(4)), 10, 10) == (1.0, 2.0, 3.0, 4.0)
    bad = {"nan": [0, 0, math.nan, 5], "inf": [0, 0, math.inf, 5], "short": [0, 0, 5], "inverted": [5, 5, 1, 1],
           "flat": [2, 2, 2, 8], "outside": [200, 0, 300, 10], "text": "0,0,5,5", "words": ["a", 0, 5, 5],
           "bool": [True, 0, 5, 5], "detection": {"bbox": [0, 0, 5, 5]}, "none": None}
    for name, box in bad.items():
        with pytest.raises(ToolInputError):
            check_box(box, 100, 50)
            pytest.fail(f"accepted the {name} box {box!r}")


def test_prompts_are_checked():
    assert check_prompt("Chair,  red lamp ,") == ["chair", "red lamp"]
    for bad in ("", " , ", None, ["chair"], "x" * 2000):
        with pytest.raises(ToolInputError):
            check_prompt(bad)


def test_api_text_documents_every_tool():
    text = tool_api_text()
    assert set(TOOL_NAMES) == {"gd_detect", "depth", "vqa"}
    for needle in ("def gd_detect(image, prompt: str) -> list[dict]", "def depth(image, bbox", "def vqa(image, bbox",
                   "None", "metres", "no particular order", "appearance"):
        assert needle in text
    compile(text, "<api>", "exec")  # valid Python stubs


def test_model_paths_resolve_against_the_repo_root(tmp_path, monkeypatch):
    monkeypatch.setenv("VALOR_ROOT", str(tmp_path))
    (tmp_path / "data" / "toy" / "models" / "det").mkdir(parents=True)
    assert resolve_model_path("data/toy/models/det") == str(tmp_path / "data/toy/models/det")
    assert resolve_model_path("IDEA-Research/grounding-dino-tiny") == "IDEA-Research/grounding-dino-tiny"
    with pytest.raises(MissingDataError, match="toy_world stage"):
        resolve_model_path("data/toy/models/missing")
    with pytest.raises(MissingDataError):
        resolve_model_path("ckpt.pth")


@pytest.fixture(scope="module")
def toolbox(detector_dir):
    return Toolbox.from_specs(f"groundingdino-hf:{detector_dir}", "toy:ground-plane", "toy:vqa", device="cpu")


def test_tools_called_directly(toolbox, scenes):
    scene, image = scenes[0]
    dets = toolbox.gd_detect(image, "chair, red table")
    assert isinstance(dets, list) and all(d["label"] in ("chair", "red table") for d in dets)
    obj = max(scene.objects, key=lambda o: o.visible)
    assert toolbox.depth(image, obj.bbox) == pytest.approx(obj.depth, rel=0.05)
    assert toolbox.vqa(image, obj.bbox, "What colour is it?") in (*__import__("valor_lib").toyworld.vocab.COLORS,
                                                                   "unknown")
    assert toolbox.vqa(image, None, "What is happening?") == "unknown"
    with pytest.raises(ToolInputError):
        toolbox.depth(image, [0, 0, 0, 0])
    with pytest.raises(ToolInputError):
        toolbox.vqa(image, [1, 2, 3], "colour?")
    with pytest.raises(ToolInputError):
        toolbox.gd_detect(image, "")


def test_model_outputs_are_cached_per_image_and_prompt_whatever_the_thresholds(toolbox, scenes, monkeypatch):
    (_, a), (_, b) = scenes[2], scenes[3]
    model = toolbox.detector.detector
    at_zero = model.detect(a, "lamp, box", Thresholds(0.0, 0.0), toolbox.detector.nms_iou)
    at_zero_no_nms = model.detect(a, "lamp, box", Thresholds(0.0, 0.0))
    calls = []
    real = model.raw_batch

    def counting(images, prompts):
        calls.append(len(images))
        return real(images, prompts)

    monkeypatch.setattr(model, "raw_batch", counting)
    toolbox.detector.cache.clear()
    first = toolbox.gd_detect(a, "lamp, box")
    first.append("mutated by the caller")
    assert toolbox.gd_detect(a.copy(), "lamp,box ") == first[:-1] and calls == [1]  # same pixels, same phrases
    toolbox.gd_detect(b, "lamp, box")
    low = toolbox.gd_detect_many([a], ["lamp, box"], Thresholds(0.0, 0.0))[0]
    assert calls == [1, 1]  # other thresholds: the same forward pass, thresholded again
    assert low == at_zero
    assert len(low) >= len(first) - 1
    out = toolbox.gd_detect_many([a, b, scenes[4][1], scenes[4][1]], ["lamp, box", "lamp, box", "vase", "vase"],
                                 Thresholds(0.0, 0.0))
    assert calls == [1, 1, 1] and out[2] == out[3]  # two cached, one computed once for two requests
    assert all(d["label"] == "vase" for d in out[2])
    other = toolbox.with_thresholds(Thresholds(0.0, 0.0), None)  # shares the model and the cache
    assert other.detector.detector is toolbox.detector.detector and other.detector.cache is toolbox.detector.cache
    assert other.gd_detect(a, "lamp, box") == at_zero_no_nms
    assert calls == [1, 1, 1] and toolbox.gd_detect(a, "lamp, box") == first[:-1]


def test_prefetch_runs_the_programs_constant_prompts_in_one_batch(toolbox, scenes, monkeypatch):
    calls = []
    real = toolbox.detector.detector.raw_batch

    def counting(images, prompts):
        calls.append(list(prompts))
        return real(images, prompts)

    monkeypatch.setattr(toolbox.detector.detector, "raw_batch", counting)
    toolbox.detector.cache.clear()
    (_, a), (_, b) = scenes[0], scenes[1]
    codes = ['x = gd_detect(image, "lamp")\nname = "red box"\ny = gd_detect(image, name)\nz = gd_detect(image, "lamp")',
             'final_answer = gd_detect(image, "  ")',  # rejected by gd_detect: left to the program
             'final_answer = gd_detect(image, "vase" + str(len([])))',  # built at run time: left to the program
             "not python (",
             'final_answer = gd_detect(image, "lamp")']  # the same image as the first program: asked once
    assert toolbox.prefetch_detections([a, b, b, b, a], codes) == 2
    assert calls == [["lamp", "red box"]]
    toolbox.gd_detect(a, "red box")
    toolbox.gd_detect(a.copy(), "lamp")
    assert len(calls) == 1  # the programs' calls are cache hits
    assert toolbox.prefetch_detections([a], ["final_answer = 1"]) == 0 and len(calls) == 1


def test_programs_call_the_real_tools_through_the_sandbox(toolbox, scenes, tmp_path):
    from valor_lib.programs import execute

    scene, image = scenes[0]
    path = tmp_path / "scene.png"
    image.save(path)
    obj = max(scene.objects, key=lambda o: o.visible)
    code = f"""
boxes = gd_detect(image, "{obj.category}")
d = depth(image, {list(obj.bbox)})
colour = vqa(image, {list(obj.bbox)}, "What color is this object?")
final_answer = [len(boxes), round(d, 2), colour]
"""
    result = execute(code, tools=toolbox.tools(), image=str(path), timeout_s=60)
    assert result.ok, result.error
    assert result.answer[1] == pytest.approx(obj.depth, rel=0.05)
    bad = execute("final_answer = depth(image, [5, 5, 1, 1])", tools=toolbox.tools(), image=str(path), timeout_s=60)
    assert not bad.ok and bad.error_type == "runtime" and "ToolInputError" in bad.error and "x2 > x1" in bad.error
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(path.read_bytes()[:2000])  # the header still gives the size, the pixels are gone
    corrupt = execute("final_answer = gd_detect(image, 'chair')", tools=toolbox.tools(), image=str(truncated),
                      timeout_s=60)
    assert not corrupt.ok and corrupt.error_type == "runtime" and "not a readable image" in corrupt.error
    for program, message in (("final_answer = gd_detect(image, '  ')", "names no object"),
                             ("final_answer = vqa(image, None, 42)", "must be a string"),
                             ("final_answer = depth(image, [1, 2, float('nan'), 4])", "non-finite")):
        res = execute(program, tools=toolbox.tools(), image=str(path), timeout_s=60)
        assert not res.ok and res.error_type == "runtime" and message in res.error, (program, res.error)


def test_from_params_applies_the_common_nms(detector_dir, scenes):
    """``common.gd_nms_iou`` reaches gd_detect, and no two boxes of one label that gd_detect
    returns overlap more than that IoU."""
    from types import SimpleNamespace

    import torch

    from valor_lib.detection.inference import box_iou

    backends = SimpleNamespace(detector=f"groundingdino-hf:{detector_dir}", depth="toy:ground-plane", vqa="toy:vqa")
    common = SimpleNamespace(backends=backends, gd_thresholds=[0.0, 0.0], gd_nms_iou=0.05, device="cpu")
    toolbox = Toolbox.from_params(common)
    assert Toolbox.from_params(SimpleNamespace(**{**vars(common), "gd_nms_iou": None})).detector.nms_iou is None
    _, image = scenes[0]
    kept = toolbox.gd_detect(image, "chair, table")
    model = toolbox.detector.detector
    assert toolbox.detector.nms_iou == 0.05
    assert kept and kept == model.detect(image, "chair, table", Thresholds(0.0, 0.0), 0.05)
    for label in {d["label"] for d in kept}:
        boxes = torch.tensor([d["bbox"] for d in kept if d["label"] == label])
        assert float(box_iou(boxes, boxes).fill_diagonal_(0).max()) <= 0.05
