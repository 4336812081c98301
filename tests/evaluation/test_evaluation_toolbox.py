"""The runner with the real toolbox (a tiny, untrained GroundingDINO of the real class, ground-plane depth,
toy VQA) and template-written programs: tool calls come back with their results, in the tools' format."""

import numpy as np
import pytest

from valor_lib.evaluation.benchmarks import load
from valor_lib.evaluation.runner import evaluate
from valor_lib.evaluation.solvers import ProgramSolver
from valor_lib.evaluation.systems import tool_cache_stats, toolbox_identity
from valor_lib.policy.template_programmer import TemplateProgrammer
from valor_lib.toyworld.vocab import CATEGORIES, COLORS


class TemplateWriter:
    """Correct programs from the toy template programmer (a ProgramWriter stand-in)."""

    def __init__(self):
        self.programmer = TemplateProgrammer(flaw_rate=0.0)

    def write(self, questions, n=1, seed=None):
        rng = np.random.default_rng(seed)
        return [[self.programmer.sample(q, rng).text for _ in range(n)] for q in questions]


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
    identity = {"writer": "template", "tools": toolbox_identity(spec, "toy:ground-plane", "toy:vqa")}
    assert identity["tools"]["detector"]["weights"]
    solver = ProgramSolver(TemplateWriter(), box.tools(), identity=identity, workers=2,
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
