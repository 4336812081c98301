"""The runner: records, scores, failures per item, the content-addressed cache, and resuming after a kill."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eval_helpers import CountingWriter, fake_detect
from PIL import Image

from valor_lib.evaluation.benchmarks import load
from valor_lib.evaluation.metrics import score
from valor_lib.evaluation.records import EvalItem, ImageRef
from valor_lib.evaluation.runner import RECORD_FIELDS, evaluate
from valor_lib.evaluation.solvers import ProgramSolver

HERE = Path(__file__).resolve().parent


def solver_for(writer, identity="scripted-v1"):
    return ProgramSolver(writer, {"gd_detect": fake_detect}, identity={"writer": identity}, timeout_s=5.0, workers=2)


def test_records_scores_and_summary(toy_source, tmp_path):
    items = load("tallyqa", toy_source)
    writer = CountingWriter()
    run = evaluate(solver_for(writer), items, "tallyqa", batch_size=3, cache_root=tmp_path, progress=False)
    assert [r["id"] for r in run.records] == [i.id for i in items]
    assert all(list(r) == list(RECORD_FIELDS) for r in run.records)
    assert [len(q) for q, _ in writer.calls] == [3, 3, 2]  # fixed chunks of batch_size
    assert len({seed for _, seed in writer.calls}) == 3     # one seed per chunk
    for item, record in zip(items, run.records, strict=True):
        noun = item.question.split()[2]
        assert record["prediction"] == len(noun) % 4 and record["error_type"] is None and record["format_ok"]
        assert record["tool_calls"] == [{"name": "gd_detect", "args": f"image, {noun!r}", "ok": True,
                                         "result": fake_detect(item.image.load(), noun)}]
        assert record["score_strict"] == score("tallyqa", record["prediction"], item.answer, "int")
    summary = run.summary
    assert summary["n"] == len(items) and summary["error_types"] == {"ok": len(items)}
    assert summary["accuracy_strict"] == pytest.approx(100 * sum(r["score_strict"] for r in run.records) / len(items))
    assert summary["tool_calls_per_item"] == 1.0 and summary["items_per_s"] > 0
    assert json.loads(json.dumps(summary)) == summary
    assert (run.path.parent / "key.json").is_file()


def test_second_evaluation_costs_nothing_and_keys_follow_their_inputs(toy_source, tmp_path):
    items = load("countbenchqa", toy_source)
    writer = CountingWriter()
    first = evaluate(solver_for(writer), items, "countbenchqa", cache_root=tmp_path, progress=False)
    calls = len(writer.calls)
    again = evaluate(solver_for(writer), items, "countbenchqa", cache_root=tmp_path, progress=False)
    assert again.reused and not first.reused and len(writer.calls) == calls
    assert again.records == first.records and again.key == first.key
    keys = {first.key}
    for changed in (
        evaluate(solver_for(writer), items, "countbenchqa", seed=1, cache_root=tmp_path, progress=False),
        evaluate(solver_for(writer, "other-weights"), items, "countbenchqa", cache_root=tmp_path, progress=False),
        evaluate(solver_for(writer), items[:-1], "countbenchqa", cache_root=tmp_path, progress=False),
        evaluate(solver_for(writer), items, "countbenchqa", batch_size=4, cache_root=tmp_path, progress=False),
    ):
        assert not changed.reused
        keys.add(changed.key)
    assert len(keys) == 5


def _item(item_id, question, image, answer=2):
    return EvalItem(id=item_id, benchmark="tallyqa", question=question, original_question=question, answer=answer,
                    answer_type="int", image=image)


def test_failures_are_recorded_per_item_and_the_run_goes_on(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (40, 30), "white").save(good)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    items = [
        _item("t/0", "How many cats are there?", ImageRef(path=good)),
        _item("t/1", "   ", ImageRef(path=good)),
        _item("t/2", "How many dogs are there?", ImageRef(path=tmp_path / "missing.png")),
        _item("t/3", "How many birds are there?", ImageRef(path=corrupt)),
        _item("t/4", "How many crashes are there?", ImageRef(path=good)),
        _item("t/5", "How many mice are there?", ImageRef(pil=Image.new("RGB", (10, 10)))),
    ]
    run = evaluate(solver_for(CountingWriter(fail_on="crashes")), items, "tallyqa", batch_size=4,
                   cache_root=tmp_path / "cache", progress=False)
    kinds = [r["error_type"] for r in run.records]
    assert kinds == [None, "empty_question", "image", "image", "runtime", None]
    assert "missing" in run.records[2]["error"] and "corrupt" in run.records[3]["error"]
    assert "ZeroDivisionError" in run.records[4]["error"]
    assert all(r["score_strict"] == 0 for r in run.records[1:5])
    assert run.summary["error_types"] == {"empty_question": 1, "image": 2, "ok": 2, "runtime": 1}


def test_resume_after_a_torn_write_gives_the_same_bytes(toy_source, tmp_path):
    items = load("blink", toy_source)
    full = evaluate(solver_for(CountingWriter()), items, "blink", batch_size=3, cache_root=tmp_path / "a",
                    progress=False)
    reference = full.path.read_bytes()
    # a second cache whose run died inside the third chunk, halfway through writing a record
    torn_dir = tmp_path / "b" / "blink" / full.key
    shutil.copytree(full.path.parent, torn_dir)
    lines = reference.split(b"\n")
    (torn_dir / "predictions.jsonl").write_bytes(b"\n".join(lines[:7]) + b"\n" + lines[7][: len(lines[7]) // 2])
    writer = CountingWriter()
    resumed = evaluate(solver_for(writer), items, "blink", batch_size=3, cache_root=tmp_path / "b", progress=False)
    assert resumed.path.read_bytes() == reference
    assert len(writer.calls) == 1 and len(writer.calls[0][0]) == 2  # only the unfinished (last) chunk again


CHILD = """
import sys, time
sys.path.insert(0, {helpers!r})
from pathlib import Path
from eval_helpers import CountingWriter, fake_detect
from valor_lib.evaluation.benchmarks import Source, load
from valor_lib.evaluation.runner import evaluate
from valor_lib.evaluation.solvers import ProgramSolver

