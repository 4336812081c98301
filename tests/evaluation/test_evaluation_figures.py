"""Notebook 08 helpers: accuracy next to the paper, error tables, galleries with the boxes programs used."""

import matplotlib

matplotlib.use("Agg")

import pytest
from eval_helpers import CountingWriter, fake_detect

from valor_lib.evaluation import figures
from valor_lib.evaluation.benchmarks import load
from valor_lib.evaluation.config import EvaluationParams
from valor_lib.evaluation.runner import evaluate
from valor_lib.evaluation.solvers import ProgramSolver
from valor_lib.evaluation.summary import overall
from valor_lib.params import apply_profile, load_raw, validate_section


@pytest.fixture
def runs(toy_source, tmp_path):
    solver = ProgramSolver(CountingWriter(), {"gd_detect": fake_detect}, identity={"writer": "w"})
    out = {}
    for bench in ("tallyqa", "vsr"):
        items = load(bench, toy_source)
        out[bench] = (items, evaluate(solver, items, bench, cache_root=tmp_path, progress=False))
    return out


def test_paper_values_come_from_data_paper():
    values = figures.paper_values(["VALOR", "Qwen3-8B (tuned GD)", "nobody"])
    assert values["VALOR"]["countbenchqa"] == 75.9 and values["Qwen3-8B (tuned GD)"]["vsr"] == 72.4
    assert "nobody" not in values and set(values["VALOR"]) == set(figures.PAPER_NAMES)


def test_tables_and_figures(runs):
    summaries = {"valor": {b: run.summary for b, (_, run) in runs.items()}}
    table = figures.accuracy_table(summaries, {"valor": "VALOR"})
    assert list(table["benchmark"]) == ["tallyqa", "vsr"] and list(table["paper_value"]) == [51.0, 75.6]
    assert figures.accuracy_bars(table).axes
    errors = figures.error_table(summaries)
    assert errors.loc[("valor", "tallyqa"), "ok"] == len(runs["tallyqa"][0])
    assert figures.error_bars(errors).axes
    assert overall(summaries["valor"])["benchmarks"] == 2
    row = figures.throughput_table(summaries).loc["valor"]
    assert row["items"] == sum(len(items) for items, _ in runs.values()) and row["benchmarks from cache"] == "0/2"
    assert row["tool calls/item"] > 0 and row["format ok %"] == 100.0


def test_gallery_draws_detector_boxes(runs):
    items, run = runs["tallyqa"]
    with_boxes = next(r for r in run.records if r["tool_calls"][0]["result"])
    boxes = figures.record_boxes(with_boxes)
    assert [b["bbox"] for b in boxes] == [d["bbox"] for d in with_boxes["tool_calls"][0]["result"]]
    assert boxes[0]["label"] == with_boxes["question"].split()[2]
    assert figures.record_boxes({"tool_calls": [], "boxes": [{"label": "cup", "box": [1, 2, 3, 4]}]})[0]["bbox"] == [1, 2, 3, 4]
    records = {r["id"]: r for r in run.records}
    picked = figures.pick_examples(list(records.values()), 3, success=False)
    assert len(picked) <= 3 and all(r["score_strict"] < 1 for r in picked)
    fig = figures.gallery(picked, {i.id: i for i in items}, "failures")
    assert len(fig.axes) == 2 * len(picked)
    assert figures.gallery([], {}, "nothing").axes


@pytest.mark.parametrize("profile, tables", [("toy", "files"), ("full", "hf")])
def test_params_section_validates(profile, tables):
    sections = apply_profile(load_raw(), profile)
    params = validate_section("evaluation", sections["evaluation"])
    assert isinstance(params, EvaluationParams) and params.data.source().tables == tables
    assert {s.paper_method for s in params.systems} <= set(figures.paper_values([s.paper_method for s in params.systems]))
