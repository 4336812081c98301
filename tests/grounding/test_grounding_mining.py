"""Mining: source formats, programs (resumable), per-image prompts, low-threshold detections with materialised
images; the experiment helpers of the fine-tuning stage."""

import json

import pytest
import torch
from PIL import Image

from valor_lib.detection.inference import GroundingDinoDetector, Thresholds
from valor_lib.detection.tiny import TinyDetectorConfig, build_tiny_detector
from valor_lib.evaluation.records import ImageRef
from valor_lib.grounding.experiment import (
    SharedPrograms,
    claim_rows,
    claim_summary,
    run_dir,
    spread,
)
from valor_lib.grounding.mining import detect_candidates, image_jobs, program_stats, write_programs
from valor_lib.grounding.sources import (
    ExclusionParams,
    MiningItem,
    MiningSourceError,
    MiningSourceParams,
    excluded_names,
    load_source,
)


class Writer:
    """Writes a program detecting the last word of each question; counts calls."""

    def __init__(self):
        self.calls = []

    def write(self, questions, n=1, seed=None):
        self.calls.append((list(questions), seed))
        out = []
        for q in questions:
            noun = q.rstrip("?").split()[-1]
            if noun == "broken":
                out.append(["<plan>x</plan><answer>final_answer = (</answer>"])
            else:
                code = f'n = "{noun}"\\nboxes = gd_detect(image, n + ", red " + n)\\nfinal_answer = len(boxes)'
                out.append([f"<plan>1. count</plan>\n<answer>\n{code}\n</answer>".replace("\\n", "\n")])
        return out


def _items(tmp_path, questions):
    items = []
    for i, (image, question) in enumerate(questions):
        path = tmp_path / image
        if not path.exists():
            Image.new("RGB", (64, 48), (i * 20, 90, 80)).save(path)
        items.append(MiningItem(f"src/{i:05d}", "src", question, image, ImageRef(path=path)))
    return items


def test_programs_are_written_once_and_resumed(tmp_path):
    items = _items(tmp_path, [("a.png", "How many chairs?"), ("a.png", "Is it broken"), ("b.png", "Any lamps?")])
    writer = Writer()
    programs = write_programs(writer, items, tmp_path / "p.jsonl", seed=5, batch_size=2, progress=False)
    assert [c[1] for c in writer.calls] == [5, 7]  # one seed per fixed batch
    assert programs["src/00000"]["queries"]["prompts"] == ["chairs, red chairs"]
    assert programs["src/00000"]["queries"]["phrases"] == ["chair", "red chair"]
    assert programs["src/00001"]["queries"]["error"].startswith("SyntaxError")
    again = write_programs(writer, items, tmp_path / "p.jsonl", seed=5, batch_size=2, progress=False)
    assert len(writer.calls) == 2 and again == programs
    stats = program_stats(programs)[0]
    assert (stats["questions"], stats["with_queries"], stats["unparsable"]) == (3, 2, 1)
    jobs = image_jobs(items, programs)
    assert [(j.key, j.prompts, j.question_ids) for j in jobs] == [
        ("src/a.png", ["chairs, red chairs"], ["src/00000", "src/00001"]), ("src/b.png", ["lamps, red lamps"], ["src/00002"])]


def test_detections_pool_each_images_prompts_and_materialise_images(tmp_path):
    items = _items(tmp_path, [("a.png", "How many chairs?"), ("b.png", "Any lamps?"), ("missing.png", "Any vases?")])
    (tmp_path / "missing.png").unlink()
    programs = write_programs(Writer(), items, tmp_path / "p.jsonl", progress=False)
    torch.manual_seed(0)
    model, processor = build_tiny_detector(["chair", "chairs", "lamp", "lamps", "red", "vase", "vases"],
                                           TinyDetectorConfig(d_model=32, num_queries=6, ffn_dim=32, heads=2,
                                                              max_text_len=24, text_hidden=16,
                                                              backbone_channels=[8, 16, 32], image_size=(48, 64)))
    detector = GroundingDinoDetector(model, processor, device="cpu")
    candidates = detect_candidates(detector, image_jobs(items, programs), tmp_path / "c.jsonl", tmp_path / "img",
                                   Thresholds(0.0, 0.0), max_per_prompt=3, progress=False)
    a = candidates["src/a.png"]
    assert a["file"] == "src/a.png" and (tmp_path / "img" / "src" / "a.png").is_file()
    assert a["queried"] == ["chair", "red chair"] and 1 <= len(a["boxes"]) <= 3
    assert {b["label"] for b in a["boxes"]} <= {"chair", "red chair"} and a["boxes"][0]["box_id"] == "src/a.png#0"
    broken = candidates["src/missing.png"]
    assert broken["file"] is None and broken["boxes"] == [] and "missing" in broken["error"]
    again = detect_candidates(None, image_jobs(items, programs), tmp_path / "c.jsonl", tmp_path / "img",
                              Thresholds(0.0, 0.0), progress=False)
    assert again == candidates  # resumed: the detector is not called again