class SlowWriter(CountingWriter):
    def write(self, questions, n=1, seed=None):
        time.sleep({delay})
        return super().write(questions, n, seed)

items = load("tallyqa", Source(root=Path({root!r}), cache_dir=Path({hf!r})))
solver = ProgramSolver(SlowWriter(), {{"gd_detect": fake_detect}}, identity={{"writer": "scripted-v1"}}, workers=1)
run = evaluate(solver, items, "tallyqa", batch_size=2, cache_root=Path(sys.argv[1]), progress=False)
print(run.path)
"""


def _child(tmp_path, toy_root, delay):
    script = tmp_path / f"child_{delay}.py"
    script.write_text(CHILD.format(helpers=str(HERE), root=str(toy_root), hf=str(tmp_path / "hf"), delay=delay))
    return script


@pytest.mark.slow
def test_a_killed_run_restarts_to_the_same_predictions_file(toy_root, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    slow = _child(tmp_path, toy_root, delay=0.4)
    proc = subprocess.Popen([sys.executable, str(slow), str(tmp_path / "killed")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    predictions = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list((tmp_path / "killed").glob("tallyqa/*/predictions.jsonl"))
        if found and len(found[0].read_bytes().splitlines()) >= 3:
            predictions = found[0]
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    assert predictions is not None, "the child never wrote predictions"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    written = len(predictions.read_bytes().splitlines())
    assert 3 <= written < 8  # really interrupted
    restarted = subprocess.run([sys.executable, str(slow), str(tmp_path / "killed")], env=env, capture_output=True,
                               timeout=300)
    assert restarted.returncode == 0, restarted.stderr.decode()
    uninterrupted = subprocess.run([sys.executable, str(_child(tmp_path, toy_root, delay=0.0)), str(tmp_path / "clean")],
                                   env=env, capture_output=True, timeout=300)
    assert uninterrupted.returncode == 0, uninterrupted.stderr.decode()
    clean = Path(uninterrupted.stdout.decode().strip().splitlines()[-1])
    assert clean.parent.name == predictions.parent.name  # same cache key
    assert predictions.read_bytes() == clean.read_bytes()
    assert len(predictions.read_bytes().splitlines()) == 8
