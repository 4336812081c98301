"""Notebook 09 helpers: paper tables, the stage metrics readers (fed metrics.json files written in the notebooks'
layout), comparisons, claims, the Tables 10/11 consistency check against params.yaml, and DVC sweep parsing."""

import dataclasses
import json
import math
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from valor_lib import tables
from valor_lib.evaluation.summary import overall, summarize
from valor_lib.grounding.experiment import spread
from valor_lib.params import load_raw
from valor_lib.paths import MissingDataError
from valor_lib.policy.evaluate import seed_summary

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "data" / "paper"
BENCHES = ("omni3d-bench", "robospatial", "vsr", "countbenchqa")
SYSTEMS = {"base": "Qwen3-8B", "valor-rl": "VALOR-RL", "valor": "VALOR", "base-tuned-gd": "Qwen3-8B (tuned GD)"}
# strict accuracy (%) per system and benchmark, realised below as scored records (10 items each)
ACCURACY = {"base": (30, 40, 50, 60), "valor-rl": (50, 40, 50, 60), "valor": (50, 70, 60, 80),
            "base-tuned-gd": (30, 60, 60, 70)}


def _row(values):
    row = dict(zip(BENCHES, map(float, values), strict=True))
    return {**row, "overall": round(sum(row.values()) / len(row), 2)}


def _records(percent):
    hits = percent // 10
    return [{"score_strict": float(i < hits), "score_paper": float(i < hits), "answer_type": "int",
             "error_type": None, "format_ok": True, "tool_calls": []} for i in range(10)]


def stage_metrics():
    """Metrics dicts in the layout of the notebooks' ``stage.write_metrics`` calls (03-08)."""
    summaries = {s: {b: summarize(_records(a), benchmark=b) for b, a in zip(BENCHES, acc, strict=True)}
                 for s, acc in ACCURACY.items()}
    base = _row((30, 40, 50, 60))
    grpo = [_row((45, 40, 50, 60)), _row((55, 44, 50, 60))]
    sft = [_row((35, 40, 45, 55)), _row((37, 40, 45, 55))]
    return {
        "evaluation": {"systems": summaries, "overall": {s: overall(p) for s, p in summaries.items()},
                       "paper_rows": SYSTEMS},
        "grpo_training": {"queries": 120, "runs": {"0": {"steps": 15, "seconds": 9.0, "steps_per_minute": 100,
                                                         "prompts_left_out": 0}},
                          "base": base, "grpo": seed_summary(dict(enumerate(grpo))), "gain": {}},
        "sft_baseline": {"sft_samples": {"0": 40, "1": 41}, "runs": {"0": {"samples": 40, "steps": 5, "seconds": 1.0}},
                         "base": base, "grpo": seed_summary(dict(enumerate(grpo))),
                         "sft": seed_summary(dict(enumerate(sft)))},
        "detector_finetuning": {
            "pseudo_labels": {"verified": {"images": 50, "boxes": 300}, "unverified": {"images": 60, "boxes": 900}},
            "max_pseudo_labels": None, "config": {},
            "map": {"pretrained": spread([0.30]), "verified": spread([0.36, 0.34]), "unverified": spread([0.2, 0.22])},
            "accuracy": {"countbenchqa": {"pretrained": spread([60]), "verified": spread([75, 77]),
                                         "unverified": spread([50, 52])},
                         "vsr": {"pretrained": spread([50]), "verified": spread([58, 60]),
                                 "unverified": spread([52, 50])}},
            "accuracy_own_thresholds": {"countbenchqa": {"pretrained": spread([62]), "verified": spread([70, 72]),
                                                         "unverified": spread([64, 66])},
                                        "vsr": {"pretrained": spread([48]), "verified": spread([61, 63]),
                                                "unverified": spread([40, 42])}},
            "item_scores": {"common": {"vsr": {"ids": ["a", "b", "c", "d"], "pretrained": [1.0, 0.0, 0.0, 0.0],
                                               "verified": [1.0, 1.0, 0.5, 0.0], "unverified": [0.0, 0.0, 1.0, 0.0]}}},
            "training": {}, "detector": "results/detector_finetuning/detector"},
        "pseudo_labelling": {"precision": {"detections": 0.2, "coarse": 0.4, "crop": 0.55, "dedup": 0.8},
                             "recall": {}},
        "verifier_error_analysis": {"labels": "oracle", "outputs": 60,
                                    "agreement": {"rules-only": {"outputs": 60.0, "overall": 0.95, "exact": 0.9}},
                                    "paper_agreement": {"Gemini-2.5-Flash": 0.87, "Qwen3-8B": 0.15}},
    }


