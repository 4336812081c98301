"""Where pseudo-labels are mined: (image, question) pairs from training splits and generated queries.

Formats (``MiningSourceParams.format``):

- ``omni3d``: Omni3D-Bench rows after the held-out evaluation rows (``skip``), read by the evaluation loader
  (``path`` is its data root; ``tables`` = ``files`` for local parquet, ``hf`` for the hub);
- ``grit``: rows with ``question`` and ``image`` (relative to ``images``): GRIT jsonl files, or a JSON list
  such as TallyQA's own ``train.json``;
- ``gqa``: GQA's own questions file (``train_balanced_questions.json``: question id -> ``imageId``,
  ``question``; images ``<images>/<imageId>.jpg``);
- ``vsr``: a VSR jsonl (``caption`` rewritten to a question, ``image`` under ``images``);
- ``queries``: generated queries, one JSON object per line with ``question`` and ``image`` (a path relative
  to ``images``, or to the repository root when ``images`` is unset), optionally ``id`` and ``source`` (the RL
  query set of the query-generation stage; ``keep_source`` selects its generated rows).

Exclusions (the paper discards COCO-val images so that COCO-val mAP stays a fair test): image file names in
COCO json files, in plain lists, and Visual Genome images whose ``coco_id`` is one of those COCO images.
A source that reads images from the held-out detection set itself is an error, not something to filter.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import Field

from valor_lib.evaluation.records import ImageRef
from valor_lib.params import StrictModel
from valor_lib.paths import repo_root, require


class MiningSourceError(ValueError):
    """A mining source is misconfigured, unreadable, or overlaps the held-out evaluation images."""


class MiningSourceParams(StrictModel):
    """One source of (image, question) pairs."""

    name: str = Field(min_length=1, description="source dataset name (the balanced sampler's unit)")
    format: Literal["omni3d", "grit", "gqa", "vsr", "queries"]
    path: str = Field(description="jsonl file; for omni3d the benchmark data root")
    images: str | None = Field(default=None, description="folder image paths are relative to")
    tables: Literal["files", "hf"] = Field(default="files", description="omni3d only: local parquet or the hub")
    skip: int = Field(default=0, ge=0, description="omni3d only: leading evaluation rows that are never mined")
    limit: int | None = Field(default=None, ge=0, description="at most this many rows (first rows kept)")
    keep_source: str | None = Field(default=None, description="queries only: keep rows whose 'source' is this")


class ExclusionParams(StrictModel):
    """Images never mined (by file name)."""

    coco: list[str] = Field(default_factory=list, description="COCO json files whose images are excluded")
    names: list[str] = Field(default_factory=list, description="file names excluded")
    vg_image_data: str | None = Field(default=None, description="Visual Genome image_data.json: VG images "
                                      "whose coco_id is in the excluded COCO files are excluded too")


@dataclass(frozen=True)
class MiningItem:
    """One (image, question) pair. ``image_name`` identifies the image within its source."""

    id: str
    source: str
    question: str
    image_name: str
    image: ImageRef

    @property
    def image_key(self) -> str:
        """The image's id across sources (several questions may share one image)."""
        return f"{self.source}/{self.image_name}"


