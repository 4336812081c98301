"""Evaluation runner overhead on the eight toy benchmarks (prints, never asserts on time).
Run: ``pytest tests/benchmarks/bench_evaluation.py -m benchmark -s``.

A scripted writer and a cheap deterministic tool isolate the runner's own cost (image hashing and loading,
chunking, scoring, fsync'd JSONL records). Baseline, in the same process: the bare loop (write, parse,
``execute_many``, ``score``) without records or cache. Also reported: the cached rerun and the scoring rate.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from valor_lib.evaluation.benchmarks import Source, load
from valor_lib.evaluation.metrics import score
from valor_lib.evaluation.records import BENCHMARKS
from valor_lib.evaluation.runner import evaluate
from valor_lib.evaluation.solvers import ProgramSolver
from valor_lib.programs import execute_many, parse_response
from valor_lib.toyworld.build import build_world

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from eval_helpers import CountingWriter, fake_detect, small_world_params

EVAL_ITEMS = 24


@pytest.mark.benchmark
def test_runner_overhead(tmp_path):
    build_world(small_world_params(EVAL_ITEMS, EVAL_ITEMS + 4), 0, tmp_path / "toy")
    source = Source(root=tmp_path / "toy" / "benchmarks", cache_dir=tmp_path / "hf", omni3d_eval_rows=EVAL_ITEMS)
    items = {b: load(b, source) for b in BENCHMARKS}
    total = sum(len(v) for v in items.values())
    tools = {"gd_detect": fake_detect}
    execute_many(["final_answer = 1"], tools, images=[None])  # start the sandbox workers outside the timings

    started = time.perf_counter()
    for group in items.values():
        for start in range(0, len(group), 16):
            chunk = group[start:start + 16]
            responses = CountingWriter().write([i.question for i in chunk])
            codes = [parse_response(r[0]).code for r in responses]
            results = execute_many(codes, tools, 5.0, [i.image.load() for i in chunk], workers=2)
            for item, result in zip(chunk, results, strict=True):
                score(item.benchmark, result.answer, item.answer, item.answer_type, options=item.options)
    bare_s = time.perf_counter() - started

    solver = ProgramSolver(CountingWriter(), tools, identity={"writer": "bench"}, workers=2)
    started = time.perf_counter()
    runs = [evaluate(solver, group, b, cache_root=tmp_path / "cache", progress=False) for b, group in items.items()]
    runner_s = time.perf_counter() - started
    started = time.perf_counter()
    cached = [evaluate(solver, group, b, cache_root=tmp_path / "cache", progress=False) for b, group in items.items()]
    cached_s = time.perf_counter() - started
    assert all(c.reused for c in cached) and [r.records for r in runs] == [c.records for c in cached]

    pairs = [(item, record["prediction"]) for run, group in zip(runs, items.values(), strict=True)
             for item, record in zip(group, run.records, strict=True)] * 20
    started = time.perf_counter()
    for item, prediction in pairs:
        score(item.benchmark, prediction, item.answer, item.answer_type, "strict", options=item.options)
        score(item.benchmark, prediction, item.answer, item.answer_type, "paper", options=item.options)
    scoring_s = time.perf_counter() - started

    print(f"\n{total} items over {len(BENCHMARKS)} toy benchmarks")
    print(f"bare loop   {bare_s:6.2f} s  {total / bare_s:7.1f} items/s")
    print(f"runner      {runner_s:6.2f} s  {total / runner_s:7.1f} items/s  ratio to bare {runner_s / bare_s:.2f}")
    print(f"cached      {cached_s:6.2f} s  {total / cached_s:7.1f} items/s  ratio to runner {cached_s / runner_s:.3f}")
    print(f"scoring     {2 * len(pairs) / scoring_s:,.0f} scores/s")


@pytest.mark.benchmark
def test_prefetched_detections(tmp_path):
    """Correct template programs on toy benchmarks with a tiny GroundingDINO: each program's gd_detect calls
    one image at a time (the baseline), against the same programs after the toolbox ran their constant prompts
    in batches (``Toolbox.prefetch_detections``). Fresh detection caches for both, same process."""
    import torch

    from valor_lib.detection.tiny import TinyDetectorConfig, build_tiny_detector
    from valor_lib.detection.toy import toy_words
    from valor_lib.policy.template_programmer import TemplateWriter
    from valor_lib.tools import Toolbox

    torch.manual_seed(0)
    torch.set_num_threads(2)
    build_world(small_world_params(EVAL_ITEMS, EVAL_ITEMS + 4), 0, tmp_path / "toy")
    source = Source(root=tmp_path / "toy" / "benchmarks", cache_dir=tmp_path / "hf", omni3d_eval_rows=EVAL_ITEMS)
    items = {b: load(b, source) for b in ("omni3d-bench", "vsr", "robospatial", "countbenchqa")}
    total = sum(len(v) for v in items.values())
    model, processor = build_tiny_detector(toy_words(), TinyDetectorConfig())
    model.save_pretrained(tmp_path / "detector")
    processor.save_pretrained(tmp_path / "detector")
    seconds = {}
    for name in ("one image at a time", "prefetched"):
        box = Toolbox.from_specs(f"groundingdino-hf:{tmp_path / 'detector'}", "toy:ground-plane", "toy:vqa",
                                 device="cpu")
        solver = ProgramSolver(TemplateWriter("correct"), box.tools(), identity={"writer": name}, workers=2,
                               prefetch=box.prefetch_detections if name == "prefetched" else None)
        execute_many(["final_answer = 1"], box.tools(), images=[None])  # warm the sandbox workers
        started = time.perf_counter()
        for benchmark, group in items.items():
            evaluate(solver, group, benchmark, cache_root=tmp_path / name, batch_size=64, progress=False)
        seconds[name] = time.perf_counter() - started
    base, fast = seconds["one image at a time"], seconds["prefetched"]
    print(f"\n{total} items: one image at a time {base:.1f} s ({total / base:.1f} items/s), prefetched {fast:.1f} s "
          f"({total / fast:.1f} items/s), speed-up {base / fast:.2f}x")