def write_results(root, metrics):
    for stage, values in metrics.items():
        path = root / "results" / stage / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"stage": stage, "metrics": values, "clients": {}, "provenance": {"seed": 0}}))


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.setenv("VALOR_ROOT", str(tmp_path))
    write_results(tmp_path, stage_metrics())
    return tables.read_toy_results()


def test_paper_tables_load_as_printed():
    t1 = tables.load_paper_table(1, PAPER)
    assert len(t1) == 80 and t1["value"].dtype == float
    assert tables.paper_row(t1, "VALOR")["countbenchqa"] == 75.9
    t10 = tables.load_paper_table(10, PAPER)
    assert dict(zip(t10["hyperparameter"], t10["value"], strict=True))["Learning rate"] == "1e-6"
    with pytest.raises(MissingDataError, match="table12"):
        tables.load_paper_table(12, PAPER)
    with pytest.raises(KeyError, match="nobody"):
        tables.paper_row(t1, "nobody")


def test_readers_parse_the_stage_layouts(toy):
    assert toy.evaluation["systems"]["valor"]["robospatial"] == 70.0
    assert toy.row("VALOR-RL").system == "valor-rl" and toy.row("GPT-4o") is None
    assert toy.grpo["queries"] == 120 and toy.grpo["grpo"]["omni3d-bench"] == 50.0
    assert toy.grpo["base"]["omni3d-bench"] == 30.0
    assert toy.sft["sft"]["omni3d-bench"] == 36.0 and toy.sft["grpo"]["omni3d-bench"] == 50.0
    assert toy.detector["map"]["verified"] == pytest.approx(0.35)
    assert toy.detector["accuracy"]["vsr"]["unverified"] == 51.0
    assert toy.detector["boxes"] == {"verified": 300, "unverified": 900}
    assert toy.precision["dedup"] == 0.8
    assert toy.agreement["toy"]["rules-only"]["overall"] == 0.95


def test_a_missing_stage_names_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("VALOR_ROOT", str(tmp_path))
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "08_evaluation.ipynb").write_text("{}")
    with pytest.raises(MissingDataError, match=r"dvc repro evaluation.*notebooks/08_evaluation\.ipynb"):
        tables.read_stage_metrics("evaluation")


def test_an_unknown_layout_is_an_error_naming_the_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("VALOR_ROOT", str(tmp_path))
    metrics = stage_metrics()
    del metrics["grpo_training"]["base"]
    write_results(tmp_path, metrics)
    with pytest.raises(ValueError, match=r"grpo_training.*base"):
        tables.read_toy_results()
    (tmp_path / "results" / "evaluation" / "metrics.json").write_text(json.dumps({"stage": "evaluation"}))
    with pytest.raises(ValueError, match="no 'metrics'"):
        tables.read_stage_metrics("evaluation")


def test_compare_table_sets_toy_rows_beside_the_paper(toy):
    t2 = tables.load_paper_table(2, PAPER)
    frame = tables.compare_table(t2, {m: toy.row(m) for m in ("VALOR-RL", "VALOR")})
    assert frame.loc[("VALOR", "valor"), ("RoboSpatial", "toy")] == 70.0
    assert frame.loc[("VALOR", "valor"), ("RoboSpatial", "paper")] == 69.5
    assert frame.loc[("GRIT", tables.PAPER_ONLY), ("VSR", "paper")] == 77.6
    assert math.isnan(frame.loc[("GRIT", tables.PAPER_ONLY), ("VSR", "toy")])
    # the toy run evaluated 4 of the 8 benchmarks: no toy average; the paper's is over all 8
    assert math.isnan(frame.loc[("VALOR", "valor"), ("Average", "toy")])
    assert frame.loc[("VALOR", "valor"), ("Average", "paper")] == round(t2[t2.method == "VALOR"].value.mean(), 2)
    t3 = tables.compare_table(tables.load_paper_table(3, PAPER), {"VALOR": toy.row("VALOR")}, not_comparable=["GQA"])
    assert t3.loc[("VALOR", "valor"), ("Omni3D-Bench", "toy")] == 50.0
    assert math.isnan(t3.loc[("VALOR", "valor"), ("GQA", "toy")])
    flat = tables.flat(frame)
    assert {"method", "toy system", "Omni3D-Bench paper", "Omni3D-Bench toy"} <= set(flat.columns)
    bars = tables.accuracy_rows(frame)
    assert set(bars["system"]) == {"valor-rl", "valor"} and set(bars["paper_row"]) == {"VALOR-RL", "VALOR"}
    with pytest.raises(ValueError, match="Gemma"):
        tables.compare_table(t2, {"Gemma": toy.row("VALOR")})


