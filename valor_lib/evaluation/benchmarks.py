"""Benchmark loaders (contract): ``load(benchmark, source, limit, seed) -> list[EvalItem]``.

A :class:`Source` says where the data live, from params, never from the profile name:

- ``tables="files"``: every benchmark from local files laid out like the real ones (the toy world writes this
  layout under ``data/toy/benchmarks``): ``omni3d-bench/train.parquet``, ``robospatial/<split>.parquet``,
  ``blink/<config>/val.parquet``, ``countbenchqa/test.parquet``, ``realworldqa/test.parquet`` (HF ``Image``
  columns), ``vsr/dev.jsonl`` + ``vsr/images/``;
- ``tables="hf"``: those six from the Hugging Face hub through ``datasets`` (cached in ``cache_dir``).

TallyQA and GQA are the GRIT jsonl files in both cases (``<root>/tallyqa/tallyqa_val.jsonl`` with images under
``<root>/tallyqa/`` or ``<root>/tallyqa/visual_genome/``; ``<root>/gqa/gqa_val.jsonl`` with images under
``<root>/gqa/``). VSR images are read from ``<root>/vsr/images/<image>``; only with ``download_images`` is a
missing one fetched from its ``image_link`` (and kept there). The GQA subset of VADAR (Table 3) is read from a
local VADAR-format annotations file (``vadar_gqa``), whose public location is unknown.

Omni3D-Bench: the first ``omni3d_eval_rows`` rows are the evaluation set; :func:`load_omni3d_train` gives the
rest (the RL queries). With ``limit`` smaller than the set, a seeded subsample is taken (kept in source order).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from valor_lib.evaluation.metrics import normalize_text
from valor_lib.evaluation.records import BENCHMARKS, EvalItem, ImageRef
from valor_lib.evaluation.rewrites import (
    RewriteError,
    listed_options,
    option_for_letter,
    split_lettered,
    vsr_question,
    with_options,
)
from valor_lib.paths import repo_root

VADAR_GQA = "gqa-vadar"


class BenchmarkFormatError(ValueError):
    """A benchmark file or row does not have the fields and values its loader expects."""


@dataclass(frozen=True)
class Table:
    """One split of a benchmark: its local file and its Hugging Face location."""

    benchmark: str
    subset: str | None
    local: str  # relative to Source.root
    hf_id: str | None = None
    hf_config: str | None = None
    hf_split: str = "train"
    hf_data_files: Mapping[str, str] | None = None
    image_column: str | None = None


TABLES: dict[str, tuple[Table, ...]] = {
    "omni3d-bench": (Table("omni3d-bench", None, "omni3d-bench/train.parquet", "dmarsili/Omni3D-Bench",
                           hf_split="train", image_column="image"),),
    "tallyqa": (Table("tallyqa", None, "tallyqa/tallyqa_val.jsonl"),),
    "gqa": (Table("gqa", None, "gqa/gqa_val.jsonl"),),
    "robospatial": tuple(
        Table("robospatial", s, f"robospatial/{s}.parquet", "chanhee-luke/RoboSpatial-Home", hf_split=s,
              image_column="img") for s in ("compatibility", "configuration")),
    "vsr": (Table("vsr", None, "vsr/dev.jsonl", "cambridgeltl/vsr_zeroshot", hf_split="dev",
                  hf_data_files={"dev": "dev.jsonl"}),),
    "blink": tuple(
        Table("blink", s, f"blink/{s}/val.parquet", "BLINK-Benchmark/BLINK", hf_config=s, hf_split="val",
              image_column="image_1") for s in ("Counting", "Spatial_Relation")),
    "countbenchqa": (Table("countbenchqa", None, "countbenchqa/test.parquet", "vikhyatk/CountBenchQA",
                           hf_split="test", image_column="image"),),
    # the mirror the authors evaluated on; its split is "test" (xai-org's own repo renamed test_0412 -> test)
    "realworldqa": (Table("realworldqa", None, "realworldqa/test.parquet", "nirajandhakal/realworldqa",
                          hf_split="test", image_column="image"),),
}
GRIT = ("tallyqa", "gqa")
IMAGE_DIRS = {"tallyqa": ("tallyqa", "tallyqa/visual_genome"), "gqa": ("gqa", "gqa/images"), "vsr": ("vsr/images",)}


@dataclass(frozen=True)
class Source:
    """Where benchmark data come from (module docstring). Relative paths resolve against the repo root."""

    root: Path | str
    tables: str = "files"
    cache_dir: Path | str | None = None
    download_images: bool = False
    omni3d_eval_rows: int = 100
    hf_datasets: Mapping[str, str] = field(default_factory=dict)
    vadar_gqa: Path | str | None = None

    def __post_init__(self) -> None:
        if self.tables not in ("files", "hf"):
            raise ValueError(f"Source.tables must be 'files' or 'hf', got {self.tables!r}")
        unknown = [k for k in self.hf_datasets if k not in TABLES or k in GRIT]
        if unknown:
            raise ValueError(f"hf_datasets: no hub dataset is used for {sorted(unknown)}")
        object.__setattr__(self, "root", _resolve(self.root))
        for name in ("cache_dir", "vadar_gqa"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _resolve(getattr(self, name)))

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Source:
        """From an ``evaluation.data`` params mapping (see ``valor_lib.evaluation.config``)."""
        return cls(**dict(params))


def _resolve(path: Path | str) -> Path:
    path = Path(path)
    return path if path.is_absolute() else repo_root() / path


# ---------------------------------------------------------------- reading tables


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"benchmark file {path} not found")
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise BenchmarkFormatError(f"{path}:{lineno}: not JSON ({err})") from None
    return rows


class _Rows:
    """Rows of one table with lazily fetched images (``image(i)`` returns bytes or a path)."""

    def __init__(self, rows: list[dict[str, Any]], images: Callable[[int], Any] | None = None):
        self.rows, self.images = rows, images

    def image(self, index: int) -> Callable[[], Any] | None:
        return None if self.images is None else (lambda: self.images(index))


def _read_dataset(table: Table, source: Source) -> _Rows:
    import datasets

    cache = str(source.cache_dir) if source.cache_dir else None
    quiet = not datasets.are_progress_bars_disabled()
    if quiet:  # one bar per small table is noise; the runner shows progress
        datasets.disable_progress_bars()
    try:
        if source.tables == "files":
            path = source.root / table.local
            if not path.is_file():
                raise FileNotFoundError(f"benchmark file {path} not found (tables='files', root={source.root})")
            ds = datasets.Dataset.from_parquet(str(path), cache_dir=cache)
        else:
            hf_id = source.hf_datasets.get(table.benchmark, table.hf_id)
            kwargs: dict[str, Any] = {"split": table.hf_split, "cache_dir": cache}
            if table.hf_data_files:
                kwargs["data_files"] = dict(table.hf_data_files)
            ds = datasets.load_dataset(hf_id, table.hf_config, **kwargs)
    finally:
        if quiet:
            datasets.enable_progress_bars()
    column = table.image_column
    if column is None:
        return _Rows(list(ds))
    if column not in ds.column_names:
        raise BenchmarkFormatError(f"{table.benchmark}: no image column {column!r} in {ds.column_names}")
    images = ds.select_columns([column]).cast_column(column, datasets.Image(decode=False))
    rows = list(ds.remove_columns([column]))

    def fetch(index: int) -> Any:
        value = images[index][column]
        return (value.get("bytes") or value.get("path")) if isinstance(value, dict) else value

    return _Rows(rows, fetch)


def _read(table: Table, source: Source) -> _Rows:
    if table.benchmark in GRIT or (table.benchmark == "vsr" and source.tables == "files"):
        return _Rows(_read_jsonl(source.root / table.local))
    return _read_dataset(table, source)


def _image_file(source: Source, benchmark: str, name: str) -> Path:
    """The first existing candidate location of a GRIT / VSR image file (else the first candidate)."""
    candidates = [source.root / folder / name for folder in IMAGE_DIRS[benchmark]]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _fetched(fetch: Callable[[], Any] | None, name: str) -> ImageRef:
    if fetch is None:
        return ImageRef(name=name)
    return ImageRef(fetch=fetch, name=name)


# ---------------------------------------------------------------- rows -> items


def _require(row: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise BenchmarkFormatError(f"{where}: missing fields {missing}; has {sorted(row)}")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _item_id(benchmark: str, subset: str | None, index: int) -> str:
    return f"{benchmark}/{subset}/{index:05d}" if subset else f"{benchmark}/{index:05d}"


def _number(value: Any, kind: type, where: str) -> Any:
    """``value`` as int or float; an int ground truth may be written "3" or "3.0" but must be integral."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number) or isinstance(value, bool) or (kind is int and number != int(number)):
        raise BenchmarkFormatError(f"{where}: answer {value!r} is not a valid {kind.__name__}")
    return kind(number)


