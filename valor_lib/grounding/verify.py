"""Three-stage VLM verification of candidate boxes, through any vision-language :class:`ChatClient`.

    verification = verify_candidates(client, candidates, image_root, out / "verification")
    verification.survivors["dedup"][image_id]       # box ids that pass all three stages

1. **coarse**: per image, the original image, an overlay of its numbered, labelled boxes and the JSON box list;
   the verifier names the boxes whose content does not match their label or that fit badly;
2. **crop**: per remaining box, a crop padded by ``crop_padding`` of the box size and upscaled to
   ``crop_long_side``; the verifier says whether a clear, dominant, single instance of the label fills it;
3. **dedup**: per image with two or more survivors, a fresh overlay of the survivors (renumbered from 1);
   the verifier names duplicate boxes of one object, keeping the best-fitting one.

Replies must be JSON (:mod:`.prompts`); an unusable reply gets a follow-up message, up to ``max_attempts``
replies per question. A question that finally fails (transport error or no usable reply) drops its boxes and
is recorded with its error: unverified boxes never become labels. Every stage appends one record per question to
``<out>/<stage>.jsonl`` (inputs, prompt, every reply, decision, kept/dropped ids), so a rerun resumes, and the
notebook can show what the verifier saw and said. Requests are sent in chunks of ``chunk_size`` so that
upscaled crops never pile up in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm.auto import tqdm

from valor_lib.clients import ChatClient, ChatRequest, ChatResult, Message, SamplingParams, assistant, user
from valor_lib.grounding.prompts import (
    PROMPT_VERSION,
    STAGES,
    ReplyError,
    coarse_prompt,
    crop_prompt,
    dedup_prompt,
    follow_up,
    parse_drop,
    parse_match,
)
from valor_lib.grounding.views import NumberedBox, draw_overlay, verification_crop
from valor_lib.resumable import ResumableJsonl, read_records

ALL_STAGES = ("detections", *STAGES)


class StaleVerificationError(RuntimeError):
    """A verification folder holds records made from different inputs; remove it to start over."""


@dataclass(frozen=True)
class VerifierSettings:
    """How the verifier is asked (defaults: the paper's GPT-5-mini setup)."""

    reasoning_effort: str | None = "medium"
    max_tokens: int | None = None
    max_attempts: int = 3
    crop_padding: float = 0.1
    crop_long_side: int = 640
    overlay_long_side: int = 1024
    chunk_size: int = 64

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.chunk_size < 1:
            raise ValueError("max_attempts and chunk_size must be >= 1")
        if not 0 <= self.crop_padding <= 1:
            raise ValueError(f"crop_padding must be in [0, 1], got {self.crop_padding}")

    @property
    def sampling(self) -> SamplingParams:
        return SamplingParams(reasoning_effort=self.reasoning_effort, max_tokens=self.max_tokens)


@dataclass
class Answer:
    """The outcome of one verifier question: the parsed decision or the error, with every reply."""

    decision: Any = None
    replies: list[str] = field(default_factory=list)
    error: str | None = None
    attempts: int = 0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Question:
    """One verifier question: its record id, conversation so far, reply parser, and record fields."""

    key: str
    messages: list[Message]
    parse: Callable[[str], Any]
    stage: str
    record: dict[str, Any]


def ask(client: ChatClient, questions: Sequence[Question], settings: VerifierSettings,
        on_final: Callable[[Question, Answer], None], desc: str, progress: bool = True) -> None:
    """Ask every question, re-asking with a follow-up after an unusable reply; ``on_final`` gets each outcome
    as soon as it is final (in the calling thread)."""
    answers = {q.key: Answer() for q in questions}
    pending = list(questions)
    for attempt in range(1, settings.max_attempts + 1):
        if not pending:
            break
        retry: list[Question] = []

        def handle(index: int, result: ChatResult, batch: list[Question] = pending, attempt: int = attempt,
                   retry: list[Question] = retry) -> None:
            question = batch[index]
            answer = answers[question.key]
            answer.attempts = attempt
            answer.cached = answer.cached or result.cached
            if not result.ok:
                answer.error = f"{result.error_type}: {result.error}"
                on_final(question, answer)
                return
            answer.replies.append(result.text)
            try:
                answer.decision = question.parse(result.text)
            except ReplyError as err:
                if attempt == settings.max_attempts:
                    answer.error = f"unusable reply: {err}"
                    on_final(question, answer)
                else:
                    question.messages += [assistant(result.text or "(empty)"), user(follow_up(str(err), question.stage))]
                    retry.append(question)
                return
            on_final(question, answer)

        requests = [ChatRequest(tuple(q.messages), settings.sampling) for q in pending]
        client.map(requests, desc=f"{desc} (attempt {attempt})" if attempt > 1 else desc, progress=progress,
                   on_result=handle)
        pending = retry


def make_client(spec: str, max_concurrency: int = 16, brain_options: Mapping[str, Any] | None = None,
                **options: Any) -> ChatClient:
    """The verifier's :class:`ChatClient` (role ``vlm_verifier``); ``brain_options`` reach a ``toy:`` brain
    only (real backends have none)."""
    from valor_lib.specs import parse_spec

    if parse_spec(spec, role="vlm_verifier").kind == "toy" and brain_options:
        options["brain_options"] = dict(brain_options)
    return ChatClient(spec, role="vlm_verifier", max_concurrency=max_concurrency, **options)


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _numbered(boxes: Sequence[Mapping[str, Any]]) -> list[NumberedBox]:
    return [NumberedBox(i + 1, b["label"], tuple(b["bbox"])) for i, b in enumerate(boxes)]


class _Images:
    """Loads each image once per stage (the most recent few are kept)."""

    def __init__(self, root: Path, keep: int = 4):
        self.root, self.keep, self.loaded = root, keep, {}

    def get(self, relative: str) -> Image.Image:
        if relative not in self.loaded:
            with Image.open(self.root / relative) as im:
                self.loaded[relative] = im.convert("RGB")
            while len(self.loaded) > self.keep:
                self.loaded.pop(next(iter(self.loaded)))
        return self.loaded[relative]


@dataclass
class Verification:
    """Which boxes survive each stage, per image, plus call statistics and timings."""

    survivors: dict[str, dict[str, list[str]]]
    calls: dict[str, int]
    failures: dict[str, int]
    seconds: dict[str, float]
    out_dir: Path

    def kept(self, stage: str, image_id: str) -> list[str]:
        return self.survivors[stage].get(image_id, [])

    def dropped(self, stage: str) -> dict[str, list[str]]:
        """Per image, the box ids that reached ``stage`` and did not pass it."""
        order = list(self.survivors)
        before = self.survivors[order[order.index(stage) - 1]]
        passed = {k: set(ids) for k, ids in self.survivors[stage].items()}
        return {k: [b for b in ids if b not in passed.get(k, set())] for k, ids in before.items()}

    def counts(self) -> dict[str, int]:
        """Boxes left after each stage."""
        return {stage: sum(len(v) for v in per_image.values()) for stage, per_image in self.survivors.items()}


class _StageRun:
    """Runs one stage's questions into its resumable file and reads the survivors back."""

    def __init__(self, client: ChatClient, settings: VerifierSettings, out_dir: Path, stage: str, progress: bool):
        self.client, self.settings, self.stage, self.progress = client, settings, stage, progress
        self.path = out_dir / f"{stage}.jsonl"
        self.done = {r["id"]: r for r in read_records(self.path, key="id", missing_ok=True)}

    def check(self, key: str, input_digest: str) -> bool:
        """Whether ``key`` is already answered (for exactly this input)."""
        record = self.done.get(key)
        if record is None:
            return False
        if record["input_digest"] != input_digest:
            raise StaleVerificationError(f"{self.path}: record {key!r} was made from other inputs; remove "
                                         f"{self.path.parent} to verify again")
        return True

    def run(self, questions: Iterator[Question], keys: Sequence[str],
            decide: Callable[[Question, Answer], dict[str, Any]]) -> int:
        """Ask the questions (chunk by chunk) and append their records; returns the number of questions asked.
        ``keys`` are all of the stage's question ids (for the progress bar)."""
        asked = 0
        with ResumableJsonl(self.path, fsync_every=self.settings.chunk_size) as out:

            def final(question: Question, answer: Answer) -> None:
                record = {**question.record, "stage": self.stage, "prompt_version": PROMPT_VERSION,
                          "replies": answer.replies, "attempts": answer.attempts, "cached": answer.cached,
                          "error": answer.error, **decide(question, answer)}
                out.write(record)
                self.done[record["id"]] = record

            bar = tqdm(total=len(keys), initial=sum(1 for k in keys if k in self.done), desc=f"verify: {self.stage}",
                       unit="q", disable=not self.progress)
            for chunk in _chunks_of(questions, self.settings.chunk_size):
                ask(self.client, chunk, self.settings, final, desc=self.stage, progress=False)
                asked += len(chunk)
                bar.update(len(chunk))
            bar.close()
        return asked


def _chunks_of(questions: Iterator[Question], size: int) -> Iterator[list[Question]]:
    chunk: list[Question] = []
    for question in questions:
        chunk.append(question)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _drop_decision(question: Question, answer: Answer) -> dict[str, Any]:
    ids = [b["box_id"] for b in question.record["boxes"]]
    if not answer.ok:
        return {"decision": None, "kept": [], "dropped": ids}
    drop = set(answer.decision.drop)
    return {"decision": {"drop": answer.decision.drop, "notes": answer.decision.notes},
            "kept": [b for i, b in enumerate(ids) if i + 1 not in drop],
            "dropped": [b for i, b in enumerate(ids) if i + 1 in drop]}


def _match_decision(question: Question, answer: Answer) -> dict[str, Any]:
    if not answer.ok:
        return {"decision": None, "kept": False}
    return {"decision": {"match": answer.decision.match, "reason": answer.decision.reason},
            "kept": answer.decision.match}


def _overlay_fields(stage: str, image_id: str, record: Mapping[str, Any], boxes: list[dict[str, Any]],
                    size: tuple[int, int], settings: VerifierSettings) -> tuple[dict[str, Any], list[NumberedBox]]:
    """The record fields of an overlay question (prompt, numbered boxes, input digest), without drawing."""
    numbered = _numbered(boxes)
    make_prompt = coarse_prompt if stage == "coarse" else dedup_prompt
    prompt = make_prompt(numbered, *size)
    listed = [{"number": n.number, "box_id": b["box_id"], "label": b["label"], "bbox": b["bbox"]}
              for n, b in zip(numbered, boxes, strict=True)]
    fields = {"id": image_id, "file": record["file"], "boxes": listed, "prompt": prompt,
              "input_digest": _digest([listed, prompt, settings.overlay_long_side])}
    return fields, numbered


def _overlay_questions(stage: str, run: _StageRun, todo: Mapping[str, list[dict[str, Any]]],
                       records: Mapping[str, Mapping[str, Any]], images: _Images,
                       settings: VerifierSettings) -> Iterator[Question]:
    """Stage-1 or stage-3 questions for the images in ``todo`` (image id -> its boxes) not answered yet."""
    for key, boxes in todo.items():
        record = records[key]
        fields, numbered = _overlay_fields(stage, key, record, boxes, (record["width"], record["height"]), settings)
        if run.check(key, fields["input_digest"]):
            continue
        image = images.get(record["file"])
        overlay = draw_overlay(image, numbered, settings.overlay_long_side)
        numbers = {n.number for n in numbered}
        yield Question(key, [user(fields["prompt"], image, overlay)],
                       lambda text, numbers=numbers: parse_drop(text, numbers), stage, fields)


def verify_candidates(client: ChatClient, candidates: Mapping[str, Mapping[str, Any]], image_root: str | os.PathLike,
                      out_dir: str | os.PathLike, settings: VerifierSettings | None = None,
                      progress: bool = True) -> Verification:
    """Run the three stages over every image's candidate boxes (module docstring)."""
    settings = settings or VerifierSettings()
    out, root = Path(out_dir), Path(image_root)
    out.mkdir(parents=True, exist_ok=True)
    records = {k: r for k, r in candidates.items() if r.get("file")}
    boxes = {k: {b["box_id"]: b for b in r["boxes"]} for k, r in records.items()}
    survivors: dict[str, dict[str, list[str]]] = {"detections": {k: list(b) for k, b in boxes.items()}}
    calls: dict[str, int] = {}
    seconds: dict[str, float] = {}

    # ---- stage 1: coarse filter on the numbered overlay
    run = _StageRun(client, settings, out, "coarse", progress)
    started = time.perf_counter()
    images = _Images(root)

    todo = {k: list(r["boxes"]) for k, r in records.items() if r["boxes"]}
    calls["coarse"] = run.run(_overlay_questions("coarse", run, todo, records, images, settings), list(todo),
                              _drop_decision)
    survivors["coarse"] = {k: (run.done[k]["kept"] if k in run.done else []) for k in records}
    seconds["coarse"] = time.perf_counter() - started

    # ---- stage 2: one crop per surviving box
    run = _StageRun(client, settings, out, "crop", progress)
    started = time.perf_counter()
    crops = [(k, box_id) for k in records for box_id in survivors["coarse"][k]]

    def crop_questions() -> Iterator[Question]:
        for key, box_id in crops:
            box = boxes[key][box_id]
            image = images.get(records[key]["file"])
            prompt = crop_prompt(box["label"])
            fields = {"id": box_id, "image_id": key, "file": records[key]["file"], "label": box["label"],
                      "bbox": box["bbox"], "prompt": prompt,
                      "input_digest": _digest([box["label"], box["bbox"], prompt, settings.crop_padding,
                                               settings.crop_long_side])}
            if run.check(box_id, fields["input_digest"]):
                continue
            crop = verification_crop(image, box["bbox"], settings.crop_padding, settings.crop_long_side)
            yield Question(box_id, [user(prompt, crop)], parse_match, "crop", fields)

    calls["crop"] = run.run(crop_questions(), [b for _, b in crops], _match_decision)
    survivors["crop"] = {k: [b for b in survivors["coarse"][k] if run.done.get(b, {}).get("kept")] for k in records}
    seconds["crop"] = time.perf_counter() - started

    # ---- stage 3: de-duplication on a fresh overlay of the survivors
    run = _StageRun(client, settings, out, "dedup", progress)
    started = time.perf_counter()
    todo = {k: [boxes[k][b] for b in survivors["crop"][k]] for k in records if len(survivors["crop"][k]) >= 2}
    calls["dedup"] = run.run(_overlay_questions("dedup", run, todo, records, images, settings), list(todo),
                             _drop_decision)
    survivors["dedup"] = {k: (run.done[k]["kept"] if k in run.done else list(survivors["crop"][k]))
                          for k in records}
    seconds["dedup"] = time.perf_counter() - started
    failures = {stage: sum(1 for r in read_records(out / f"{stage}.jsonl", key="id", missing_ok=True)
                           if r["error"]) for stage in STAGES}
    return Verification(survivors, calls, failures, {k: round(v, 2) for k, v in seconds.items()}, out)


__all__ = ["ALL_STAGES", "Answer", "Question", "StaleVerificationError", "Verification", "VerifierSettings", "ask",
           "make_client", "verify_candidates"]