def test_training_size_table_keeps_paper_and_toy_rows_apart(toy):
    sweep = tables.pd.DataFrame([{"experiment": "tiny-exp", "queries": 30, "omni3d-bench": 41.0}])
    frame = tables.training_size_table(tables.load_paper_table(5, PAPER), toy, sweep)
    paper = frame[frame.source == "paper"]
    assert list(paper["training queries"].dropna()) == [40, 160, 400, 800]
    mine = frame[frame.source == "toy (this run)"].set_index("method")
    assert mine.loc["Qwen3-8B", "Omni3D-Bench"] == 30.0 and mine.loc["VALOR-RL", "training queries"] == 120
    assert frame.iloc[-1]["source"] == "toy (dvc exp tiny-exp)"


def test_claims_compare_directions(toy):
    table = tables.claims_table(tables.claims(toy, ["robospatial", "vsr", "countbenchqa"], PAPER)).set_index("claim")
    assert len(table) == 12 and table["agrees"].map(lambda v: v in (True, False)).all()
    assert table["counted"].sum() == 11  # the own-threshold reading of the ablation is a sensitivity check
    first = table.loc["VALOR-RL beats its untrained base LLM (Qwen3-8B)"]
    # restricted to the 4 benchmarks the toy run measured, paper and toy alike
    t1 = tables.load_paper_table(1, PAPER)
    rl, base = tables.paper_row(t1, "VALOR-RL"), tables.paper_row(t1, "Qwen3-8B")
    assert first["paper delta"] == round(sum(rl[b] - base[b] for b in BENCHES) / 4, 2)
    assert first["toy delta"] == 5.0 and first["agrees"]
    grounding = table.loc["VALOR beats VALOR-RL on grounding-heavy benchmarks"]
    assert grounding["toy delta"] == round((30 + 10 + 20) / 3, 2) and grounding["agrees"]
    omni = table.loc["With the same tuned detector, trained reasoning wins on Omni3D-Bench"]
    assert omni["paper delta"] == 6.1 and omni["toy delta"] == 20.0
    rl_vs_sft = table.loc["RL beats SFT on the same verifier-filtered traces"]
    assert rl_vs_sft["toy delta"] > 0 and rl_vs_sft["agrees"]
    verified = table.loc["Verified pseudo-labels beat unverified ones on grounding-heavy benchmarks"]
    assert math.isnan(verified["paper delta"]) and verified["toy delta"] == round((76 + 59 - 51 - 51) / 2, 2)
    own_claim = ("Verified pseudo-labels beat unverified ones on grounding-heavy benchmarks, each detector at its "
                 "own thresholds")
    assert table.loc[own_claim, "toy delta"] == round((71 + 62 - 65 - 41) / 2, 2) and table.loc[own_claim, "agrees"]
    older_metrics = {k: v for k, v in stage_metrics()["detector_finetuning"].items() if k != "accuracy_own_thresholds"}
    older = dataclasses.replace(toy, detector=tables.parse_detector(older_metrics))  # metrics from before own pairs
    assert older.detector["accuracy_own"] == {}
    assert {c.claim: c for c in tables.claims(older, ["vsr"], PAPER)}[own_claim].agrees is None
    assert table.loc["Fine-tuning on verified pseudo-labels keeps held-out detection (COCO val 48.4 -> 48.7)",
                     "toy delta"] == 5.0
    assert table.loc["Verification stages raise pseudo-label precision (0.45 -> 0.75)", "paper delta"] == 30.0
    assert tables.claims_figure(table.reset_index()) is not None


