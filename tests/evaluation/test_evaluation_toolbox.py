"""The runner with the real toolbox (a tiny, untrained GroundingDINO of the real class, ground-plane depth,
toy VQA) and template-written programs: tool calls come back with their results, in the tools' format."""

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
    identity = {"writer": "template", "tools": toolbox_identity(spec, "toy:ground-plane", "toy:vqa", [0.35, 0.25])}
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
    for thresholds in ([0.35, 0.25], [0.1, 0.1]):
        identity = {"writer": "template", "tools": toolbox_identity(spec, "toy:ground-plane", "toy:vqa", thresholds)}
        solver = ProgramSolver(TemplateWriter("correct"), box.tools(), identity=identity)
        assert solver.identity()["tools"] == identity["tools"]
        keys.append(cache_key(solver, [], "vsr", 0, 16, None))
    assert keys[0] != keys[1]
