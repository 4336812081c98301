"""The VLM verifier's three prompts and the validation of its JSON replies (our own wording).

Stage 1 (``coarse``) and stage 3 (``dedup``) show the original image, an overlay with numbered boxes and the
same boxes as a JSON list, and ask for the numbers to drop; stage 2 (``crop``) shows one padded, upscaled crop
and its label and asks whether they match. Every reply is one JSON object; a reply that does not validate is
answered with :func:`follow_up` (the problem and the expected shape) and asked again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from valor_lib.grounding.views import NumberedBox

PROMPT_VERSION = 1
STAGES = ("coarse", "crop", "dedup")

DROP_SHAPE = '{"drop": [<numbers of the boxes to remove>], "notes": "<one short sentence>"}'
MATCH_SHAPE = '{"match": true or false, "reason": "<one short sentence>"}'

COARSE_PROMPT = """You are reviewing the output of an object detector before it is used as training data.

The first picture is a photo ({width}x{height} pixels). The second picture is the same photo with each detection drawn as a green box tagged "<number>: <label>". The same detections are listed here as JSON, with box corners [x1, y1, x2, y2] in pixels of the first picture:

Detections:
{boxes}

Remove a detection when
- what is inside its box is not the thing its label names: a different kind of object, a picture, poster or drawing of the thing, a shadow, a rug or floor pattern, or background; or
- the box fits the thing badly: it covers only a small part of it, or it is mostly empty space around it.
Keep every detection whose box frames a real instance of its label reasonably tightly, even when several boxes cover the same object (duplicates are handled in a later step).
"""

CROP_PROMPT = """The picture is a close-up taken around one box of an object detector, with a small margin of context. The detector labelled the box "{label}".

Decide whether the main content of this close-up matches the label "{label}". It matches only if all of these hold:
- the most prominent thing in the close-up is a real {label}, not a picture or poster of one, a shadow, a floor pattern or a similar-looking object of another kind;
- it is a single instance, not a group of several objects;
- it is clearly visible and not cut off so much that only a small fragment of it shows.
"""

DEDUP_PROMPT = """You are cleaning up object detections that have each been checked to show a real object matching their label. Some objects may still be boxed more than once.

The first picture is a photo ({width}x{height} pixels). The second picture is the same photo with each remaining detection drawn as a green box tagged "<number>: <label>". The same detections are listed here as JSON, with box corners [x1, y1, x2, y2] in pixels of the first picture:

Detections:
{boxes}

Find duplicates: two or more boxes on the same physical object (they overlap heavily, or one lies inside another around the same object). For each such group keep only the box that frames the object best and remove the others. Boxes on different objects are never duplicates, even when the objects touch or look alike.
"""

REPLY_WITH = "\nReply with one JSON object and nothing else:\n"
FOLLOW_UP = "Your reply could not be used: {problem}. Reply again with one JSON object and nothing else, shaped like {shape}"


class ReplyError(ValueError):
    """A verifier reply that is not the JSON object its stage asks for."""


def box_listing(boxes: Sequence[NumberedBox]) -> str:
    """The JSON list of boxes shown with an overlay, one box per line."""
    return "[\n" + ",\n".join(json.dumps(b.listing()) for b in boxes) + "\n]"


def coarse_prompt(boxes: Sequence[NumberedBox], width: int, height: int) -> str:
    return COARSE_PROMPT.format(width=width, height=height, boxes=box_listing(boxes)) + REPLY_WITH + DROP_SHAPE


def crop_prompt(label: str) -> str:
    return CROP_PROMPT.format(label=label) + REPLY_WITH + MATCH_SHAPE


def dedup_prompt(boxes: Sequence[NumberedBox], width: int, height: int) -> str:
    return DEDUP_PROMPT.format(width=width, height=height, boxes=box_listing(boxes)) + REPLY_WITH + DROP_SHAPE


def follow_up(problem: str, stage: str) -> str:
    """The message sent after an unusable reply."""
    return FOLLOW_UP.format(problem=problem, shape=MATCH_SHAPE if stage == "crop" else DROP_SHAPE)


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def json_object(text: str) -> dict[str, Any]:
    """The first JSON object in a reply (code fences and text around it are tolerated)."""
    if not isinstance(text, str) or not text.strip():
        raise ReplyError("the reply is empty")
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        start = candidate.find("{")
        while start != -1:
            try:
                value, _ = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError:
                start = candidate.find("{", start + 1)
                continue
            if isinstance(value, dict):
                return value
            start = candidate.find("{", start + 1)
    raise ReplyError("it contains no JSON object")


@dataclass(frozen=True)
class DropDecision:
    """A stage-1 or stage-3 verdict: the box numbers to drop."""

    drop: list[int]
    notes: str


@dataclass(frozen=True)
class MatchDecision:
    """A stage-2 verdict on one crop."""

    match: bool
    reason: str


def parse_drop(text: str, numbers: Collection[int]) -> DropDecision:
    """Validate a ``{"drop": [...]}`` reply against the box numbers that were shown."""
    obj = json_object(text)
    if "drop" not in obj:
        raise ReplyError('the JSON object has no "drop" list')
    raw = obj["drop"]
    if not isinstance(raw, list):
        raise ReplyError('"drop" must be a list of box numbers')
    drop = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ReplyError(f'"drop" holds {value!r}, which is not a box number')
        try:
            number = int(value)
        except ValueError:
            raise ReplyError(f'"drop" holds {value!r}, which is not a box number') from None
        if number not in numbers:
            raise ReplyError(f"box {number} does not exist (the boxes are numbered {min(numbers)} to {max(numbers)})")
        drop.append(number)
    return DropDecision(sorted(set(drop)), str(obj.get("notes", ""))[:500])


def parse_match(text: str) -> MatchDecision:
    """Validate a ``{"match": true|false}`` reply."""
    obj = json_object(text)
    value = obj.get("match")
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
        value = value.strip().lower() in ("true", "yes")
    if not isinstance(value, bool):
        raise ReplyError('"match" must be true or false')
    return MatchDecision(value, str(obj.get("reason", ""))[:500])