def test_source_formats(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "list.json").write_text(json.dumps([{"question": "How many?", "image": "VG_100K/1.jpg"}]))
    (tmp_path / "gqa.json").write_text(json.dumps({"q7": {"imageId": "n1", "question": "What is it?"}}))
    (tmp_path / "q.jsonl").write_text(json.dumps({"id": "gen/x", "image": "img/x.png", "question": "Q?",
                                                  "source": "generated"}) + "\n" + json.dumps(
        {"id": "omni/y", "image": "img/y.png", "question": "R?", "source": "omni3d-bench"}) + "\n")
    grit = load_source(MiningSourceParams(name="tally", format="grit", path=str(tmp_path / "list.json"),
                                          images=str(tmp_path)))
    assert grit[0].image.path == tmp_path / "VG_100K/1.jpg" and grit[0].id == "tally/00000"
    gqa = load_source(MiningSourceParams(name="gqa", format="gqa", path=str(tmp_path / "gqa.json"), images="x"))
    assert gqa[0].image_name == "n1.jpg" and gqa[0].id == "gqa/q7"
    gen = load_source(MiningSourceParams(name="gen", format="queries", path=str(tmp_path / "q.jsonl"),
                                         keep_source="generated"))
    assert [g.id for g in gen] == ["gen/x"]
    (tmp_path / "bad.jsonl").write_text('{"question": "no image"}\n')
    with pytest.raises(MiningSourceError, match="image"):
        load_source(MiningSourceParams(name="b", format="grit", path=str(tmp_path / "bad.jsonl")))


def test_visual_genome_images_of_excluded_coco_images_are_excluded(tmp_path):
    (tmp_path / "val.json").write_text(json.dumps({"images": [{"id": 42, "file_name": "000000000042.jpg"}]}))
    (tmp_path / "vg.json").write_text(json.dumps([{"image_id": 7, "coco_id": 42}, {"image_id": 8, "coco_id": None}]))
    names = excluded_names(ExclusionParams(coco=[str(tmp_path / "val.json")], names=["a/b.png"],
                                           vg_image_data=str(tmp_path / "vg.json")))
    assert names == {"000000000042.jpg", "b.png", "7.jpg"}


def test_experiment_helpers(tmp_path):
    class Counting:
        calls = 0

        def write(self, questions, n=1, seed=None):
            Counting.calls += 1
            return [[f"{q}-{seed}"] for q in questions]

    shared = SharedPrograms(Counting())
    assert shared.write(["a", "b"], seed=1) == shared.write(["a", "b"], seed=1) == [["a-1"], ["b-1"]]
    assert Counting.calls == 1 and shared.write(["a"], seed=2) == [["a-2"]] and Counting.calls == 2
    assert run_dir(tmp_path, "verified", 0, 0) == tmp_path / "detector"
    assert run_dir(tmp_path, "verified", 1, 0) == tmp_path / "runs" / "verified-seed1"
    assert spread([0.1, 0.3])["mean"] == 0.2 and spread([0.5])["std"] == 0.0
    rows = claim_rows({"pretrained": [0.1], "verified": [0.2, 0.4]}, {"vsr": {"pretrained": [50.0], "verified": [60.0, 70.0]}})
    assert rows[0]["mAP"] == "0.1" and rows[1]["mAP"].startswith("0.3 ± 0.1") and rows[1]["mean acc %"] == 65.0
    summary = claim_summary({"pretrained": [0.1], "verified": [0.2, 0.4], "unverified": [0.05, 0.2]},
                            {"vsr": {"pretrained": [50.0], "verified": [60.0, 70.0], "unverified": [40.0, 70.0]}})
    assert summary["verified"] == {"map_gain": 0.2, "raises_map": True, "accuracy_gain": {"vsr": 15.0},
                                   "raises_accuracy": {"vsr": True}}
    assert summary["unverified"]["raises_map"] is False and summary["unverified"]["raises_accuracy"] == {"vsr": False}