def test_a_toy_result_against_the_paper_disagrees():
    assert tables.Claim("x", "s", "m", 2.0, -1.0).agrees is False
    assert tables.Claim("x", "s", "m", -2.0, -1.0).agrees is True
    assert tables.Claim("x", "s", "m", None, 0.0).agrees is False
    assert tables.Claim("x", "s", "m", 2.0, None).agrees is None


def test_grounding_points_and_figure(toy):
    points = tables.grounding_points(toy, ["robospatial", "vsr", "countbenchqa"])
    assert list(points.columns) == ["pseudo-labels", "mAP x 100", "VSR", "CountBenchQA"]
    assert points.loc["pretrained", "pseudo-labels"] == 0 and points.loc["unverified", "VSR"] == 51.0
    assert tables.grounding_figure(points) is not None


@pytest.mark.parametrize(("text", "value"), [("1e-6", 1e-6), ("Max norm 0.1", 0.1), ("[4]", [4]), ("True", True),
                                             ("StepLR", "StepLR"), ("swin_T_224_1k", "swin_T_224_1k")])
def test_paper_hyperparameters_parse(text, value):
    assert tables.parse_paper_value(text) == value


def test_same_value_is_strict_about_types():
    assert tables.same_value(1e-6, 1.0e-6) and tables.same_value(64, 64) and tables.same_value([4], [4])
    assert not tables.same_value(True, 1) and not tables.same_value(1, True)
    assert not tables.same_value(1e-6, 1e-5) and not tables.same_value(4, "4 (capped: max_steps=15)")
    assert tables.same_value("vLLM", "vllm") and not tables.same_value([4], None)


def test_full_profile_matches_tables_10_and_11():
    """The consistency check: params.yaml with profiles.full applied trains with the paper's hyperparameters."""
    check = tables.hyperparameter_check(load_raw(ROOT / "params.yaml"), "full", PAPER)
    assert len(check) == 27 and not (check["status"] == "unmapped").any()
    assert not (check["status"] == "MISMATCH").any(), check[check["status"] == "MISMATCH"].to_string()
    assert set(check.loc[check["hyperparameter"] == "Optimizer", "status"]) == {"fixed in code"}
    assert (check["status"] == "match").sum() == 23


def test_a_changed_hyperparameter_is_flagged():
    raw = load_raw(ROOT / "params.yaml")
    raw["profiles"]["full"]["grpo_training"]["lr"] = 1.0e-5
    raw["profiles"]["full"]["grpo_training"]["max_steps"] = 100
    raw["profiles"]["full"]["detector_finetuning"]["preset"] = "authors-code"
    check = tables.hyperparameter_check(raw, "full", PAPER)
    flagged = set(zip(check.loc[check.status == "MISMATCH", "table"], check.loc[check.status == "MISMATCH",
                                                                                 "hyperparameter"], strict=True))
    assert flagged == {("Table 10", "Learning rate"), ("Table 10", "Epochs"), ("Table 11", "Learning rate"),
                       ("Table 11", "Epochs"), ("Table 11", "Scheduler"), ("Table 11", "Step schedule")}


def _exp_show(metrics, params):
    """A ``dvc exp show --json`` document (DVC 3 layout): the workspace, and a baseline with experiments
    (name -> (params, metrics[, queue state]))."""
    def rev(name, run_params, run_metrics):
        return {"rev": "ab12cd34ef", "name": name, "data": {
            "rev": "ab12cd34ef", "timestamp": None, "params": {"params.yaml": {"data": run_params}},
            "metrics": {path: {"data": data} for path, data in run_metrics.items()}, "deps": {}, "outs": {}},
            "error": None, "experiments": None}

    def group(name, run_params, run_metrics, state=None):
        return {"revs": [rev(name, run_params, run_metrics)], "executor": {"state": state} if state else None,
                "name": name}

    experiments = [group(name, *spec) for name, spec in metrics.items()]
    return [{"rev": "workspace", "name": None, "data": {"params": {"params.yaml": {"data": params}}, "metrics": {}},
             "error": None, "experiments": None},
            {"rev": "1fe6980", "name": "main", "data": {}, "error": None, "experiments": experiments}]


