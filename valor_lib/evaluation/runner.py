"""The evaluation runner: a solver on one benchmark's items -> a resumable, content-addressed predictions file.

    run = evaluate(solver, items, "tallyqa", judge=None, seed=0, batch_size=16)
    run.records          # one dict per item, in item order (see RECORD_FIELDS)
    run.summary          # metrics.json-ready (see valor_lib.evaluation.summary)

Where predictions live: ``<cache_root>/<benchmark>/<key>/predictions.jsonl`` with ``key.json`` (what the key
was computed from) and ``timings.jsonl`` beside it. The key hashes the solver's identity (policy and detector
weights fingerprints, sampling, prompt, sandbox settings), the items (ids, questions, answers, image bytes),
the seed, the batch size and the scoring version (plus the judge for GQA). Evaluating the same (policy,
detector, benchmark) again, from any stage, reads the finished file and costs nothing.

Guarantees:

- items are processed in fixed chunks of ``batch_size`` (boundaries depend only on the item list), each chunk
  with its own seed; records are appended in item order with :class:`~valor_lib.resumable.ResumableJsonl`
  (fsync'd once per chunk: a killed process loses nothing it wrote). A run killed at any point and restarted
  regenerates the unfinished chunk and appends only the missing records, so with a deterministic writer and
  tools the file is byte-identical to an uninterrupted run's. Timings, which never repeat exactly, are kept
  out of it (``timings.jsonl``);
- a missing or corrupt image, an empty question, or a program that fails is recorded for its item with an
  ``error_type`` and a reason; the run goes on;
- judge failures on GQA are recorded (``judge.error``) and counted, never silently scored as wrong answers
  without a trace.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm.auto import tqdm

from valor_lib.evaluation.benchmarks import paper_answer
from valor_lib.evaluation.fingerprint import digest_json, image_digest, items_fingerprint
from valor_lib.evaluation.judge import AnswerJudge, Verdict
from valor_lib.evaluation.metrics import score
from valor_lib.evaluation.records import EvalItem, ImageLoadError
from valor_lib.evaluation.solvers import Solver
from valor_lib.evaluation.summary import summarize
from valor_lib.paths import data_dir, repo_root
from valor_lib.resumable import ResumableJsonl, read_records

RUNNER_VERSION = 1
SCORING_VERSION = 1
IMAGE_MEMORY = 16  # recently loaded images kept, so items sharing an image share one object (tool caches)
RECORD_FIELDS = ("id", "benchmark", "subset", "question", "original_question", "answer", "answer_type", "options",
                 "image", "image_sha256", "prediction", "response", "plan", "code", "format_ok", "format_problems", "error_type",
                 "error", "stdout", "tool_calls", "boxes", "judge", "score_strict", "score_paper")


def default_cache_root() -> Path:
    """``data/cache/predictions``."""
    return data_dir("cache", "predictions")


@dataclass
class BenchmarkRun:
    """The outcome of :func:`evaluate`."""

    benchmark: str
    key: str
    path: Path
    records: list[dict[str, Any]]
    timings: list[dict[str, Any]]
    summary: dict[str, Any]
    reused: bool


def chunk_seed(seed: int, benchmark: str, index: int) -> int:
    """The writer's seed for chunk ``index`` (stable across processes)."""
    digest = hashlib.blake2b(f"{seed}/{benchmark}/{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def cache_key(solver: Solver, items: Sequence[EvalItem], benchmark: str, seed: int, batch_size: int,
              judge: AnswerJudge | None, digests: dict[str, str] | None = None) -> dict[str, Any]:
    """What the predictions of a run depend on (hashed into its cache key)."""
    scoring: dict[str, Any] = {"version": SCORING_VERSION}
    if benchmark == "gqa":
        scoring["judge"] = judge.identity if judge else None
    return {"runner": RUNNER_VERSION, "benchmark": benchmark, "solver": solver.identity(),
            "items": items_fingerprint(list(items), digests), "n_items": len(items), "seed": seed,
            "batch_size": batch_size, "scoring": scoring}


class _ImageMemory:
    """Load images once; items whose image bytes are equal get the same PIL object."""

    def __init__(self, digests: dict[str, str], size: int = IMAGE_MEMORY):
        self.digests, self.size, self.loaded = digests, size, OrderedDict()

    def get(self, item: EvalItem) -> Image.Image:
        key = self.digests.get(item.id) or image_digest(item)
        if key in self.loaded:
            self.loaded.move_to_end(key)
            return self.loaded[key]
        image = item.image.load()
        self.loaded[key] = image
        if len(self.loaded) > self.size:
            self.loaded.popitem(last=False)
        return image


def _chunks(items: Sequence[EvalItem], size: int) -> Iterator[tuple[int, list[EvalItem]]]:
    for start in range(0, len(items), size):
        yield start // size, list(items[start:start + size])


def _failure(error_type: str, error: str) -> dict[str, Any]:
    return {"prediction": None, "response": None, "plan": None, "code": None, "format_ok": None,
            "format_problems": [], "error_type": error_type, "error": error, "stdout": "", "tool_calls": [],
            "timings": {}}


def _needs_judge(item: EvalItem, outcome: dict[str, Any]) -> bool:
    prediction = outcome["prediction"]
    if item.benchmark != "gqa" or prediction is None or not str(prediction).strip():
        return False
    return score("gqa", prediction, item.answer, item.answer_type, "strict", options=item.options) == 0.0