def _omni3d(row: dict, where: str) -> dict[str, Any]:
    _require(row, ("question", "answer", "answer_type"), where)
    question, raw, kind = _text(row["question"]), _text(row["answer"]).strip(), row["answer_type"]
    meta = {"source_answer": row["answer"], "source_answer_type": kind, "q_index": row.get("q_index"),
            "image_index": row.get("image_index")}
    if kind in ("int", "float"):
        return {"question": question, "answer": _number(raw, int if kind == "int" else float, where),
                "answer_type": kind, "meta": meta}
    if kind != "str":
        raise BenchmarkFormatError(f"{where}: unknown answer_type {kind!r}")
    if raw.lower() in ("yes", "no"):
        return {"question": question, "answer": raw.lower(), "answer_type": "yes/no", "meta": meta}
    options = listed_options(question)
    if normalize_text(raw) in [normalize_text(o) for o in options]:
        return {"question": question, "answer": raw, "answer_type": "choice", "options": options, "meta": meta}
    return {"question": question, "answer": raw, "answer_type": "str", "meta": meta}


def _open_answer(raw: Any) -> tuple[Any, str]:
    text = _text(raw).strip()
    if text.lower() in ("yes", "no"):
        return text.lower(), "yes/no"
    if text.lstrip("-").isdigit():
        return int(text), "int"
    return text, "str"