def test_sweep_points_from_dvc_exp_show():
    metrics = stage_metrics()
    small = dict(metrics["grpo_training"], queries=30)
    entries = _exp_show({
        "exp-a": ({"grpo_training": {"max_queries": 30}}, {"results/grpo_training/metrics.json": {"metrics": small}}),
        "exp-queued": ({"grpo_training": {"max_queries": 60}}, {"results/grpo_training/metrics.json": None}),
        "exp-other": ({"grpo_training": {"max_queries": None}, "detector_finetuning": {"max_pseudo_labels": 100}},
                      {"results/detector_finetuning/metrics.json": {"metrics": metrics["detector_finetuning"]}}),
    }, {"grpo_training": {"max_queries": None}})
    points = tables.sweep_points(entries, "grpo_training.max_queries", "grpo_training", tables.training_size_point)
    assert points.to_dict("records") == [{"experiment": "exp-a", "grpo_training.max_queries": 30, "queries": 30,
                                          "omni3d-bench": 50.0}]
    boxes = tables.sweep_points(entries, "detector_finetuning.max_pseudo_labels", "detector_finetuning",
                                tables.pseudo_label_point)
    assert boxes.to_dict("records") == [{"experiment": "exp-other", "detector_finetuning.max_pseudo_labels": 100,
                                         "pseudo-labels": 300, "mAP x 100": 35.0, "CountBenchQA": 76.0,
                                         "VSR": 59.0}]
    assert tables.sweep_points([], "grpo_training.max_queries", "grpo_training", tables.training_size_point).empty


def test_detector_draws_set_each_draw_beside_this_run(toy):
    metrics = stage_metrics()["detector_finetuning"]
    other = {**metrics, "map": {"pretrained": spread([0.10]), "verified": spread([0.16]), "unverified": spread([0.08])},
             "accuracy": {"vsr": {"pretrained": spread([50]), "verified": spread([54]), "unverified": spread([70])}},
             "accuracy_own_thresholds": None}  # a stage that chose no own thresholds
    entries = _exp_show({
        "exp-draw1": ({"toy_world": {"detector": {"seed": 1}}},
                      {"results/detector_finetuning/metrics.json": {"metrics": other}}),
        "exp-draw2": ({"toy_world": {"detector": {"seed": 2}}}, {"results/detector_finetuning/metrics.json": None}),
        "exp-labels": ({"toy_world": {"detector": {"seed": None}}, "detector_finetuning": {"max_pseudo_labels": 9}},
                       {"results/detector_finetuning/metrics.json": {"metrics": metrics}}),
    }, {"toy_world": {"detector": {"seed": None}}})
    draws = tables.detector_draws(toy, entries, ["vsr"])
    assert list(draws.index.get_level_values("draw").unique()) == ["this run", "seed 1 (exp exp-draw1)"]  # 2: queued
    assert draws.loc[("seed 1 (exp exp-draw1)", "unverified"), "VSR"] == 70.0
    assert draws.loc[("this run", "verified"), "mAP x 100"] == 35.0
    assert draws.loc[("this run", "verified"), tables.OWN_MEAN] == 62.0
    assert draws.loc[("this run", "verified"), tables.SHARED_MEAN] == 59.0
    assert draws.loc[("seed 1 (exp exp-draw1)", "verified"), tables.OWN_MEAN] is None  # its metrics have none
    differences = tables.draw_differences(draws)
    assert differences.loc["this run", f"{tables.SHARED_MEAN}: verified - unverified"] == pytest.approx(59.0 - 51.0)
    assert differences.loc["this run", f"{tables.OWN_MEAN}: verified - unverified"] == pytest.approx(62.0 - 41.0)
    drawn = differences.loc["seed 1 (exp exp-draw1)"]
    assert math.isnan(drawn[f"{tables.OWN_MEAN}: verified - unverified"])
    assert drawn[f"{tables.SHARED_MEAN}: verified - unverified"] == pytest.approx(-16.0)
    assert drawn["mAP x 100: verified - pretrained"] == pytest.approx(6.0)
    assert drawn["mAP x 100: unverified - pretrained"] == pytest.approx(-2.0)
    verified_only = tables.draw_differences(draws.drop(index="unverified", level="detector"))
    assert list(verified_only.columns) == ["mAP x 100: verified - pretrained", f"{tables.SHARED_MEAN}: verified - "
                                           "pretrained", f"{tables.OWN_MEAN}: verified - pretrained"]


