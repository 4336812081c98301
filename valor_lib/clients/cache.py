"""Persistent response cache: one SQLite file (WAL mode), safe for concurrent threads and processes.

Keys are SHA-256 digests of the canonical JSON of (backend identity, request payload). Only successful
answers are stored. The stored request description holds image hashes, never image bytes or credentials.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY_VERSION = 1
CACHE_MODES = ("use", "refresh", "off")  # read+write; write only (overwrite); neither

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    request TEXT NOT NULL,
    text TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    finish_reason TEXT,
    created_at REAL NOT NULL
)
"""


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def make_key(identity: dict[str, Any], request_payload: dict[str, Any]) -> tuple[str, str]:
    """The cache key and the canonical request description it was computed from."""
    description = canonical_json({"v": KEY_VERSION, "backend": identity, "request": request_payload})
    return hashlib.sha256(description.encode("utf-8")).hexdigest(), description


@dataclass(frozen=True)
class CachedAnswer:
    """A stored successful answer."""

    text: str
    input_tokens: int | None
    output_tokens: int | None
    finish_reason: str | None


class ResponseCache:
    """SQLite-backed map from cache key to :class:`CachedAnswer`; one connection per thread and process."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conn().execute(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        for attempt in range(50):  # switching to WAL needs a moment of exclusive access
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.05)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=60000")
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def get(self, key: str) -> CachedAnswer | None:
        row = self._conn().execute(
            "SELECT text, input_tokens, output_tokens, finish_reason FROM responses WHERE key = ?", (key,)
        ).fetchone()
        return CachedAnswer(*row) if row else None

    def put(self, key: str, backend: str, request: str, answer: CachedAnswer, replace: bool = False) -> None:
        """Store an answer; an existing entry is kept unless ``replace`` (first writer wins)."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        self._conn().execute(
            f"{verb} INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, backend, request, answer.text, answer.input_tokens, answer.output_tokens,
             answer.finish_reason, time.time()),
        )

    def __len__(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
