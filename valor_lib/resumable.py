"""Resumable result files: JSON Lines, one record per item keyed by an id, append-only.

    with ResumableJsonl(results / "predictions.jsonl", key="id") as out:
        for item in out.pending(items):          # skips ids already in the file
            out.write({"id": item["id"], "answer": ...})
    records = read_records(results / "predictions.jsonl", key="id")

Each record is written with one ``write`` system call and fsync'd (every ``fsync_every`` records), so a
crash leaves at most a truncated last line; opening the file again drops it (or, when the line is complete
and only its newline is missing, restores the newline) before appending. Writing an id that is already in
the file raises :class:`DuplicateRecordError` (ids are unique by construction, so a duplicate is a bug).
An exclusive lock stops two writers from appending to one file at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any


class ResultsFileError(ValueError):
    """A result file is corrupt beyond a truncated last line, or is used wrongly."""


class DuplicateRecordError(ResultsFileError):
    """A record with this id is already in the file."""


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One JSONL line (with its newline)."""
    return (json.dumps(dict(record), ensure_ascii=False, default=_json_default) + "\n").encode("utf-8")


def _scan(data: bytes, path: Path, key: str | None) -> tuple[list[dict[str, Any]], int, bool]:
    """Parse file content: (records, bytes of intact content, whether the tail lacks only its newline)."""
    lines = data.split(b"\n")
    records: list[dict[str, Any]] = []
    seen: set[Hashable] = set()
    intact = 0

    def parse(raw: bytes, lineno: int) -> dict[str, Any]:
        record = json.loads(raw)
        if not isinstance(record, dict) or (key is not None and key not in record):
            raise ValueError(f"not an object with key {key!r}")
        if key is not None:
            if record[key] in seen:
                raise ResultsFileError(f"{path}: line {lineno} repeats id {record[key]!r}")
            seen.add(record[key])
        return record

    for lineno, raw in enumerate(lines[:-1], start=1):
        if raw.strip():
            try:
                records.append(parse(raw, lineno))
            except ValueError as err:
                if isinstance(err, ResultsFileError):
                    raise
                raise ResultsFileError(f"{path}: line {lineno} is corrupt ({err}); only a truncated last "
                                       f"line is repaired automatically") from None
        intact += len(raw) + 1
    tail_complete = False
    if lines[-1].strip():
        try:
            records.append(parse(lines[-1], len(lines)))
            intact += len(lines[-1])
            tail_complete = True
        except ValueError as err:
            if isinstance(err, ResultsFileError):
                raise
    return records, intact, tail_complete


def read_records(path: str | os.PathLike, key: str | None = None, missing_ok: bool = False) -> list[dict[str, Any]]:
    """All complete records of a result file, in file order (a truncated last line is skipped with a
    warning). With ``key``, every record must carry a unique value of it."""
    p = Path(path)
    if not p.exists():
        if missing_ok:
            return []
        raise FileNotFoundError(f"no result file at {p}")
    data = p.read_bytes()
    records, intact, tail_complete = _scan(data, p, key)
    if not tail_complete and data[intact:].strip():
        warnings.warn(f"{p}: ignoring a truncated last line ({len(data) - intact} bytes)", stacklevel=2)
    return records


class ResumableJsonl:
    """An append-only JSONL result file keyed by ``key``; see the module docstring."""

    def __init__(self, path: str | os.PathLike, key: str = "id", fsync_every: int = 1):
        if fsync_every < 1:
            raise ValueError("fsync_every must be >= 1")
        self.path, self.key, self.fsync_every = Path(path), key, fsync_every
        self._fd: int | None = None
        self._done: set[Hashable] = set()
        self._unsynced = 0

    def __enter__(self) -> ResumableJsonl:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Lock the file, repair a crash-truncated tail, and load the ids already written."""
        if self._fd is not None:
            raise ResultsFileError(f"{self.path} is already open")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ResultsFileError(f"{self.path} is being written by another process") from None
        try:
            data = self.path.read_bytes()
            records, intact, tail_complete = _scan(data, self.path, self.key)
            if tail_complete:
                os.write(fd, b"\n")
            elif intact < len(data):
                os.ftruncate(fd, intact)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._done = {r[self.key] for r in records}

    @property
    def done(self) -> frozenset[Hashable]:
        """Ids already in the file."""
        return frozenset(self._done)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._done

    def __len__(self) -> int:
        return len(self._done)

    def pending(self, items: Iterable[Any], key: str | Callable[[Any], Hashable] | None = None) -> Iterator[Any]:
        """The items whose id is not in the file yet; ``key`` reads an item's id (a field or attribute
        name, or a function; default: this file's key)."""
        get = key if callable(key) else _getter(key or self.key)
        for item in items:
            if get(item) not in self._done:
                yield item

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record (flushed; fsync'd every ``fsync_every`` records)."""
        if self._fd is None:
            raise ResultsFileError(f"{self.path} is not open (use `with ResumableJsonl(...) as out:`)")
        if self.key not in record:
            raise ResultsFileError(f"record has no {self.key!r} field: {sorted(record)}")
        item_id = record[self.key]
        if item_id in self._done:
            raise DuplicateRecordError(f"{self.path} already has a record with {self.key}={item_id!r}")
        data = memoryview(encode_record(record))
        while data:
            data = data[os.write(self._fd, data):]
        self._done.add(item_id)
        self._unsynced += 1
        if self._unsynced >= self.fsync_every:
            os.fsync(self._fd)
            self._unsynced = 0

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def _getter(name: str) -> Callable[[Any], Hashable]:
    def get(item: Any) -> Hashable:
        return item[name] if isinstance(item, Mapping) else getattr(item, name)

    return get