def test_pooled_grounding_pools_the_draws_that_kept_item_scores(toy):
    metrics = stage_metrics()["detector_finetuning"]
    scores = {"vsr": {"ids": ["a", "b", "c", "d"], "pretrained": [0.0] * 4, "verified": [0.0] * 4,
                      "unverified": [1.0] * 4}}
    entries = _exp_show({
        "exp-draw1": ({"toy_world": {"detector": {"seed": 1}}},
                      {"results/detector_finetuning/metrics.json": {"metrics": {
                          **metrics, "item_scores": {"common": scores, "own": scores}}}}),
        "exp-old": ({"toy_world": {"detector": {"seed": 2}}},  # written before item scores were kept
                    {"results/detector_finetuning/metrics.json": {"metrics": {**metrics, "item_scores": None}}}),
    }, {"toy_world": {"detector": {"seed": None}}})
    pooled = tables.pooled_grounding(toy, entries, ["vsr", "countbenchqa"]).set_index(["thresholds", "comparison"])
    # countbenchqa has accuracies but no item scores in these metrics: no comparison is made over both
    assert pooled.empty
    pooled = tables.pooled_grounding(toy, entries, ["vsr"]).set_index(["thresholds", "comparison"])
    common = pooled.loc[("common thresholds", "verified - pretrained")]
    # this run: +37.5 (items b +100, c +50), draw 1: 0; the mean of the draws
    assert common["change (points)"] == pytest.approx(18.75) and common["draws"] == 2 and common["items"] == 4
    assert common["by draw"] == [37.5, 0.0]
    own = pooled.loc[("own thresholds", "unverified - pretrained")]
    assert own["draws"] == 1 and own["change (points)"] == 100.0 and own["verdict"] == "unverified > pretrained"


def test_an_experiments_metrics_are_read_whole_from_its_commit(tmp_path, monkeypatch):
    import subprocess

    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    git("config", "commit.gpgsign", "false")
    path = "results/detector_finetuning/metrics.json"
    (tmp_path / path).parent.mkdir(parents=True)
    whole = {"metrics": {"item_scores": {"common": {"vsr": {"ids": ["a"], "pretrained": [1.0]}}}, "ci95": [0, 1]}}
    (tmp_path / path).write_text(json.dumps(whole))
    git("add", "-A")
    git("commit", "-qm", "experiment")
    rev = git("rev-parse", "HEAD")
    monkeypatch.setattr(tables, "repo_root", lambda: tmp_path)
    assert tables.committed_json(rev, path) == whole
    assert tables.committed_json(rev, "results/nothing.json") is None
    assert tables.committed_json(None, path) is None
    assert tables.committed_json("--output=/tmp/x", path) is None  # not a commit id: git is not asked
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / path).write_text(json.dumps({"no": "metrics"}))
    git("add", "-A")
    git("commit", "-qm", "odd files")
    later = git("rev-parse", "HEAD")
    assert tables.committed_json(later, "list.json") is None and tables.committed_json(later, "broken.json") is None
    # dvc exp show drops the lists; the committed file wins over its filtered copy
    entries = _exp_show({"exp-draw1": ({"toy_world": {"detector": {"seed": 1}}}, {path: {"metrics": {}}}),
                         "exp-draw2": ({"toy_world": {"detector": {"seed": 2}}}, {"results/x.json": {"metrics": {}}})},
                        {"toy_world": {"detector": {"seed": None}}})
    entries[1]["experiments"][0]["revs"][0]["rev"] = rev
    entries[1]["experiments"][1]["revs"][0]["rev"] = later
    filtered = {"metrics": {"map": 1.0}}  # where the committed file holds no metrics: what dvc exp show read
    entries[1]["experiments"][1]["revs"][0]["data"]["metrics"] = {path: {"data": filtered}}
    assert list(tables._finished(entries, tables.DETECTOR_SEED, "detector_finetuning")) == [
        ("exp-draw1", 1, whole["metrics"]), ("exp-draw2", 2, filtered["metrics"])]


