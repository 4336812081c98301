"""The query-generation prompt (an image in, a suitability judgement and N spatial queries out, as JSON) and
the validation of its replies.

Reply format::

    {"suitable": true, "reason": "...", "objects": ["the red car", ...], "queries": ["...?", ...]}

A suitable reply must carry exactly N distinct, non-empty questions ending in "?"; an unsuitable one none.
:func:`parse_reply` returns the reply or says what is wrong with it (a reason to ask again).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from valor_lib.clients import ChatRequest, SamplingParams, user

MAX_QUERY_CHARS = 300
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
                 9: "nine", 10: "ten"}

PROMPT = """\
You are helping to build a training set of spatial reasoning questions about photographs. Look carefully at \
the image.

First decide whether the image is suitable. It is suitable when it shows at least two distinct, clearly \
visible objects that an object detector could find by name (furniture, vehicles, animals, people, household \
items and the like). Blank, abstract or text-only images, and images with a single object or with nothing \
that can be named, are not suitable.

If it is suitable, write {count} different questions about it. Every question must:
- be answerable from this image alone, with a short answer: yes or no, a number, an object name, a colour, \
or a length in meters;
- refer to objects with noun phrases a detector can find ("the red car", "the wooden chair") and mention \
only things that are visible;
- need several reasoning steps: locate the objects, then compare positions in the image (left of, right \
of, above, below), distances from the camera (in front of, behind, closest, farthest), real-world sizes \
(taller, wider, how many times larger), counts under a condition, or colours;
- prefer quantitative and 3D reasoning (relative sizes, distances, conditional counts) over simply naming \
what is there.
Make the {count} questions differ in kind.

Reply with JSON only, in exactly this form:
{{"suitable": true, "reason": "<one sentence>", "objects": ["<noun phrase>", ...], "queries": [{slots}]}}
If the image is not suitable, reply:
{{"suitable": false, "reason": "<one sentence>", "objects": [], "queries": []}}"""

_COUNT = re.compile(r"write (\w+) different questions")


def prompt_text(count: int) -> str:
    """The prompt asking for ``count`` queries."""
    if count not in _NUMBER_WORDS:
        raise ValueError(f"count must be between 1 and {max(_NUMBER_WORDS)}, got {count}")
    slots = ", ".join(f'"<question {i}>"' for i in range(1, count + 1))
    return PROMPT.format(count=_NUMBER_WORDS[count], slots=slots)


def requested_count(text: str) -> int | None:
    """How many queries a query-generation prompt asks for (None if the text is not one)."""
    m = _COUNT.search(text)
    words = {w: n for n, w in _NUMBER_WORDS.items()}
    return words.get(m.group(1)) if m else None


def build_request(image: Image.Image | Path, count: int, sampling: SamplingParams | None = None,
                  sample_index: int = 0) -> ChatRequest:
    """The request for one image (text first, then the image)."""
    return ChatRequest((user(prompt_text(count), image),), sampling or SamplingParams(), sample_index)


@dataclass(frozen=True)
class QueryGenReply:
    """A valid reply."""

    suitable: bool
    reason: str
    queries: list[str]
    objects: list[str] = field(default_factory=list)


class InvalidReply(ValueError):
    """A reply that does not follow the format; the message says why."""


def _json_object(text: str) -> dict:
    body = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start == -1 or end < start:
        raise InvalidReply("no JSON object in the reply")
    try:
        value = json.loads(body[start:end + 1])
    except json.JSONDecodeError as err:
        raise InvalidReply(f"the reply is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise InvalidReply("the reply is not a JSON object")
    return value


def parse_reply(text: str, count: int) -> QueryGenReply:
    """Validate a reply asking for ``count`` queries (raises :class:`InvalidReply`)."""
    value = _json_object(text or "")
    suitable = value.get("suitable")
    if not isinstance(suitable, bool):
        raise InvalidReply("'suitable' must be true or false")
    queries, objects = value.get("queries", []), value.get("objects", [])
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise InvalidReply("'queries' must be a list of strings")
    if not isinstance(objects, list) or not all(isinstance(o, str) for o in objects):
        raise InvalidReply("'objects' must be a list of strings")
    reason = value.get("reason", "")
    if not isinstance(reason, str):
        raise InvalidReply("'reason' must be a string")
    queries = [" ".join(q.split()) for q in queries]
    if not suitable:
        return QueryGenReply(False, reason, [], objects)
    if len(queries) != count:
        raise InvalidReply(f"expected {count} queries, got {len(queries)}")
    for q in queries:
        if not q.endswith("?") or len(q) > MAX_QUERY_CHARS or len(q) < 8:
            raise InvalidReply(f"not a usable question: {q!r}")
    if len({q.lower() for q in queries}) != len(queries):
        raise InvalidReply("the queries are not all different")
    return QueryGenReply(True, reason, queries, objects)