@pytest.mark.slow
def test_reference_programs_run_with_each_detector(small_world, detector_dir, tmp_path):
    from valor_lib.grounding.experiment import reference_runs
    from valor_lib.params import CommonParams, apply_profile, load_raw, validate_section

    raw = apply_profile(load_raw(), "toy")
    common = CommonParams(**{**raw["common"], "device": "cpu"})
    p = validate_section("detector_finetuning", raw["detector_finetuning"]).evaluation
    data = p.data.model_copy(update={"root": str(small_world / "benchmarks"), "cache_dir": str(tmp_path / "hf")})
    p = p.model_copy(update={"data": data, "benchmarks": ["countbenchqa", "vsr"]})
    runs = reference_runs({"tiny": f"groundingdino-hf:{detector_dir}"}, p, common, seed=0, progress=False)
    assert set(runs["tiny"]) == {"countbenchqa", "vsr"}
    records = [r for run in runs["tiny"].values() for r in run.records]
    assert records and all(r["format_ok"] and "gd_detect(image" in r["code"] for r in records)


def test_accuracy_by_kind_groups_seeds_of_a_variant():
    from types import SimpleNamespace

    from valor_lib.grounding.experiment import accuracy_by_kind

    def run(acc):
        return SimpleNamespace(summary={"accuracy_strict": acc})

    runs = {"pretrained": {"vsr": run(10.0)}, "verified-seed0": {"vsr": run(20.0)},
            "verified-seed1": {"vsr": run(30.0)}, "unverified-seed0": {"vsr": run(5.0)}}
    assert accuracy_by_kind(runs) == {"vsr": {"pretrained": [10.0], "verified": [20.0, 30.0], "unverified": [5.0]}}


def test_empty_detection_rows_read_each_runs_records():
    from types import SimpleNamespace

    from valor_lib.evaluation.summary import summarize
    from valor_lib.grounding.experiment import empty_detection_rows

    def run(results, scores):
        records = [{"score_strict": score, "score_paper": score,
                    "tool_calls": [{"name": "gd_detect", "ok": True, "result": result}]}
                   for result, score in zip(results, scores, strict=True)]
        return SimpleNamespace(summary=summarize(records))

    box = {"bbox": [0, 0, 2, 2], "label": "cup", "score": 0.4}
    runs = {"pretrained": {"vsr": run([[], [], [box], [box]], [1.0, 0.0, 1.0, 1.0])},
            "unverified-seed0": {"vsr": run([[box]] * 4, [1.0, 0.0, 1.0, 0.0])}}
    rows = {r["detector"]: r for r in empty_detection_rows(runs)}
    assert rows["pretrained"]["items_with_empty"] == 50.0 and rows["pretrained"]["accuracy"] == 75.0
    assert rows["pretrained"]["accuracy_with_empty"] == 50.0 and rows["pretrained"]["accuracy_without_empty"] == 100.0
    assert rows["unverified-seed0"]["items_with_empty"] == 0.0 and rows["unverified-seed0"]["accuracy_with_empty"] is None