def _score(item: EvalItem, digest: str, outcome: dict[str, Any], verdict: Verdict | None) -> dict[str, Any]:
    """The record of one item: its fields, the solver's outcome and both scores."""
    judged = verdict.equivalent if verdict else None
    prediction = outcome["prediction"]
    if item.benchmark == "gqa" and verdict is None:
        # not sent to the judge: an exact match (which it would accept) or no answer (which it would reject)
        judged = score("gqa", prediction, item.answer, item.answer_type, "strict", options=item.options) == 1.0
    record = {**item.describe(), "image_sha256": digest, **{k: v for k, v in outcome.items() if k != "timings"}}
    record["judge"] = None if verdict is None else {"verdict": verdict.equivalent, "error": verdict.error}
    record["score_strict"] = score(item.benchmark, prediction, item.answer, item.answer_type, "strict",
                                   options=item.options, judged=judged)
    record["score_paper"] = score(item.benchmark, prediction, paper_answer(item), item.answer_type, "paper",
                                  options=item.options, judged=judged)
    return {k: record.get(k) for k in RECORD_FIELDS}


def _run_chunk(solver: Solver, chunk: list[EvalItem], seed: int, images: _ImageMemory,
               judge: AnswerJudge | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    started = time.perf_counter()
    outcomes: list[dict[str, Any] | None] = [None] * len(chunk)
    runnable, loaded = [], []
    for i, item in enumerate(chunk):
        if not item.question.strip():
            outcomes[i] = _failure("empty_question", "the item has an empty question")
            continue
        try:
            loaded.append(images.get(item))
        except ImageLoadError as err:
            outcomes[i] = _failure("image", str(err))
            continue
        runnable.append(i)
    if runnable:
        solved = solver.solve([chunk[i] for i in runnable], loaded, seed)
        for i, outcome in zip(runnable, solved, strict=True):
            outcomes[i] = outcome
    asked = [i for i, item in enumerate(chunk) if _needs_judge(item, outcomes[i])]
    verdicts: dict[int, Verdict] = {}
    if asked:
        if judge is None:
            verdicts = {i: Verdict(None, None, "no judge configured") for i in asked}
        else:
            triples = [(chunk[i].question, chunk[i].answer, outcomes[i]["prediction"]) for i in asked]
            verdicts = dict(zip(asked, judge.judge(triples), strict=True))
    records = [_score(item, images.digests[item.id], outcomes[i], verdicts.get(i)) for i, item in enumerate(chunk)]
    share = (time.perf_counter() - started) / len(chunk)
    timings = [{"id": item.id, "wall_s": share, **outcomes[i]["timings"]} for i, item in enumerate(chunk)]
    return records, timings


def evaluate(solver: Solver, items: Sequence[EvalItem], benchmark: str, *, judge: AnswerJudge | None = None,
             seed: int = 0, batch_size: int = 16, cache_root: Path | None = None, progress: bool = True,
             stop_after_chunks: int | None = None) -> BenchmarkRun:
    """Evaluate ``solver`` on ``items`` of one benchmark (module docstring); resumes or reuses cached work.

    ``stop_after_chunks`` ends the run early (after that many newly computed chunks), for demonstrations.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("item ids must be unique")
    if any(item.benchmark != benchmark for item in items):
        raise ValueError(f"every item must belong to {benchmark!r}")
    digests = {item.id: image_digest(item) for item in items}
    payload = cache_key(solver, items, benchmark, seed, batch_size, judge, digests)
    key = digest_json(payload)[:24]
    folder = (cache_root or default_cache_root()) / benchmark / key
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "key.json"
    if not key_file.exists():
        key_file.write_text(_pretty(payload))
    path = folder / "predictions.jsonl"
    reused = True
    images = _ImageMemory(digests)
    with (ResumableJsonl(path, fsync_every=batch_size) as out,
          ResumableJsonl(folder / "timings.jsonl", fsync_every=batch_size) as timing_out):
        bar = tqdm(total=len(items), initial=len(out), desc=benchmark, unit="item", disable=not progress)
        computed = 0
        for index, chunk in _chunks(items, batch_size):
            if all(item.id in out for item in chunk):
                continue
            if stop_after_chunks is not None and computed >= stop_after_chunks:
                break
            reused = False
            records, timings = _run_chunk(solver, chunk, chunk_seed(seed, benchmark, index), images, judge)
            for record, timing in zip(records, timings, strict=True):
                if record["id"] not in timing_out:
                    timing_out.write(timing)
                if record["id"] not in out:
                    out.write(record)
                    bar.update(1)
            computed += 1
        bar.close()
    order = {item_id: i for i, item_id in enumerate(ids)}
    records = sorted(read_records(path, key="id"), key=lambda r: order.get(r["id"], len(order)))
    timings = read_records(folder / "timings.jsonl", key="id")
    summary = summarize(records, timings, benchmark)
    summary["provenance"] = {"cache_key": key, "reused": reused, "predictions": _shown(path),
                             "solver": payload["solver"], "seed": seed, "batch_size": batch_size,
                             "scoring": payload["scoring"]}
    return BenchmarkRun(benchmark, key, path, records, timings, summary, reused)


def _shown(path: Path) -> str:
    root = repo_root()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _pretty(payload: dict[str, Any]) -> str:
    import json

    return json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
