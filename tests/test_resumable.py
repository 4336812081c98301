"""Resumable JSONL result files: append, resume, crash repair, no duplicates, one writer."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass

import numpy as np
import pytest

from valor_lib.resumable import DuplicateRecordError, ResultsFileError, ResumableJsonl, read_records

ITEMS = [{"id": f"q{i}", "x": i} for i in range(10)]


def test_write_then_resume_skips_done_ids(tmp_path):
    path = tmp_path / "out" / "results.jsonl"
    with ResumableJsonl(path) as out:
        for item in list(out.pending(ITEMS))[:4]:
            out.write({"id": item["id"], "y": item["x"] * 2})
    with ResumableJsonl(path) as out:
        assert len(out) == 4 and "q3" in out and "q4" not in out
        rest = list(out.pending(ITEMS))
        assert [r["id"] for r in rest] == [f"q{i}" for i in range(4, 10)]
        for item in rest:
            out.write({"id": item["id"], "y": item["x"] * 2})
    records = read_records(path, key="id")
    assert [r["id"] for r in records] == [f"q{i}" for i in range(10)]
    assert [r["y"] for r in records] == [2 * i for i in range(10)]


def test_writing_an_id_twice_is_an_error(tmp_path):
    path = tmp_path / "r.jsonl"
    with ResumableJsonl(path) as out:
        out.write({"id": 1})
        with pytest.raises(DuplicateRecordError):
            out.write({"id": 1})
        with pytest.raises(ResultsFileError, match="no 'id'"):
            out.write({"other": 2})
    with ResumableJsonl(path) as out, pytest.raises(DuplicateRecordError):
        out.write({"id": 1})
    assert len(read_records(path)) == 1


def test_truncated_last_line_is_dropped_and_repaired(tmp_path):
    path = tmp_path / "r.jsonl"
    with ResumableJsonl(path) as out:
        for i in range(3):
            out.write({"id": i, "text": "é" * 5})
    with open(path, "ab") as fh:
        fh.write(b'{"id": 3, "text": "cut mid-wri')  # what a crash during write leaves
    with pytest.warns(UserWarning, match="truncated"):
        assert [r["id"] for r in read_records(path)] == [0, 1, 2]
    with ResumableJsonl(path) as out:
        assert out.done == {0, 1, 2}
        out.write({"id": 3, "text": "whole"})
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1]) == {"id": 3, "text": "whole"}


def test_a_complete_last_record_missing_only_its_newline_is_kept(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": 0}\n{"id": 1}')
    with ResumableJsonl(path) as out:
        assert out.done == {0, 1}
        out.write({"id": 2})
    assert path.read_text() == '{"id": 0}\n{"id": 1}\n{"id": 2}\n'


def test_corruption_before_the_last_line_is_an_error(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": 0}\nnot json\n{"id": 2}\n')
    with pytest.raises(ResultsFileError, match="line 2 is corrupt"):
        read_records(path)
    path.write_text('{"id": 0}\n{"id": 0}\n')
    with pytest.raises(ResultsFileError, match="repeats id 0"):
        ResumableJsonl(path).open()


def test_one_writer_at_a_time(tmp_path):
    path = tmp_path / "r.jsonl"
    with ResumableJsonl(path), pytest.raises(ResultsFileError, match="another process"):
        ResumableJsonl(path).open()


@dataclass
class Item:
    name: str


def test_pending_reads_ids_from_objects_or_functions_and_encodes_numpy(tmp_path):
    path = tmp_path / "r.jsonl"
    with ResumableJsonl(path, key="name", fsync_every=5) as out:
        out.write({"name": "a", "score": np.float32(0.5), "n": np.int64(3), "v": np.arange(2)})
        assert [i.name for i in out.pending([Item("a"), Item("b")])] == ["b"]
        assert list(out.pending([("a", 1), ("c", 2)], key=lambda t: t[0])) == [("c", 2)]
    assert read_records(path) == [{"name": "a", "score": 0.5, "n": 3, "v": [0, 1]}]
    assert read_records(tmp_path / "missing.jsonl", missing_ok=True) == []
    with pytest.raises(FileNotFoundError):
        read_records(tmp_path / "missing.jsonl")


def _write_forever(path: str, ready) -> None:
    with ResumableJsonl(path) as out:
        i = 0
        while True:
            out.write({"id": i, "payload": "x" * 2000})
            if i == 50:
                ready.set()
            i += 1


def test_killed_writer_loses_nothing_it_reported(tmp_path):
    path = tmp_path / "r.jsonl"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_write_forever, args=(str(path), ready))
    proc.start()
    assert ready.wait(30)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    with ResumableJsonl(path) as out:
        n = len(out)
        assert n > 50 and out.done == set(range(n))
        out.write({"id": n})
    assert [r["id"] for r in read_records(path, key="id")] == list(range(n + 1))
