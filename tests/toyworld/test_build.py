import json

import datasets
import pytest

from valor_lib.toyworld import build as build_mod
from valor_lib.toyworld.build import build_world
from valor_lib.toyworld.config import ToyWorldParams

SMALL = dict(eval_items=6, train_items=4, omni3d_rows=10, pool_images=3, source_images=4, detection_val_images=3,
             knowledge_images=3,
             pretrain_queries=9, min_visible=0.3)


def tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("w") / "toy"
    manifest = build_world(ToyWorldParams(**SMALL, workers=1), 5, out)
    return out, manifest


def test_every_benchmark_in_its_real_format(world):
    root, manifest = world
    b = root / "benchmarks"
    omni = datasets.load_dataset("parquet", data_files=str(b / "omni3d-bench/train.parquet"), split="train")
    assert set(omni.column_names) == {"image", "image_index", "q_index", "question", "answer", "answer_type"}
    assert len(omni) == SMALL["omni3d_rows"] and set(omni["answer_type"]) <= {"int", "float", "str"}
    assert omni[0]["image"].size == (256, 192)
    blink = datasets.load_dataset("parquet", data_files=str(b / "blink/Counting/val.parquet"), split="train")
    row = blink[0]
    assert row["answer"] in {f"({c})" for c in "ABCD"} and len(row["choices"]) == 4
    assert row["choices"]["ABCD".index(row["answer"][1])] == str(int(row["choices"]["ABCD".index(row["answer"][1])]))
    robo = datasets.load_dataset("parquet", data_files=str(b / "robospatial/configuration.parquet"), split="train")
    assert set(robo["answer"]) <= {"Yes", "No"} and all(q.endswith("Answer yes or no.") for q in robo["question"])
    cb = datasets.load_dataset("parquet", data_files=str(b / "countbenchqa/test.parquet"), split="train")
    assert all(2 <= n <= 8 for n in cb["number"])
    vsr = [json.loads(line) for line in (b / "vsr/dev.jsonl").read_text().splitlines()]
    assert {r["label"] for r in vsr} <= {0, 1} and all((b / "vsr/images" / r["image"]).is_file() for r in vsr)
    tally = [json.loads(line) for line in (b / "tallyqa/tallyqa_val.jsonl").read_text().splitlines()]
    assert all(isinstance(r["answer"], int) and (b / "tallyqa" / r["image"]).is_file() for r in tally)
    gqa = [json.loads(line) for line in (b / "gqa/gqa_val.jsonl").read_text().splitlines()]
    assert all((b / "gqa" / r["image"]).is_file() for r in gqa)
    coco = json.loads((root / "detection/source.json").read_text())
    assert coco["annotations"] and all((root / "images/source" / i["file_name"]).is_file() for i in coco["images"])
    assert len((root / "pretrain_queries.jsonl").read_text().splitlines()) == SMALL["pretrain_queries"]
    assert manifest["splits"]["pool"]["images"] == SMALL["pool_images"]


def test_generation_is_deterministic_and_independent_of_workers(world, tmp_path):
    root, _ = world
    again = tmp_path / "toy"
    build_world(ToyWorldParams(**SMALL, workers=2), 5, again)
    a, b = tree(root), tree(again)
    a.pop("manifest.json"), b.pop("manifest.json")
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a if not k.endswith(".parquet"))
    other = tmp_path / "other"
    build_world(ToyWorldParams(**SMALL, workers=1), 6, other)
    assert (other / "scenes/vsr-dev.jsonl").read_bytes() != (root / "scenes/vsr-dev.jsonl").read_bytes()


def test_failed_build_leaves_previous_world_untouched(world, tmp_path, monkeypatch):
    out = tmp_path / "toy"
    out.mkdir()
    (out / "keep.txt").write_text("old world")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(build_mod, "write_split", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        build_world(ToyWorldParams(**SMALL, workers=1), 5, out)
    assert (out / "keep.txt").read_text() == "old world"
    assert not (tmp_path / "toy.partial").exists()
