"""The evaluation stage's systems: a policy and a detector (with the common depth and VQA backends) as a
:class:`~valor_lib.evaluation.solvers.ProgramSolver`, run over benchmarks, with tool-cache statistics.

    solver, toolbox = program_system(policy_spec, detector_spec, common, params)
    runs = evaluate_benchmarks(solver, items, judge=judge, seed=0, batch_size=16)

The solver's identity (the prediction cache key) holds the content fingerprints of the policy and detector
weights (wherever they are stored), the depth and VQA specs, the detector thresholds and NMS, the sampling
parameters, the prompt and its number of worked examples.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from valor_lib.clients import ChatClient, SamplingParams
from valor_lib.evaluation.config import EvaluationParams, SamplingConfig
from valor_lib.evaluation.fingerprint import spec_fingerprint
from valor_lib.evaluation.judge import AnswerJudge
from valor_lib.evaluation.records import EvalItem
from valor_lib.evaluation.runner import BenchmarkRun, evaluate
from valor_lib.evaluation.solvers import ProgramSolver
from valor_lib.specs import parse_spec
from valor_lib.tools.cache import LRUCache

TOOL_CACHES_FILE = "tool_caches.json"


def sampling_params(config: SamplingConfig) -> SamplingParams:
    return SamplingParams(temperature=config.temperature, top_p=config.top_p, top_k=config.top_k,
                          max_tokens=config.max_tokens)


def toolbox_identity(detector: str, depth: str, vqa: str, thresholds: Any,
                     nms_iou: float | None) -> dict[str, Any]:
    """What the tools' outputs depend on (``thresholds``: gd_detect's [box, text]; ``nms_iou``: its NMS)."""
    return {"detector": spec_fingerprint(detector), "depth": spec_fingerprint(depth), "vqa": spec_fingerprint(vqa),
            "thresholds": [float(t) for t in thresholds], "nms_iou": nms_iou}


def writer_identity(writer: Any, policy_spec: str) -> dict[str, Any]:
    """The program writer's identity with the policy named by the content of its weights (when local)."""
    identity = dict(writer.identity())
    weights = spec_fingerprint(policy_spec)
    if "weights" in weights:
        identity["policy"] = weights
    return identity


def program_system(policy_spec: str, detector_spec: str, common: Any,
                   params: EvaluationParams) -> tuple[ProgramSolver, Any]:
    """(solver, toolbox): a policy's program writer (``solver.writer``; ``.close()`` frees it) with a toolbox on
    ``detector_spec`` (depth and VQA from ``common.backends``). ``params`` needs ``sampling``, ``timeout_s`` and
    ``exec_workers`` (the evaluation stage's settings, or a stage's copy of them)."""
    from valor_lib.policy.generate import ProgramWriter

    # a local hf model generates each chunk of questions in one batch (faster on CPU, one seed per chunk)
    local = {"device": common.device, "batch_size": params.batch_size} if parse_spec(policy_spec).kind == "hf" else {}
    writer = ProgramWriter(policy_spec, sampling_params(params.sampling), **local)
    return tool_solver(writer, writer_identity(writer, policy_spec), detector_spec, common, params)


def tool_solver(writer: Any, identity: dict[str, Any], detector_spec: str, common: Any,
                params: Any) -> tuple[ProgramSolver, Any]:
    """(solver, toolbox): ``writer``'s programs run with a toolbox on ``detector_spec`` (depth and VQA from
    ``common.backends``, ``gd_detect`` at ``common.gd_thresholds`` with ``common.gd_nms_iou``); ``identity`` names
    the writer in cache keys."""
    backends = common.backends
    tools = toolbox_identity(detector_spec, backends.depth, backends.vqa, common.gd_thresholds, common.gd_nms_iou)
    toolbox = shared_toolbox(common, detector_spec, tools)
    identity = {**identity, "tools": tools}
    solver = ProgramSolver(writer, toolbox.tools(), identity=identity, timeout_s=params.timeout_s,
                           workers=params.exec_workers, tool_stats=lambda: tool_cache_stats(toolbox),
                           prefetch=toolbox.prefetch_detections)
    return solver, toolbox


_TOOLBOX: dict[str, Any] = {}
# Raw detector outputs of the last few detectors (by weights and device), kept after their models are let go: a
# detector evaluated again later in the process (another program writer, another threshold pair) reruns nothing
# it has seen. GroundingDINO-T's entries are about 50 kB (900 queries), so 4 x 4096 of them stay under 1 GB.
_DETECTOR_OUTPUTS: LRUCache[LRUCache[Any]] = LRUCache(4)


