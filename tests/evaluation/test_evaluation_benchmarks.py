"""Loaders on the toy files (which carry the real datasets' fields) and on hand-made fixtures for edge cases."""

import json
import shutil
from collections import Counter

import datasets
import pytest
from eval_helpers import EVAL_ITEMS, OMNI3D_ROWS
from PIL import Image

from valor_lib.evaluation import benchmarks
from valor_lib.evaluation.benchmarks import (
    TABLES,
    BenchmarkFormatError,
    Source,
    load,
    load_omni3d_train,
    paper_answer,
    subsample,
)
from valor_lib.evaluation.records import BENCHMARKS, ImageLoadError
from valor_lib.toyworld import store
from valor_lib.toyworld.queries import parse_query


def test_local_layout_matches_the_toy_world():
    assert {b: tuple(t.local for t in TABLES[b]) for b in BENCHMARKS} == store.BENCHMARK_FILES


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_every_toy_benchmark_loads_with_canonical_answers(toy_source, bench):
    items = load(bench, toy_source)
    assert len(items) == EVAL_ITEMS
    assert len({i.id for i in items}) == len(items) and all(i.id.startswith(bench + "/") for i in items)
    for item in items:
        assert item.question.strip() and item.original_question.strip()
        assert item.image.load().size == (256, 192)
        assert parse_query(item.question) is not None, item.question  # the rewrite keeps toy queries parseable
        if item.answer_type == "int":
            assert isinstance(item.answer, int)
        elif item.answer_type == "float":
            assert isinstance(item.answer, float)
        elif item.answer_type == "yes/no":
            assert item.answer in ("yes", "no")
        elif item.answer_type == "choice":
            assert item.answer in item.options and "Options: {" in item.question


def test_answer_types_per_benchmark(toy_source):
    types = {b: Counter(i.answer_type for i in load(b, toy_source)) for b in BENCHMARKS}
    assert set(types["tallyqa"]) == {"int"} and set(types["countbenchqa"]) == {"int"}
    assert set(types["vsr"]) == {"yes/no"} and set(types["robospatial"]) == {"yes/no"}
    assert set(types["blink"]) == {"choice"}
    assert set(types["omni3d-bench"]) <= {"int", "float", "yes/no", "str", "choice"}


def test_subsets_and_rewrites(toy_source):
    blink = load("blink", toy_source)
    assert {i.subset for i in blink} == {"Counting", "Spatial_Relation"}
    counting = next(i for i in blink if i.subset == "Counting")
    assert counting.question.endswith("}.") and "??" not in counting.question
    assert counting.meta["source_answer"].startswith("(")
    robo = load("robospatial", toy_source)
    assert {i.subset for i in robo} == {"compatibility", "configuration"}
    assert robo[0].question.endswith("Answer yes or no.")
    vsr = load("vsr", toy_source)
    assert all(i.question.startswith(("Is ", "Are ")) and i.question.endswith("?") for i in vsr)
    assert all(i.original_question.endswith(".") for i in vsr)
    assert paper_answer(vsr[0]) == vsr[0].meta["label"] and isinstance(paper_answer(vsr[0]), int)
    rwqa = load("realworldqa", toy_source)
    choice = [i for i in rwqa if i.answer_type == "choice"]
    assert choice and all("Please answer" not in i.question for i in choice)
    assert all(len(i.meta["source_answer"]) == 1 for i in choice)


def test_omni3d_eval_and_train_rows(toy_source):
    evaluation, train = load("omni3d-bench", toy_source), load_omni3d_train(toy_source)
    assert len(evaluation) == EVAL_ITEMS and len(train) == OMNI3D_ROWS - EVAL_ITEMS
    assert evaluation[-1].meta["q_index"] + 1 == train[0].meta["q_index"]
    assert isinstance(paper_answer(evaluation[0]), str)  # the authors' answers are strings


def test_limit_takes_a_seeded_subsample_in_source_order(toy_source):
    a = [i.id for i in load("tallyqa", toy_source, limit=3, seed=1)]
    assert a == sorted(a) and len(a) == 3
    assert a == [i.id for i in load("tallyqa", toy_source, limit=3, seed=1)]
    assert a != [i.id for i in load("tallyqa", toy_source, limit=3, seed=2)]
    assert [i.id for i in load("tallyqa", toy_source, limit=100)] == [i.id for i in load("tallyqa", toy_source)]
    assert subsample(10, 0, 0, "x") == []
    with pytest.raises(ValueError):
        subsample(10, -1, 0, "x")