def test_threshold_sweep_runs_the_same_programs_at_each_threshold(monkeypatch):
    from types import SimpleNamespace

    from valor_lib.evaluation import systems
    from valor_lib.grounding import experiment, figures
    from valor_lib.params import CommonParams, apply_profile, load_raw

    common = CommonParams(**apply_profile(load_raw(), "toy")["common"])
    built = []

    def program_system(policy, spec, at, params):
        built.append((spec, at.gd_thresholds, at.gd_nms_iou))
        return SimpleNamespace(writer=SimpleNamespace(write=lambda q, n=1, seed=None: [["p"]] * len(q))), None

    writers = set()

    def per_detector(detectors, solver_for, params, seed, progress):
        writers.update(id(solver_for(spec)[0].writer) for spec in detectors.values())
        return {name: {"vsr": SimpleNamespace(summary={"accuracy_strict": 50.0 + 10 * len(built)}),
                       "countbenchqa": SimpleNamespace(summary={"accuracy_strict": 10.0})} for name in detectors}

    monkeypatch.setattr(systems, "program_system", program_system)
    monkeypatch.setattr(experiment, "_per_detector", per_detector)
    common = common.model_copy(update={"gd_thresholds": [0.2, 0.15]})
    params = SimpleNamespace(policy="hf:p", threshold_sweep=[[0.3, 0.25], [0.1, 0.1], [0.2, 0.15]])
    sweep = experiment.threshold_sweep({"pretrained": "a", "verified-seed0": "b"}, params, common, seed=0)
    assert list(sweep) == ["0.1/0.1", "0.2/0.15", "0.3/0.25"]  # in increasing order, common's point once
    # each detector runs all its points in turn (its model outputs are thresholded again, not recomputed)
    assert built == [(d, t, common.gd_nms_iou) for d in "ab" for t in ([0.1, 0.1], [0.2, 0.15], [0.3, 0.25])]
    assert len(writers) == 1  # one shared program writer
    assert common.gd_thresholds == [0.2, 0.15]  # the stage's own params are untouched
    main = {"pretrained": {"vsr": "run at 0.2/0.15"}, "verified-seed0": {"vsr": "its own"}}
    built.clear()
    reused = experiment.threshold_sweep({"pretrained": "a", "verified-seed0": "b"}, params, common, seed=0,
                                        at_common=main)
    assert reused["0.2/0.15"] == main and [b[1] for b in built] == [[0.1, 0.1], [0.3, 0.25]] * 2
    assert experiment.threshold_key([0.35, 0.25]) == "0.35/0.25" and experiment.threshold_key((1, 0.5)) == "1/0.5"
    rows = experiment.sweep_rows(sweep)
    assert rows[0] == {"thresholds": "0.1/0.1", "detector": "pretrained", "vsr": 60.0, "countbenchqa": 10.0,
                       "mean": 35.0}
    assert len(rows) == 6 and rows[-1]["vsr"] == 110.0
    fig = figures.threshold_curves(rows, ["vsr", "countbenchqa"])
    assert [ax.get_title() for ax in fig.axes] == ["vsr", "countbenchqa", "mean"]
    assert len(fig.axes[0].lines) == 2


def test_each_detector_runs_at_its_own_thresholds_reusing_runs_already_made(monkeypatch):
    from types import SimpleNamespace

    from valor_lib.evaluation import systems
    from valor_lib.grounding import experiment
    from valor_lib.params import CommonParams, apply_profile, load_raw

    common = CommonParams(**apply_profile(load_raw(), "toy")["common"]).model_copy(
        update={"gd_thresholds": [0.3, 0.1]})
    built = []

    def program_system(policy, spec, at, params):
        built.append((spec, at.gd_thresholds))
        return SimpleNamespace(writer=SimpleNamespace(write=lambda q, n=1, seed=None: [["p"]] * len(q))), None

    def per_detector(detectors, solver_for, params, seed, progress):
        return {name: {"vsr": f"{spec} run"} for name, spec in detectors.items() if solver_for(spec)}

    monkeypatch.setattr(systems, "program_system", program_system)
    monkeypatch.setattr(experiment, "_per_detector", per_detector)
    known = {"0.3/0.1": {"pretrained": {"vsr": "at common"}, "verified-seed0": {"vsr": "at common"}},
             "0.2/0.15": {"verified-seed0": {"vsr": "swept"}}}
    own = {"pretrained": [0.3, 0.1], "verified-seed0": [0.2, 0.15], "unverified-seed0": [0.45, 0.1]}
    runs = experiment.own_threshold_runs({"pretrained": "a", "verified-seed0": "b", "unverified-seed0": "c"}, own,
                                         SimpleNamespace(policy="hf:p"), common, seed=0, known=known)
    assert runs == {"pretrained": {"vsr": "at common"}, "verified-seed0": {"vsr": "swept"},
                    "unverified-seed0": {"vsr": "c run"}}
    assert built == [("c", [0.45, 0.1])]  # only the pair not run before
    assert common.gd_thresholds == [0.3, 0.1]


def test_claim_lines_say_each_variant_against_the_pretrained_detector():
    from valor_lib.grounding.experiment import claim_lines, claim_summary

    verdict = claim_summary({"pretrained": [0.2], "verified": [0.25, 0.23], "unverified": [0.1, 0.12]},
                            {"vsr": {"pretrained": [50.0], "verified": [60.0, 58.0], "unverified": [40.0, 44.0]}})
    lines = claim_lines(verdict).splitlines()
    assert lines[0] == "verified: mAP +0.0400 vs pretrained (clears the seed spread); accuracy change {'vsr': 9.0}"
    assert lines[1].startswith("unverified: mAP -0.0900 vs pretrained (within the seed spread)")
