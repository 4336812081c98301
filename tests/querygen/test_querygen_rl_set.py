"""The RL query set: Omni3D-Bench's last training rows without answers, generated queries, query kinds."""

import json

import pytest

from valor_lib.evaluation.benchmarks import Source
from valor_lib.querygen import QUERY_KINDS, generated_queries, omni3d_rl_queries, query_kind, write_rl_set
from valor_lib.resumable import read_records


@pytest.mark.parametrize(("question", "kind"), [
    ("How many chairs are there in the image?", "counting"),
    ("How many lamps are to the left of the sofa?", "2D relation"),
    ("Is the ball in front of the lamp?", "depth relation"),
    ("Which object is closest to the camera: the ball, the lamp, or the box?", "depth relation"),
    ("Is the vase taller than the lamp in 3D?", "3D size"),
    ("If the ball is 0.30 meters wide, how wide is the box in meters?", "3D size"),
    ("What color is the sofa?", "attribute"),
    ("How many animals are visibly seated within the beige vehicle?", "counting"),
    ("Who is wearing the dress?", "other"),
])
def test_query_kinds(question, kind):
    assert kind in QUERY_KINDS and query_kind(question) == kind


def test_omni3d_share_is_the_last_training_rows_without_answers(small_world, small_world_sizes, tmp_path):
    rows, held_out = small_world_sizes["omni3d_rows"], small_world_sizes["eval_items"]
    source = Source(root=small_world / "benchmarks", omni3d_eval_rows=held_out)
    records = omni3d_rl_queries(source, 10, tmp_path / "images")
    assert [r["id"] for r in records] == [f"omni3d-bench/{i:05d}" for i in range(rows - 10, rows)]
    assert all(set(r) == {"id", "image", "question", "source"} for r in records)
    assert all((tmp_path / "images" / r["image"].rsplit("/", 1)[-1]).is_file() for r in records)
    every = omni3d_rl_queries(source, 10_000, tmp_path / "images")
    assert len(every) == rows - held_out and every[0]["id"] == f"omni3d-bench/{held_out:05d}"


def test_rl_set_file(tmp_path):
    generated = generated_queries([{"id": "a", "image": "a.png", "question": "Is it?"},
                                   {"id": "b", "image": "b.png", "question": None},
                                   {"id": "c", "image": "c.png", "question": "Is that?"}], 5)
    assert [r["id"] for r in generated] == ["generated/a", "generated/c"]
    path = write_rl_set(generated, tmp_path / "rl.jsonl")
    assert read_records(path, key="id") == generated
    with pytest.raises(ValueError, match="unique"):
        write_rl_set(generated + generated, tmp_path / "rl.jsonl")
    assert json.loads(path.read_text().splitlines()[0])["source"] == "generated"


def test_figures_and_summary(tmp_path):
    from PIL import Image

    from valor_lib.querygen.figures import examples_figure, generation_summary, mix_figure, mix_table

    Image.new("RGB", (16, 12)).save(tmp_path / "a.png")
    records = [{"id": "a", "image": str(tmp_path / "a.png"), "suitable": True, "attempts": 1, "chosen": 1,
                "candidates": ["Is the ball left of the box?", "How many chairs are there in the image?"],
                "question": "How many chairs are there in the image?"},
               {"id": "b", "image": "b.png", "suitable": None, "attempts": 3, "question": None},
               {"id": "c", "image": "c.png", "suitable": False, "attempts": 1, "question": None}]
    summary = generation_summary(records)
    assert summary["suitable (query chosen)"] == 1 and summary["judged unsuitable"] == 1
    assert summary["failed (invalid replies or calls)"] == 1 and summary["requests per image"] == 1.67
    assert examples_figure(records, 2) is not None
    rl = [{"source": "generated", "question": records[0]["question"]},
          {"source": "omni3d-bench", "question": "Is the vase taller than the lamp in 3D?"}]
    assert mix_table(rl) == {"generated": {"counting": 1}, "omni3d-bench": {"3D size": 1}}
    assert mix_figure(rl) is not None