def _realworldqa(row: dict, where: str) -> dict[str, Any]:
    _require(row, ("question", "answer"), where)
    question, raw = _text(row["question"]), _text(row["answer"]).strip()
    meta = {"source_answer": row["answer"]}
    lettered = split_lettered(question)
    if lettered is None:
        answer, kind = _open_answer(raw)
        return {"question": question, "answer": answer, "answer_type": kind, "meta": meta}
    core, options = lettered
    try:
        answer = option_for_letter(raw, options)
    except RewriteError:
        normalized = [normalize_text(o) for o in options]
        if normalize_text(raw) not in normalized:
            raise BenchmarkFormatError(f"{where}: answer {raw!r} is neither a letter nor one of {options}") from None
        answer = options[normalized.index(normalize_text(raw))]
    return {"question": with_options(core, options), "answer": answer, "answer_type": "choice",
            "options": options, "meta": meta}


def _blink(row: dict, where: str) -> dict[str, Any]:
    _require(row, ("question", "choices", "answer"), where)
    options = tuple(_text(c) for c in row["choices"])
    try:
        answer = option_for_letter(row["answer"], options)
        question = with_options(_text(row["question"]), options)
    except RewriteError as err:
        raise BenchmarkFormatError(f"{where}: {err}") from None
    return {"question": question, "answer": answer, "answer_type": "choice", "options": options,
            "meta": {"source_answer": row["answer"], "idx": row.get("idx")}}


def _vsr(row: dict, where: str) -> dict[str, Any]:
    _require(row, ("caption", "label", "image"), where)
    if row["label"] not in (0, 1):
        raise BenchmarkFormatError(f"{where}: label {row['label']!r} is not 0/1")
    caption = _text(row["caption"])
    try:
        question = vsr_question(caption)
    except RewriteError:
        question = ""
    return {"question": question, "original": caption, "answer": "yes" if row["label"] == 1 else "no",
            "answer_type": "yes/no",
            "meta": {"label": row["label"], "relation": row.get("relation"), "caption": caption}}


def _make_item(table: Table, rows: _Rows, index: int, source: Source) -> EvalItem:
    row, benchmark, subset = rows.rows[index], table.benchmark, table.subset
    where = f"{benchmark}{'/' + subset if subset else ''} row {index}"
    image = _fetched(rows.image(index), f"{where} image")
    if benchmark == "omni3d-bench":
        fields = _omni3d(row, where)
    elif benchmark in GRIT:
        _require(row, ("question", "answer", "image"), where)
        image = ImageRef(path=_image_file(source, benchmark, row["image"]))
        if benchmark == "tallyqa":
            fields = {"question": _text(row["question"]), "answer": _number(row["answer"], int, where),
                      "answer_type": "int"}
        else:
            answer, kind = _open_answer(row["answer"])
            answer, kind = (str(answer), "str") if kind == "int" else (answer, kind)
            fields = {"question": _text(row["question"]), "answer": answer, "answer_type": kind}
        fields["meta"] = {"source_answer": row["answer"]}
    elif benchmark == "robospatial":
        _require(row, ("question", "answer"), where)
        answer = _text(row["answer"]).strip().lower()
        if answer not in ("yes", "no"):
            raise BenchmarkFormatError(f"{where}: answer {row['answer']!r} is not Yes/No")
        fields = {"question": _text(row["question"]), "answer": answer, "answer_type": "yes/no",
                  "meta": {"source_answer": row["answer"]}}
    elif benchmark == "vsr":
        fields = _vsr(row, where)
        link = row.get("image_link") or None
        image = ImageRef(path=_image_file(source, "vsr", row["image"]), url=link, download=source.download_images)
    elif benchmark == "blink":
        fields = _blink(row, where)
    elif benchmark == "countbenchqa":
        _require(row, ("question", "number"), where)
        fields = {"question": _text(row["question"]), "answer": _number(row["number"], int, where),
                  "answer_type": "int", "meta": {"caption": row.get("text")}}
    elif benchmark == "realworldqa":
        fields = _realworldqa(row, where)
    else:
        raise KeyError(benchmark)
    original = fields.pop("original", _text(row.get("question")))
    return EvalItem(id=_item_id(benchmark, subset, index), benchmark=benchmark, image=image, subset=subset,
                    original_question=original, **fields)