def _resolve(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p if p.is_absolute() else repo_root() / p


def _rows(path: Path, fmt: str) -> list[dict]:
    """The rows of a source file: JSON Lines, a JSON list, or (``gqa``) a JSON object of questions by id."""
    require(path, "mining source file")
    if fmt == "gqa" or path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise MiningSourceError(f"{path}: not JSON ({err})") from None
        if fmt == "gqa":
            if not isinstance(data, dict):
                raise MiningSourceError(f"{path}: a GQA questions file maps question ids to questions")
            return [{"id": qid, "question": q.get("question"), "image": f"{q.get('imageId')}.jpg"}
                    for qid, q in data.items() if isinstance(q, dict)]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise MiningSourceError(f"{path}: expected a JSON list of objects")
        return data
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise MiningSourceError(f"{path}:{lineno}: not JSON ({err})") from None
            if not isinstance(row, dict):
                raise MiningSourceError(f"{path}:{lineno}: expected a JSON object")
            rows.append(row)
    return rows


def _field(row: dict, key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MiningSourceError(f"{where}: missing or empty field {key!r}")
    return value


def _from_rows(params: MiningSourceParams) -> list[MiningItem]:
    from valor_lib.evaluation.rewrites import RewriteError, vsr_question

    path = _resolve(params.path)
    folder = _resolve(params.images) if params.images else repo_root()
    rows = _rows(path, params.format)
    if params.keep_source is not None:
        rows = [row for row in rows if row.get("source") == params.keep_source]
    rows = rows[: params.limit]
    items = []
    for index, row in enumerate(rows):
        where = f"{path.name} line {index + 1}"
        image = _field(row, "image", where)
        if params.format == "vsr":
            try:
                question = vsr_question(_field(row, "caption", where))
            except RewriteError as err:
                raise MiningSourceError(f"{where}: {err}") from None
        else:
            question = _field(row, "question", where)
        item_id = f"{index:05d}"
        if params.format in ("queries", "gqa") and "id" in row:
            item_id = str(row["id"]).removeprefix(f"{params.name}/")
        items.append(MiningItem(f"{params.name}/{item_id}", params.name, question, image,
                                ImageRef(path=folder / image)))
    return items


def _from_omni3d(params: MiningSourceParams) -> list[MiningItem]:
    from valor_lib.evaluation.benchmarks import Source, load_omni3d_train

    source = Source(root=_resolve(params.path), tables=params.tables, omni3d_eval_rows=params.skip)
    rows = load_omni3d_train(source)[: params.limit]
    items = []
    for item in rows:
        name = item.meta.get("image_index") or item.id.replace("/", "_") + ".png"
        items.append(MiningItem(f"{params.name}/{item.id.rsplit('/', 1)[-1]}", params.name, item.question,
                                str(name), item.image))
    return items


def load_source(params: MiningSourceParams) -> list[MiningItem]:
    """The (image, question) pairs of one source, in file order."""
    return _from_omni3d(params) if params.format == "omni3d" else _from_rows(params)


def _basename(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).name


def excluded_names(params: ExclusionParams) -> set[str]:
    """Every excluded image file name (base names, so any folder layout matches)."""
    names = {_basename(n) for n in params.names}
    coco_ids: set[int] = set()
    for path in params.coco:
        data = json.loads(require(_resolve(path), "COCO json of excluded images").read_text())
        for image in data.get("images", []):
            names.add(_basename(str(image["file_name"])))
            coco_ids.add(int(image["id"]))
    if params.vg_image_data:
        records = json.loads(require(_resolve(params.vg_image_data), "Visual Genome image_data.json").read_text())
        names |= {f"{r['image_id']}.jpg" for r in records if r.get("coco_id") in coco_ids}
    return names


def check_not_heldout(items: Iterable[MiningItem], heldout_dirs: Sequence[str | os.PathLike]) -> None:
    """Raise when any item's image file lies in a held-out image folder (that split must never be mined)."""
    folders = [_resolve(d).resolve() for d in heldout_dirs]
    for item in items:
        path = item.image.path
        if path is None:
            continue
        resolved = Path(path).resolve()
        if any(resolved.is_relative_to(folder) for folder in folders):
            raise MiningSourceError(f"source {item.source!r} mines {resolved}, an image of the held-out "
                                    f"evaluation set; remove that source")


@dataclass(frozen=True)
class MiningSet:
    """The mined pairs after exclusion, and how many pairs each source lost to it."""

    items: list[MiningItem]
    excluded: dict[str, int]

    def by_source(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.source] = counts.get(item.source, 0) + 1
        return counts


def load_sources(sources: Sequence[MiningSourceParams], exclusion: ExclusionParams,
                 heldout_dirs: Sequence[str | os.PathLike] = ()) -> MiningSet:
    """All sources' pairs minus excluded images; refuses sources that read the held-out images."""
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise MiningSourceError(f"mining source names must be distinct, got {names}")
    items = [item for source in sources for item in load_source(source)]
    check_not_heldout(items, heldout_dirs)
    skip = excluded_names(exclusion)
    kept, excluded = [], dict.fromkeys(names, 0)
    for item in items:
        if _basename(item.image_name) in skip:
            excluded[item.source] += 1
        else:
            kept.append(item)
    return MiningSet(kept, excluded)