def shared_toolbox(common: Any, detector_spec: str, identity: Mapping[str, Any]) -> Any:
    """The toolbox for ``identity`` (:func:`toolbox_identity`: weights fingerprints, specs, thresholds). Its
    backends are reused by the next solver on the same detector, depth and VQA in this process, whatever its
    thresholds (:meth:`~valor_lib.tools.Toolbox.with_thresholds`), so that evaluations sharing a detector share
    its cache of model outputs and its depth maps (the policies of one stage, or the points of a threshold
    sweep, ask about the same images). Only the latest backends are kept, so one detector at a time stays in
    memory; the model outputs of the last few detectors are kept as well."""
    from valor_lib.detection.inference import Thresholds
    from valor_lib.tools import Toolbox
    from valor_lib.tools.detector import DETECTION_CACHE_SIZE

    backends = {k: v for k, v in identity.items() if k not in ("thresholds", "nms_iou")}
    key = json.dumps({**backends, "device": common.device}, sort_keys=True)
    if key not in _TOOLBOX:
        _TOOLBOX.clear()
        outputs = _DETECTOR_OUTPUTS.get_or_compute(
            json.dumps({"detector": identity["detector"], "device": common.device}, sort_keys=True),
            lambda: LRUCache(DETECTION_CACHE_SIZE))
        _TOOLBOX[key] = Toolbox.from_params(common, detector=detector_spec, detection_cache=outputs)
    return _TOOLBOX[key].with_thresholds(Thresholds(*identity["thresholds"]), identity["nms_iou"])


def tool_cache_stats(toolbox: Any) -> dict[str, dict[str, int]]:
    """Hits and misses of the toolbox's caches (detections; depth maps when the depth backend makes maps)."""
    stats = {}
    for name, owner in (("detector", getattr(toolbox, "detector", None)),
                        ("depth_maps", getattr(toolbox, "depth_backend", None))):
        cache = getattr(owner, "cache", None)
        if cache is not None and hasattr(cache, "hits"):
            stats[name] = {"hits": int(cache.hits), "misses": int(cache.misses)}
    return stats


def cache_savings(before: Mapping[str, Mapping[str, int]], after: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """Per cache: lookups during a run and the share answered from the cache (computations saved)."""
    out = {}
    for name, end in after.items():
        start = before.get(name, {"hits": 0, "misses": 0})
        hits, misses = end["hits"] - start["hits"], end["misses"] - start["misses"]
        out[name] = {"lookups": hits + misses, "computed": misses,
                     "saved_share": round(hits / (hits + misses), 4) if hits + misses else None}
    return out


def judge_for(spec: str) -> AnswerJudge:
    """The GQA judge on a client for ``spec`` (role ``judge``)."""
    return AnswerJudge(ChatClient(spec, role="judge"))


def evaluate_benchmarks(solver: Any, items: Mapping[str, list[EvalItem]], *, judge: AnswerJudge | None, seed: int,
                        batch_size: int, cache_root: Path | None = None,
                        progress: bool = True) -> dict[str, BenchmarkRun]:
    """:func:`~valor_lib.evaluation.runner.evaluate` on every benchmark; adds tool-cache savings to summaries."""
    runs = {}
    stats = getattr(solver, "tool_stats", None)
    for benchmark, group in items.items():
        before = stats() if stats else {}
        run = evaluate(solver, group, benchmark, judge=judge, seed=seed, batch_size=batch_size,
                       cache_root=cache_root, progress=progress)
        saved = run.path.parent / TOOL_CACHES_FILE
        if stats and not run.reused:
            saved.write_text(json.dumps(cache_savings(before, stats()), indent=1) + "\n")
        if saved.is_file():  # kept beside the predictions, so a reused run still reports them
            run.summary["tool_caches"] = json.loads(saved.read_text())
        runs[benchmark] = run
    return runs


def export_predictions(runs: Mapping[str, Mapping[str, BenchmarkRun]], folder: Path) -> list[Path]:
    """Copy each run's predictions to ``folder/<system>/<benchmark>.jsonl`` (a stage's outputs)."""
    written = []
    for system, per_benchmark in runs.items():
        for benchmark, run in per_benchmark.items():
            target = folder / system / f"{benchmark}.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run.path, target)
            written.append(target)
    return written
