"""The runner with the real toolbox (a tiny, untrained GroundingDINO of the real class, ground-plane depth,
toy VQA) and template-written programs: tool calls come back with their results, in the tools' format."""

import json

import pytest

from valor_lib.evaluation.benchmarks import load
from valor_lib.evaluation.runner import evaluate
from valor_lib.evaluation.solvers import ProgramSolver
from valor_lib.evaluation.systems import tool_cache_stats, toolbox_identity
from valor_lib.policy.template_programmer import TemplateWriter
from valor_lib.toyworld.vocab import CATEGORIES, COLORS


@pytest.fixture(scope="module")
def toolbox(tmp_path_factory):
    from valor_lib.detection.tiny import build_tiny_detector
    from valor_lib.tools import Toolbox

    words = [*CATEGORIES, *(c.plural for c in CATEGORIES.values()), *COLORS]
    model, processor = build_tiny_detector(words)
    folder = tmp_path_factory.mktemp("detector")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    spec = f"groundingdino-hf:{folder}"
    return spec, Toolbox.from_specs(spec, "toy:ground-plane", "toy:vqa", device="cpu")


@pytest.mark.slow
def test_programs_with_the_real_toolbox(toy_source, tmp_path, toolbox):
    spec, box = toolbox
    identity = {"writer": "template", "tools": toolbox_identity(spec, "toy:ground-plane", "toy:vqa", [0.35, 0.25], None)}
    assert identity["tools"]["detector"]["weights"]
    solver = ProgramSolver(TemplateWriter("correct"), box.tools(), identity=identity, workers=2,
                           tool_stats=lambda: tool_cache_stats(box))
    for bench in ("omni3d-bench", "gqa"):
        items = load(bench, toy_source, limit=4)
        run = evaluate(solver, items, bench, cache_root=tmp_path, progress=False)
        assert all(r["format_ok"] and r["code"] for r in run.records)
        calls = [c for r in run.records for c in r["tool_calls"]]
        assert calls and {c["name"] for c in calls} <= {"gd_detect", "depth", "vqa"}
        for call in calls:
            if call["ok"] and call["name"] == "gd_detect":
                assert all(set(d) == {"bbox", "label", "score"} for d in call["result"])
            if call["ok"] and call["name"] == "depth":
                assert isinstance(call["result"], float)
        assert set(run.summary["error_types"]) <= {"ok", "runtime", "no_answer"}
    assert tool_cache_stats(box)["detector"]["misses"] >= 1


def test_the_tools_identity_is_part_of_the_cache_key(toolbox):
    """Two detectors behind the same policy are two systems: their predictions must not share a cache entry."""
    from valor_lib.evaluation.runner import cache_key

    spec, box = toolbox
    keys = []
    for thresholds, nms_iou in (([0.35, 0.25], None), ([0.1, 0.1], None), ([0.35, 0.25], 0.5)):
        tools = toolbox_identity(spec, "toy:ground-plane", "toy:vqa", thresholds, nms_iou)
        identity = {"writer": "template", "tools": tools}
        solver = ProgramSolver(TemplateWriter("correct"), box.tools(), identity=identity)
        assert solver.identity()["tools"] == identity["tools"]
        keys.append(cache_key(solver, [], "vsr", 0, 16, None))
    assert len({json.dumps(k, sort_keys=True) for k in keys}) == 3


@pytest.mark.slow
def test_prefetched_detections_change_nothing_but_the_batching(toy_source, tmp_path, toolbox):
    """With the toolbox's prefetch, every program's gd_detect is a cache hit and the predictions are the same."""
    _, box = toolbox
    items = load("vsr", toy_source, limit=6)
    records = {}
    for prefetch in (None, box.prefetch_detections):
        box.detector.cache.clear()
        before = tool_cache_stats(box)["detector"]
        solver = ProgramSolver(TemplateWriter("correct"), box.tools(), identity={"writer": "template"}, workers=2,
                               prefetch=prefetch)
        run = evaluate(solver, items, "vsr", cache_root=tmp_path / str(prefetch is None), progress=False)
        records[prefetch is None] = [(r["prediction"], r["error_type"]) for r in run.records]
        after = tool_cache_stats(box)["detector"]
        hits, misses = (after[k] - before[k] for k in ("hits", "misses"))
        calls = sum(c["name"] == "gd_detect" for r in run.records for c in r["tool_calls"])
        if prefetch is not None:  # the prefetch misses once per (image, prompt); every program call hits
            assert solver.identity()["prefetch"] and misses > 0 and hits == calls
    assert records[True] == records[False]


def test_solvers_on_one_detector_share_its_model_and_outputs_whatever_the_thresholds(toolbox):
    """Evaluations that share a detector, depth and VQA (same weights and specs) share the model, its cache of
    outputs and the depth maps, each at its own thresholds and NMS; another detector replaces them, so one
    detector at a time stays in memory, while the outputs of the last few stay cached."""
    from types import SimpleNamespace

    from valor_lib.evaluation.systems import tool_solver

    spec, _ = toolbox
    common = SimpleNamespace(backends=SimpleNamespace(depth="toy:ground-plane", vqa="toy:vqa"),
                             gd_thresholds=[0.35, 0.25], gd_nms_iou=None, device="cpu")
    params = SimpleNamespace(timeout_s=5.0, exec_workers=1)
    writer = TemplateWriter("correct")
    _, first = tool_solver(writer, writer.identity(), spec, common, params)
    _, again = tool_solver(writer, writer.identity(), spec, common, params)
    assert again.detector.cache is first.detector.cache and again.depth_backend is first.depth_backend
    stricter = SimpleNamespace(**{**vars(common), "gd_thresholds": [0.5, 0.5]})
    _, other = tool_solver(writer, writer.identity(), spec, stricter, params)
    assert other.detector.thresholds.box == 0.5 and first.detector.thresholds.box == 0.35
    assert other.detector.detector is first.detector.detector and other.detector.cache is first.detector.cache
    with_nms = SimpleNamespace(**{**vars(common), "gd_nms_iou": 0.5})
    _, nms = tool_solver(writer, writer.identity(), spec, with_nms, params)
    assert nms.detector.nms_iou == 0.5 and nms.detector.thresholds.box == 0.35 and first.detector.nms_iou is None
    elsewhere = SimpleNamespace(**{**vars(common), "device": "auto"})  # another device: other backends
    _, replaced = tool_solver(writer, writer.identity(), spec, elsewhere, params)
    assert replaced.detector.detector is not first.detector.detector
    _, back = tool_solver(writer, writer.identity(), spec, common, params)
    assert back.detector.detector is not first.detector.detector  # the first backends were let go ...
    assert back.detector.cache is first.detector.cache  # ... but not the model outputs they had cached
    assert replaced.detector.cache is not first.detector.cache  # (those of another device are kept apart)