def test_claims_over_draws_mark_each_claim_per_draw_and_count_those_that_hold(toy):
    this_run = [tables.Claim("A beats B", "Table 1", "mean", 1.5, 0.4),
                tables.Claim("C beats D", "Table 8", "mean", 2.0, -1.0),
                tables.Claim("E beats F", "§3", "mAP", None, None),
                tables.Claim("E beats F, measured otherwise", "§3", "mAP", None, 2.0, counted=False)]
    drawn = {"A beats B": {"paper_delta": 1.5, "toy_delta": -0.25, "agrees": False},
             "C beats D": {"paper_delta": 2.0, "toy_delta": 3.0, "agrees": True},
             "E beats F": {"paper_delta": None, "toy_delta": 1.0, "agrees": True},
             "E beats F, measured otherwise": {"paper_delta": None, "toy_delta": 1.0, "agrees": True}}
    entries = _exp_show({
        "exp-draw1": ({"toy_world": {"detector": {"seed": 1}}},
                      {"results/paper_tables/metrics.json": {"metrics": {"claims": drawn}}}),
        "exp-draw2": ({"toy_world": {"detector": {"seed": 2}}}, {"results/paper_tables/metrics.json": None}),
        "exp-draw3": ({"toy_world": {"detector": {"seed": 3}}},  # running: it shows its baseline's metrics
                      {"results/paper_tables/metrics.json": {"metrics": {"claims": drawn}}}, "running"),
        "exp-draw4": ({"toy_world": {"detector": {"seed": 4}}},
                      {"results/paper_tables/metrics.json": {"metrics": {"claims": drawn}}}, "failed"),
    }, {"toy_world": {"detector": {"seed": None}}})
    table = tables.claims_over_draws(this_run, entries)
    assert list(table.columns) == ["this run", "seed 1 (exp exp-draw1)"]  # draws 2-4 have not finished
    assert table.loc["A beats B"].tolist() == ["holds +0.40", "fails -0.25"]
    assert table.loc["E beats F"].tolist() == ["-", "holds +1.00"]
    assert table.loc["E beats F, measured otherwise"].tolist() == ["holds +2.00", "holds +1.00"]  # shown, not counted
    assert table.loc["claims holding"].tolist() == ["1 of 2", "2 of 3"]
    assert tables.claim_count(this_run) == (1, 2)
    assert tables.claims_over_draws(this_run, []).columns.tolist() == ["this run"]


def test_the_sweep_sources_of_a_stage_are_its_and_its_upstream_stages_code_and_inputs():
    sources = tables.upstream_sources("detector_finetuning")
    assert {"notebooks/00_toy_world.ipynb", "notebooks/06_pseudo_labelling.ipynb",
            "notebooks/07_detector_finetuning.ipynb", "valor_lib/detection", "data/pretrained/toy-detector"} <= sources
    assert not {"notebooks/08_evaluation.ipynb", "notebooks/09_paper_tables.ipynb", "data/toy"} & sources
    assert not any(path.startswith("results/") for path in sources)
    assert "notebooks/09_paper_tables.ipynb" in tables.upstream_sources("paper_tables")


def test_experiments_of_other_commits_count_only_with_the_same_code_and_other_parameters():
    def run(seed, deps, **params):
        return {"params": {"toy_world": {"detector": {"seed": seed}}, **params}, "deps": deps}

    now = {"notebooks/07_detector_finetuning.ipynb": "a1", "notebooks/09_paper_tables.ipynb": "b1",
           "valor_lib/detection": "c1.dir", "results/detector_finetuning/metrics.json": "d1"}
    workspace = run(None, now)
    seed = tables.DETECTOR_SEED
    assert tables.comparable(run(1, {**now, "results/detector_finetuning/metrics.json": "d2"}), workspace, seed,
                             "detector_finetuning")
    notebook_09_edited = run(1, {**now, "notebooks/09_paper_tables.ipynb": "b2"})
    assert tables.comparable(notebook_09_edited, workspace, seed, "detector_finetuning")
    assert not tables.comparable(notebook_09_edited, workspace, seed, "paper_tables")
    assert not tables.comparable(run(1, {**now, "valor_lib/detection": "c2.dir"}), workspace, seed,
                                 "detector_finetuning")
    assert not tables.comparable(run(1, now, detector_finetuning={"lr": 1e-3}), workspace, seed,
                                 "detector_finetuning")
    assert tables.comparable(run(1, now), None, seed, "detector_finetuning")


def test_sweep_commands():
    commands = tables.sweep_commands("grpo_training.max_queries", [40, 160], "-S common.profile=full")
    assert commands[0] == "dvc exp run --queue -S grpo_training.max_queries=40 -S common.profile=full"
    assert commands[-2:] == ["dvc exp run --run-all --jobs 1", "dvc exp show --json"]
