"""Generate spatial queries from unlabelled images (paper A.4.1): a VLM judges each image's suitability and
writes N candidate queries; one is chosen uniformly at random.

Images are visited in a seeded order until enough suitable images have a query. Every image's outcome is
appended to a resumable JSONL file (keyed by image id) as soon as it is final, so an interrupted run
resumes without repeating calls. A reply that does not validate is asked again as a fresh sample, up to
``attempts`` requests; after that (or when the client gives up on the call) the image is recorded as failed.
The chosen candidate depends only on the seed and the image id, so it does not change with the visiting
order or with resumption.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from valor_lib.clients import ChatClient, SamplingParams
from valor_lib.paths import repo_root
from valor_lib.querygen.prompts import InvalidReply, build_request, parse_reply
from valor_lib.resumable import ResumableJsonl, read_records

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class ImageItem:
    """An image to generate queries for; ``id`` is its path relative to the folder, without suffix."""

    id: str
    path: Path


def display_path(path: Path) -> str:
    """A path relative to the repository root when it lies inside it (portable records)."""
    path = Path(path).resolve()
    root = repo_root()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def list_images(folder: str | Path, pattern: str = "*", seed: int = 0) -> list[ImageItem]:
    """The image files under ``folder`` matching ``pattern``, in a seeded random order."""
    base = Path(folder)
    if not base.is_absolute():
        base = repo_root() / base
    if not base.is_dir():
        raise FileNotFoundError(f"image folder {base} does not exist")
    files = sorted(p for p in base.rglob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images matching {pattern!r} under {base}")
    order = np.random.default_rng(seed).permutation(len(files))
    return [ImageItem(str(files[i].relative_to(base).with_suffix("")), files[i]) for i in order]


def choose_index(image_id: str, count: int, seed: int) -> int:
    """The candidate picked for an image: uniform over ``count``, fixed by (seed, image id)."""
    digest = hashlib.sha256(f"{seed}|{image_id}".encode()).digest()
    return int(np.random.default_rng(int.from_bytes(digest[:8], "little")).integers(count))


class QueryGenerator:
    """Runs the query-generation VLM over images (see the module docstring).

    Args:
        client: the VLM (``ChatClient``), e.g. ``toy:querygen`` or ``gemini:gemini-2.5-flash``.
        candidates: queries written per image (the paper: 5).
        attempts: requests per image before an invalid reply makes it a failure.
        sampling: the VLM's sampling parameters (default: the provider's defaults, as in the paper).
        seed: fixes the choice among candidates.
    """

    def __init__(self, client: ChatClient, *, candidates: int = 5, attempts: int = 3,
                 sampling: SamplingParams | None = None, seed: int = 0):
        if candidates < 1 or attempts < 1:
            raise ValueError("candidates and attempts must be >= 1")
        self.client, self.candidates, self.attempts = client, candidates, attempts
        self.sampling, self.seed = sampling or SamplingParams(), seed

    def run(self, images: Sequence[ImageItem], out_path: str | Path, target: int, *,
            progress: bool = True) -> list[dict[str, Any]]:
        """Process images in order until ``target`` of them have a chosen query (or images run out);
        returns every record of the file, in image order."""
        order = {item.id: i for i, item in enumerate(images)}
        with ResumableJsonl(out_path, key="id") as out:
            have = sum(1 for r in read_records(out_path, key="id") if r.get("question"))
            pending = [item for item in images if item.id not in out]
            while have < target and pending:
                chunk, pending = pending[:max(2 * (target - have), 4)], pending[max(2 * (target - have), 4):]
                for record in self._generate(chunk, progress):
                    out.write(record)
                    have += bool(record["question"])
        records = read_records(out_path, key="id")
        return sorted(records, key=lambda r: order.get(r["id"], len(order)))

    def _generate(self, items: list[ImageItem], progress: bool) -> list[dict[str, Any]]:
        replies: dict[str, list[str]] = {item.id: [] for item in items}
        outcome: dict[str, dict[str, Any]] = {}
        todo = list(items)
        for attempt in range(self.attempts):
            if not todo:
                break
            requests = [build_request(item.path, self.candidates, self.sampling, attempt) for item in todo]
            results = self.client.map(requests, desc=f"query generation (attempt {attempt + 1})", progress=progress)
            if attempt == 0 and len(results) > 1 and not any(r.ok for r in results):
                raise RuntimeError(f"the query-generation model failed on all {len(results)} images of a batch; "
                                   f"first error: {results[0].error_type}: {results[0].error}")
            retry = []
            for item, result in zip(todo, results, strict=True):
                if not result.ok:
                    outcome[item.id] = {"error": f"{result.error_type}: {result.error}"}
                    continue
                replies[item.id].append(result.output)
                try:
                    outcome[item.id] = {"reply": parse_reply(result.output, self.candidates)}
                except InvalidReply as err:
                    outcome[item.id] = {"error": f"invalid reply: {err}"}
                    retry.append(item)
            todo = retry
        return [self._record(item, outcome[item.id], replies[item.id]) for item in items]

    def _record(self, item: ImageItem, outcome: dict[str, Any], replies: list[str]) -> dict[str, Any]:
        reply = outcome.get("reply")
        record: dict[str, Any] = {"id": item.id, "image": display_path(item.path), "suitable": None, "reason": None,
                                  "objects": [], "candidates": [], "chosen": None, "question": None,
                                  "attempts": len(replies), "error": outcome.get("error"), "replies": replies}
        if reply is not None:
            record.update(suitable=reply.suitable, reason=reply.reason, objects=reply.objects,
                          candidates=reply.queries, error=None)
            if reply.suitable:
                record["chosen"] = choose_index(item.id, len(reply.queries), self.seed)
                record["question"] = reply.queries[record["chosen"]]
        return record
