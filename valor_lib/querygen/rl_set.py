"""The RL query set (paper §3.1, A.6.3): generated queries plus the last Omni3D-Bench training queries, no answers.

Paper: 400 queries generated from SA-1B images + the last 400 rows of Omni3D-Bench (the first 100 are held out
for evaluation) = 800. Each record: ``id``, ``image`` (a file path), ``question``, ``source``
(``generated`` or ``omni3d-bench``). Omni3D-Bench images come embedded in its table; they are written once
as PNG files next to the set so every record points at a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from valor_lib.evaluation.benchmarks import Source, load_omni3d_train
from valor_lib.querygen.generate import display_path
from valor_lib.resumable import encode_record
from valor_lib.rewards.toy_requirements import RELATION_AXES, requirements

QUERY_KINDS = ("counting", "2D relation", "depth relation", "3D size", "attribute", "other")


def generated_queries(records: Iterable[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The first ``count`` images (in visiting order) that got a query, as RL records."""
    chosen = [r for r in records if r.get("question")][:count]
    return [{"id": f"generated/{r['id']}", "image": r["image"], "question": r["question"], "source": "generated"}
            for r in chosen]


def omni3d_rl_queries(source: Source, count: int, image_dir: Path) -> list[dict[str, Any]]:
    """The last ``count`` Omni3D-Bench rows after the held-out ones, answers dropped, images saved as PNG."""
    items = load_omni3d_train(source)
    chosen = items[-count:] if count < len(items) else items
    image_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for item in chosen:
        if item.image.path is not None and item.image.path.is_file():
            path = item.image.path
        else:
            name = str(item.meta.get("image_index") or item.id)
            path = image_dir / (re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem) + ".png")
            if not path.is_file():
                item.image.load().save(path)
        records.append({"id": item.id, "image": display_path(path), "question": item.question,
                        "source": "omni3d-bench"})
    return records


def write_rl_set(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write the set as JSON Lines (atomically); ids must be unique."""
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError("RL query ids must be unique")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"".join(encode_record(r) for r in records))
    tmp.replace(path)
    return path


def query_kind(question: str) -> str:
    """A coarse kind of a query, for the mix chart (3D size > depth > 2D > counting > attribute)."""
    req = requirements(question)
    text = question.lower()
    axes = {RELATION_AXES[r] for r in req.relations}
    if req.sizes or re.search(r"\b(meters?|metres?|3d|how (tall|wide|long|high)|taller|wider|bigger)\b", text):
        return "3D size"
    if "depth" in axes:
        return "depth relation"
    if axes:
        return "2D relation"
    if text.startswith("how many") or req.family in ("count", "count_rel"):
        return "counting"
    if req.colors or req.asks_color:
        return "attribute"
    return "other"