def test_unknown_benchmark_and_missing_files(tmp_path, toy_source):
    with pytest.raises(ValueError, match="unknown benchmark"):
        load("coco", toy_source)
    empty = Source(root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"tallyqa_val\.jsonl"):
        load("tallyqa", empty)
    with pytest.raises(FileNotFoundError, match=r"countbenchqa/test\.parquet"):
        load("countbenchqa", empty)
    with pytest.raises(ValueError, match="tables"):
        Source(root=tmp_path, tables="s3")
    with pytest.raises(ValueError, match="hf_datasets"):
        Source(root=tmp_path, hf_datasets={"tallyqa": "x/y"})


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _png(path, size=(32, 24)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 20, 30)).save(path)


def test_grit_images_resolve_in_either_folder_layout(tmp_path):
    _png(tmp_path / "tallyqa/visual_genome/VG_100K/1.jpg")
    _jsonl(tmp_path / "tallyqa/tallyqa_val.jsonl",
           [{"question": "How many cats?", "answer": 2, "image": "VG_100K/1.jpg", "width": 32, "height": 24,
             "bboxs": [], "dataset": "tallyqa"}, {"question": "How many dogs?", "answer": "3.0", "image": "VG_100K/2.jpg"}])
    items = load("tallyqa", Source(root=tmp_path))
    assert items[0].image.load().size == (32, 24) and items[1].answer == 3
    with pytest.raises(ImageLoadError, match="missing"):
        items[1].image.load()
    _jsonl(tmp_path / "tallyqa/tallyqa_val.jsonl", [{"question": "How many?", "answer": 2.5, "image": "x.jpg"}])
    with pytest.raises(BenchmarkFormatError, match="not a valid int"):
        load("tallyqa", Source(root=tmp_path))


def test_gqa_answers(tmp_path):
    _jsonl(tmp_path / "gqa/gqa_val.jsonl", [
        {"question": "Who wears the dress?", "answer": "woman", "image": "images/1.jpg"},
        {"question": "Is it red?", "answer": "Yes", "image": "images/1.jpg"},
        {"question": "What number?", "answer": "2", "image": "images/1.jpg"}])
    items = load("gqa", Source(root=tmp_path))
    assert [(i.answer, i.answer_type) for i in items] == [("woman", "str"), ("yes", "yes/no"), ("2", "str")]


def test_vsr_never_downloads_unless_allowed(tmp_path):
    _jsonl(tmp_path / "vsr/dev.jsonl", [
        {"image": "000000372029.jpg", "image_link": "http://127.0.0.1:9/000000372029.jpg",
         "caption": "The dog is on the surfboard.", "label": 1, "relation": "on", "subj": "dog", "obj": "surfboard"},
        {"image": "b.jpg", "image_link": "toy://vsr/images/b.jpg", "caption": "", "label": 0}])
    item, empty = load("vsr", Source(root=tmp_path))
    assert item.question == "Is the dog on the surfboard?" and item.answer == "yes"
    assert empty.question == ""  # recorded by the runner as an empty question, not a loader crash
    with pytest.raises(ImageLoadError, match="downloading is disabled"):
        item.image.load()
    allowed = load("vsr", Source(root=tmp_path, download_images=True))[1]
    with pytest.raises(ImageLoadError, match="only http"):
        allowed.image.load()
    _jsonl(tmp_path / "vsr/dev.jsonl", [{"image": "a.jpg", "caption": "The a is on the b.", "label": 2}])
    with pytest.raises(BenchmarkFormatError, match="label"):
        load("vsr", Source(root=tmp_path))


def test_corrupt_images_fail_with_a_reason(tmp_path):
    (tmp_path / "gqa/images").mkdir(parents=True)
    (tmp_path / "gqa/images/bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    _jsonl(tmp_path / "gqa/gqa_val.jsonl", [{"question": "What is it?", "answer": "cat", "image": "images/bad.jpg"}])
    with pytest.raises(ImageLoadError, match="corrupt or unreadable"):
        load("gqa", Source(root=tmp_path))[0].image.load()


def _parquet(path, rows, image_column):
    path.parent.mkdir(parents=True, exist_ok=True)
    import io

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    columns[image_column] = [{"bytes": buf.getvalue(), "path": "x.png"}] * len(rows)
    features = datasets.Dataset.from_dict({k: v for k, v in columns.items() if k != image_column}).features
    features[image_column] = datasets.Image()
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(path))


