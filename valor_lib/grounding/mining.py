"""Mining candidate boxes: programs for the questions, their grounding queries, low-threshold detections.

    writer = program_writer("hf:results/grpo_training/policy", {"temperature": 0.7}, batch_size=64)
    programs = write_programs(writer, items, out / "programs.jsonl", seed=0, batch_size=64)
    candidates = detect_candidates(detector, image_jobs(items, programs), out / "candidates.jsonl", out / "images",
                                   Thresholds(0.1, 0.1))

Both steps append to resumable JSONL files (an interrupted run continues where it stopped). Each image is
detected once with every distinct ``gd_detect`` prompt that any program about it sends (as the program would
call it), and its candidate boxes are pooled into one record.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image
from tqdm.auto import tqdm

from valor_lib.detection.inference import GroundingDinoDetector, Thresholds
from valor_lib.evaluation.records import ImageLoadError
from valor_lib.grounding.queries import extract_grounding_queries, normalize_label, split_nouns
from valor_lib.grounding.sources import MiningItem
from valor_lib.programs import parse_response
from valor_lib.resumable import ResumableJsonl, read_records
from valor_lib.specs import parse_spec


class ProgramWriterLike(Protocol):
    """``valor_lib.policy.generate.ProgramWriter``: raw ``<plan>``/``<answer>`` responses per question."""

    def write(self, questions: list[str], n: int = 1, seed: int | None = None) -> list[list[str]]: ...


def program_writer(spec: str, sampling: Mapping[str, Any], batch_size: int, device: str = "auto") -> Any:
    """The policy's :class:`~valor_lib.policy.generate.ProgramWriter`; a local ``hf:`` model generates each
    call's ``batch_size`` questions as one batch (far fewer generate calls on CPU)."""
    from valor_lib.policy.generate import ProgramWriter

    local = {"device": device, "batch_size": batch_size} if parse_spec(spec, role="policy").kind == "hf" else {}
    return ProgramWriter(spec, dict(sampling), **local)


def write_programs(writer: ProgramWriterLike, items: Sequence[MiningItem], path: str | os.PathLike,
                   seed: int = 0, batch_size: int = 16, progress: bool = True) -> dict[str, dict[str, Any]]:
    """One program per question (resumable); returns ``{item id: record}`` with the parsed grounding queries.

    Batches are fixed by position in ``items``, each with its own seed, so a resumed run writes what an
    uninterrupted one would have."""
    with ResumableJsonl(path, fsync_every=batch_size) as out:
        batches = [(start, list(items[start: start + batch_size])) for start in range(0, len(items), batch_size)]
        bar = tqdm(total=len(items), initial=len(out), desc="programs", unit="question", disable=not progress)
        for start, batch in batches:
            todo = [item for item in batch if item.id not in out]
            if not todo:
                continue
            responses = writer.write([item.question for item in batch], n=1, seed=seed + start)
            if len(responses) != len(batch) or any(not r for r in responses):
                raise ValueError(f"program writer returned {len(responses)} response lists for {len(batch)} questions")
            for item, response in zip(batch, responses, strict=True):
                if item.id in out:
                    continue
                parsed = parse_response(response[0])
                queries = extract_grounding_queries(parsed.code) if parsed.code else None
                out.write({"id": item.id, "source": item.source, "image_key": item.image_key,
                           "question": item.question, "response": response[0], "code": parsed.code,
                           "format_ok": parsed.format_ok,
                           "queries": queries.to_dict() if queries else {"prompts": [], "phrases": [],
                                                                         "unresolved": [], "calls": 0,
                                                                         "error": "no program"}})
                bar.update(1)
        bar.close()
    return {r["id"]: r for r in read_records(path, key="id")}


def load_detector(spec: str, device: str = "auto") -> GroundingDinoDetector:
    """The GroundingDINO of a detector spec (``groundingdino-hf:`` or ``groundingdino-pth:``), as the tools load it."""
    from valor_lib.tools.detector import load_detector as load_backend

    parsed = parse_spec(spec, role="detector")
    return load_backend(parsed.kind, parsed.arg, device=device)


@dataclass(frozen=True)
class ImageJob:
    """One image to detect on: its key, source, image, and the distinct prompts its programs send."""

    key: str
    source: str
    item: MiningItem
    prompts: list[str]
    question_ids: list[str]


def image_jobs(items: Sequence[MiningItem], programs: dict[str, dict[str, Any]]) -> list[ImageJob]:
    """Group questions by image; collect each image's distinct grounding prompts (images without any are kept
    with an empty list, so their counts show up)."""
    jobs: dict[str, ImageJob] = {}
    for item in items:
        record = programs.get(item.id)
        prompts = record["queries"]["prompts"] if record else []
        job = jobs.get(item.image_key)
        if job is None:
            jobs[item.image_key] = ImageJob(item.image_key, item.source, item, list(prompts), [item.id])
        else:
            job.prompts.extend(p for p in prompts if p not in job.prompts)
            job.question_ids.append(item.id)
    return list(jobs.values())


