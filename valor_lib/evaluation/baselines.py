"""Baselines beside VALOR.

- "LLMs with tools" (paper Tables 1 and 8) need nothing new: any LLM behind a spec is a program writer (the
  policy's ``ProgramWriter``, built with the same prompt builder as VALOR), run through
  :class:`~valor_lib.evaluation.solvers.ProgramSolver` with the same tools.
- Direct-answer VLMs (Tables 4 and 7): :class:`DirectAnswerSolver` shows the image and the question to a VLM and
  reads its answer; ``grounded=True`` first asks for boxes of the objects the question is about (Table 7's
  "grounded" GPT-5-mini), which are kept in the record's ``boxes``. Prompts are ours.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from typing import Any

from PIL import Image

from valor_lib.clients import ChatClient, ChatRequest, SamplingParams, user
from valor_lib.evaluation.fingerprint import digest_json, spec_fingerprint
from valor_lib.evaluation.records import EvalItem

FORMAT_HINTS = {
    "int": "a single whole number",
    "float": "a single number (no units)",
    "yes/no": "yes or no",
    "choice": "exactly one of the listed options, written out",
    "str": "a short phrase of one to three words",
}

DIRECT_PROMPT = """Look at the image and answer the question about it.

Question: {question}

Think briefly if you need to, then finish with one final line of the form "Answer: <your answer>", where the \
answer is {hint}."""

GROUNDED_PROMPT = """Look at the image ({width}x{height} pixels) and answer the question about it.

Question: {question}

First find every object the question is about and give its bounding box in pixel coordinates, as a JSON list \
inside <boxes></boxes>, e.g. <boxes>[{{"label": "chair", "box": [x1, y1, x2, y2]}}]</boxes>. Then use the boxes \
to reason briefly, and finish with one final line of the form "Answer: <your answer>", where the answer is {hint}."""

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_ANSWER_LINE = re.compile(r"^[\s>*#_`-]*(?:final\s+)?answer\s*[*_]*\s*[:：]\s*(?P<answer>.*?)\s*$",
                          re.IGNORECASE | re.MULTILINE)
_BOXED = re.compile(r"\\boxed\{(?P<answer>[^{}]*)\}")
_BOXES = re.compile(r"<boxes>(?P<body>.*?)</boxes>", re.DOTALL | re.IGNORECASE)
_DECORATION = " \t*_`\"'"
MAX_BARE_ANSWER_CHARS = 80


def extract_answer(text: str | None) -> str | None:
    """The answer a free-form reply gives: its last ``Answer: ...`` line, else a ``\\boxed{}`` value, else the
    whole reply when it is one short line; None when there is none."""
    if not text:
        return None
    body = _THINK.sub("", text).strip()
    lines = [m["answer"] for m in _ANSWER_LINE.finditer(body)]
    found = [line for line in lines if line.strip(_DECORATION)]
    if found:
        answer = found[-1]
    elif lines:  # an "Answer:" line with nothing after it
        return None
    elif boxed := _BOXED.findall(body):
        answer = boxed[-1]
    elif "\n" not in body and len(body) <= MAX_BARE_ANSWER_CHARS:
        answer = body
    else:
        return None
    answer = answer.strip(_DECORATION).rstrip(".").strip(_DECORATION)
    return answer or None


def extract_boxes(text: str | None, size: tuple[int, int]) -> tuple[list[dict[str, Any]], str | None]:
    """Boxes from a ``<boxes>[{"label", "box"}]</boxes>`` block, clipped to the image; (boxes, problem)."""
    match = _BOXES.search(text or "")
    if match is None:
        return [], "no <boxes> block"
    try:
        entries = json.loads(match["body"])
    except json.JSONDecodeError as err:
        return [], f"<boxes> is not JSON: {err.msg}"
    if not isinstance(entries, list):
        return [], "<boxes> is not a list"
    width, height = size
    boxes, dropped = [], 0
    for entry in entries:
        box = entry.get("box") if isinstance(entry, dict) else None
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box)):
            dropped += 1
            continue
        x1, y1, x2, y2 = (float(v) for v in box)
        x1, x2 = sorted((min(max(x1, 0.0), width), min(max(x2, 0.0), width)))
        y1, y2 = sorted((min(max(y1, 0.0), height), min(max(y2, 0.0), height)))
        if x2 - x1 < 1 or y2 - y1 < 1:
            dropped += 1
            continue
        boxes.append({"label": str(entry.get("label", "")), "box": [x1, y1, x2, y2]})
    return boxes, (f"{dropped} malformed or empty boxes dropped" if dropped else None)


def direct_prompt(item: EvalItem, size: tuple[int, int], grounded: bool = False) -> str:
    """The prompt for one item (the answer-format hint follows the benchmark's answer type)."""
    hint = FORMAT_HINTS[item.answer_type]
    if grounded:
        return GROUNDED_PROMPT.format(question=item.question, hint=hint, width=size[0], height=size[1])
    return DIRECT_PROMPT.format(question=item.question, hint=hint)


class DirectAnswerSolver:
    """A VLM answers from (image, question) without tools; see module docstring."""

    kind = "direct"

    def __init__(self, client: ChatClient, *, grounded: bool = False, sampling: SamplingParams | None = None):
        self.client, self.grounded = client, grounded
        self.sampling = sampling or SamplingParams()

    def identity(self) -> dict[str, Any]:
        template = GROUNDED_PROMPT if self.grounded else DIRECT_PROMPT
        return {"kind": self.kind, "grounded": self.grounded, "model": spec_fingerprint(str(self.client.spec)),
                "sampling": self.sampling.as_dict(), "prompt": digest_json([template, FORMAT_HINTS])}

    def solve(self, items: Sequence[EvalItem], images: Sequence[Image.Image], seed: int) -> list[dict[str, Any]]:
        params = dataclasses.replace(self.sampling, seed=seed)
        requests = [ChatRequest((user(direct_prompt(item, image.size, self.grounded), image),), params)
                    for item, image in zip(items, images, strict=True)]
        outcomes = []
        for image, result in zip(images, self.client.map(requests, progress=False), strict=True):
            outcome: dict[str, Any] = {
                "prediction": None, "response": result.output, "plan": None, "code": None, "format_ok": None,
                "format_problems": [], "error_type": None, "error": "", "stdout": "", "tool_calls": [],
                "timings": {"latency_s": result.latency_s, "cached": result.cached},
            }
            if not result.ok:
                outcome.update(error_type="request", error=f"{result.error_type}: {result.error}")
                outcomes.append(outcome)
                continue
            answer = extract_answer(result.output)
            outcome.update(prediction=answer, format_ok=answer is not None)
            if answer is None:
                outcome.update(error_type="no_answer", error="no answer found in the reply")
            if self.grounded:
                boxes, problem = extract_boxes(result.output, image.size)
                outcome["boxes"] = boxes
                if problem:
                    outcome["format_problems"] = [problem]
            outcomes.append(outcome)
        return outcomes