# ---------------------------------------------------------------- public loaders


def subsample(count: int, limit: int | None, seed: int, salt: str) -> list[int]:
    """Indices ``0..count-1``, or a seeded sample of ``limit`` of them in increasing order."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    if limit is None or limit >= count:
        return list(range(count))
    salt_words = [int.from_bytes(salt.encode()[i:i + 4].ljust(4, b"\0"), "little") for i in range(0, len(salt), 4)]
    rng = np.random.default_rng([seed, *salt_words])
    return sorted(int(i) for i in rng.choice(count, size=limit, replace=False))


def _load_tables(benchmark: str, source: Source, limit: int | None, seed: int,
                 rows_of: Callable[[Table, _Rows], range] | None = None) -> list[EvalItem]:
    positions: list[tuple[Table, _Rows, int]] = []
    for table in TABLES[benchmark]:
        rows = _read(table, source)
        wanted = rows_of(table, rows) if rows_of else range(len(rows.rows))
        positions.extend((table, rows, i) for i in wanted)
    chosen = subsample(len(positions), limit, seed, benchmark)
    return [_make_item(positions[i][0], positions[i][1], positions[i][2], source) for i in chosen]


def load(benchmark: str, source: Source, limit: int | None = None, seed: int = 0) -> list[EvalItem]:
    """The evaluation items of a benchmark (``"gqa-vadar"`` gives Table 3's VADAR GQA subset)."""
    if benchmark == VADAR_GQA:
        return load_vadar_gqa(source, limit, seed)
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {(*BENCHMARKS, VADAR_GQA)}")
    if benchmark == "omni3d-bench":
        return _load_tables(benchmark, source, limit, seed,
                            lambda _, rows: range(min(source.omni3d_eval_rows, len(rows.rows))))
    return _load_tables(benchmark, source, limit, seed)


def load_omni3d_train(source: Source, limit: int | None = None, seed: int = 0) -> list[EvalItem]:
    """Omni3D-Bench rows after the held-out evaluation rows: the benchmark's share of the RL queries."""
    return _load_tables("omni3d-bench", source, limit, seed,
                        lambda _, rows: range(source.omni3d_eval_rows, len(rows.rows)))


def load_vadar_gqa(source: Source, limit: int | None = None, seed: int = 0) -> list[EvalItem]:
    """Table 3's GQA subset from a VADAR-format file ``{"questions": [{image_filename, question, answer,
    ...}]}``; images resolve against the file's folder, then its ``images/`` subfolder."""
    path = source.vadar_gqa
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"the VADAR GQA subset (paper Table 3) needs a local VADAR-format annotations file; set "
            f"evaluation.data.vadar_gqa (now {str(path) if path else None!r}). Its public location is unknown "
            "(see notes/dataset_schemas.md §8); the GRIT GQA subset ('gqa') is a different evaluation set.")
    try:
        questions = json.loads(path.read_text())["questions"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise BenchmarkFormatError(f"{path}: not a VADAR annotations file ({err!r})") from None
    items = []
    for index in subsample(len(questions), limit, seed, VADAR_GQA):
        row, where = questions[index], f"{path.name} question {index}"
        _require(row, ("question", "answer", "image_filename"), where)
        candidates = [path.parent / row["image_filename"], path.parent / "images" / row["image_filename"]]
        image = ImageRef(path=next((c for c in candidates if c.is_file()), candidates[0]))
        answer, kind = _open_answer(row["answer"])
        answer, kind = (str(answer), "str") if kind == "int" else (answer, kind)
        items.append(EvalItem(id=_item_id("gqa", "vadar", index), benchmark="gqa", subset="vadar",
                              question=_text(row["question"]), original_question=_text(row["question"]),
                              answer=answer, answer_type=kind, image=image,
                              meta={"source_answer": row["answer"], "question_index": row.get("question_index")}))
    return items


def paper_answer(item: EvalItem) -> Any:
    """The ground truth as the authors' harness passed it to their scorer (for ``mode="paper"``)."""
    if item.benchmark == "omni3d-bench":
        return item.meta.get("source_answer", item.answer)
    if item.benchmark == "vsr":
        return item.meta.get("label", int(item.answer == "yes"))
    return item.answer