def _boxes(job: ImageJob, detections: list[list[dict[str, Any]]], max_per_prompt: int) -> list[dict[str, Any]]:
    boxes = []
    for prompt, dets in zip(job.prompts, detections, strict=True):
        for det in dets[:max_per_prompt]:
            label = normalize_label(det["label"])
            if not label:
                continue
            boxes.append({"box_id": f"{job.key}#{len(boxes)}", "bbox": [round(float(v), 2) for v in det["bbox"]],
                          "label": label, "phrase": det["label"], "score": round(float(det["score"]), 4),
                          "prompt": prompt})
    return boxes


def materialise(job: ImageJob, image: Image.Image, image_root: Path) -> str:
    """Put the job's image at ``<image_root>/<image key>`` (hard link or copy of the source file, else saved
    from pixels) and return that relative path: pseudo-label files refer to images there."""
    relative = job.key
    target = image_root / relative
    if target.exists():
        return relative
    target.parent.mkdir(parents=True, exist_ok=True)
    source = job.item.image.path
    partial = target.with_name(target.name + ".part")
    if source is not None and Path(source).is_file():
        try:
            os.link(source, partial)
        except OSError:
            shutil.copyfile(source, partial)
    else:
        fmt = "PNG" if target.suffix.lower() == ".png" else "JPEG"
        image.save(partial, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    os.replace(partial, target)
    return relative


def detect_candidates(detector: GroundingDinoDetector, jobs: Sequence[ImageJob], path: str | os.PathLike,
                      image_root: str | os.PathLike, thresholds: Thresholds, max_per_prompt: int = 20,
                      images_per_batch: int = 8, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Low-threshold detections of every image with each of its prompts (resumable); ``{image key: record}``.

    A record holds the image's file under ``image_root`` (see :func:`materialise`), its size, its prompts, the
    labels asked for (``queried``) and the candidate boxes (``box_id``, pixel ``bbox``, normalised ``label``,
    detector ``phrase`` and ``score``, the ``prompt``). An image that cannot be loaded is recorded with
    ``error`` and no boxes."""
    root = Path(image_root)
    with ResumableJsonl(path, fsync_every=images_per_batch) as out:
        todo = [job for job in jobs if job.key not in out]
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="detect", unit="img", disable=not progress)
        for start in range(0, len(todo), images_per_batch):
            batch = todo[start: start + images_per_batch]
            loaded, failed = [], {}
            for job in batch:
                try:
                    loaded.append(job.item.image.load())
                except ImageLoadError as err:
                    failed[job.key] = str(err)
                    loaded.append(None)
            calls = [(i, prompt) for i, job in enumerate(batch) if loaded[i] is not None for prompt in job.prompts]
            found = detector.detect_batch([loaded[i] for i, _ in calls], [p for _, p in calls], thresholds) if calls else []
            per_image: dict[int, list[list[dict[str, Any]]]] = {}
            for (i, _), dets in zip(calls, found, strict=True):
                per_image.setdefault(i, []).append(dets)
            for i, job in enumerate(batch):
                image = loaded[i]
                boxes = _boxes(job, per_image.get(i, []), max_per_prompt) if image is not None else []
                queried = list(dict.fromkeys(label for prompt in job.prompts for label in split_nouns(prompt)))
                out.write({"id": job.key, "source": job.source, "image_name": job.item.image_name,
                           "origin": job.item.image.describe(),
                           "file": materialise(job, image, root) if image is not None else None,
                           "width": image.width if image else None,
                           "height": image.height if image else None, "question_ids": job.question_ids,
                           "prompts": job.prompts, "queried": queried, "boxes": boxes,
                           "error": failed.get(job.key)})
                bar.update(1)
        bar.close()
    return {r["id"]: r for r in read_records(path, key="id")}


def program_stats(programs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per source: questions, well-formed responses, programs with a resolved ``gd_detect`` prompt, prompts and
    phrases found, and prompt arguments that could not be resolved."""
    rows: dict[str, dict[str, Any]] = {}
    for record in programs.values():
        row = rows.setdefault(record["source"], {"source": record["source"], "questions": 0, "format_ok": 0,
                                                 "with_queries": 0, "prompts": 0, "phrases": 0, "unresolved": 0,
                                                 "unparsable": 0})
        queries = record["queries"]
        row["questions"] += 1
        row["format_ok"] += bool(record["format_ok"])
        row["with_queries"] += bool(queries["prompts"])
        row["prompts"] += len(queries["prompts"])
        row["phrases"] += len(queries["phrases"])
        row["unresolved"] += len(queries["unresolved"])
        row["unparsable"] += queries["error"] is not None and record["code"] != ""
    return list(rows.values())