def test_blink_and_realworldqa_edge_cases(tmp_path):
    _parquet(tmp_path / "blink/Counting/val.parquet",
             [{"idx": "val_Counting_1", "question": "How many?", "choices": ["0", "1", "2", "4"], "answer": "(D)"}],
             "image_1")
    _parquet(tmp_path / "blink/Spatial_Relation/val.parquet",
             [{"idx": 1, "question": "Is the car beneath the cat?", "choices": ["yes", "no"], "answer": "(E)"}], "image_1")
    with pytest.raises(BenchmarkFormatError, match="points past"):
        load("blink", Source(root=tmp_path, cache_dir=tmp_path / "c"))
    rows = [
        {"question": "Which is closer?\nA. chair\nB. table\nPlease answer directly with only the letter.", "answer": "B"},
        {"question": "Query: Which is bigger?\nA) the red car\nB) the bus", "answer": "the bus"},
        {"question": "How many cars?\nPlease answer directly with a single word or number.", "answer": "3"},
        {"question": "Is it raining?\nPlease answer directly with a single word or number.", "answer": "No"},
    ]
    _parquet(tmp_path / "realworldqa/test.parquet", rows, "image")
    items = load("realworldqa", Source(root=tmp_path, cache_dir=tmp_path / "c"))
    assert [(i.question, i.answer, i.answer_type) for i in items] == [
        ("Which is closer? Options: {chair, table}.", "table", "choice"),
        ("Which is bigger? Options: {the red car, the bus}.", "the bus", "choice"),
        (rows[2]["question"], 3, "int"),
        (rows[3]["question"], "no", "yes/no"),
    ]
    assert items[0].image.load().size == (8, 8)
    _parquet(tmp_path / "realworldqa/test.parquet", [{"question": "Which?\nA. x\nB. y", "answer": "z"}], "image")
    with pytest.raises(BenchmarkFormatError, match="neither a letter"):
        load("realworldqa", Source(root=tmp_path, cache_dir=tmp_path / "c2"))


def test_hub_code_path_on_a_local_dataset_folder(toy_root, tmp_path):
    """``tables="hf"`` goes through ``datasets.load_dataset``; a local folder in hub layout stands in for the hub."""
    hub = tmp_path / "robospatial-home"
    for split in ("compatibility", "configuration"):
        (hub / "data").mkdir(parents=True, exist_ok=True)
        shutil.copy(toy_root / f"robospatial/{split}.parquet", hub / f"data/{split}-00000-of-00001.parquet")
    source = Source(root=tmp_path, tables="hf", cache_dir=tmp_path / "cache", hf_datasets={"robospatial": str(hub)})
    via_hub = load("robospatial", source)
    via_files = load("robospatial", Source(root=toy_root, cache_dir=tmp_path / "c"))
    assert [(i.id, i.question, i.answer) for i in via_hub] == [(i.id, i.question, i.answer) for i in via_files]
    assert via_hub[0].image.load().tobytes() == via_files[0].image.load().tobytes()


def test_vadar_gqa_subset(tmp_path):
    with pytest.raises(FileNotFoundError, match="VADAR"):
        load(benchmarks.VADAR_GQA, Source(root=tmp_path))
    _png(tmp_path / "vadar/images/gqa/1.jpg")
    annotations = tmp_path / "vadar/annotations.json"
    annotations.write_text(json.dumps({"questions": [
        {"image_index": "1.jpg", "question_index": 0, "image_filename": "gqa/1.jpg", "question": "What color is it?",
         "answer": "red", "answer_type": "str"}]}))
    (item,) = load(benchmarks.VADAR_GQA, Source(root=tmp_path, vadar_gqa=annotations))
    assert (item.benchmark, item.subset, item.answer) == ("gqa", "vadar", "red")
    assert item.image.load().size == (32, 24)
    annotations.write_text("[]")
    with pytest.raises(BenchmarkFormatError):
        load(benchmarks.VADAR_GQA, Source(root=tmp_path, vadar_gqa=annotations))
