"""Length-prefixed JSON frames: the only encoding spoken between the parent, the workers and the programs.

JSON (never pickle) keeps every message data-only, so a compromised program can at worst send wrong data,
which each receiver validates. A frame is a 4-byte big-endian length and that many bytes of ASCII JSON.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

_HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 16 * 1024 * 1024


class ProtocolError(Exception):
    """A malformed, oversized or non-object frame."""


def encode_frame(message: dict[str, Any]) -> bytes:
    """One frame holding ``message`` (ASCII JSON; NaN and infinities allowed)."""
    payload = json.dumps(message, separators=(",", ":"), allow_nan=True).encode("ascii")
    if len(payload) > MAX_FRAME_BYTES:
        raise ProtocolError(f"message of {len(payload)} bytes exceeds {MAX_FRAME_BYTES}")
    return _HEADER.pack(len(payload)) + payload


def decode_payload(payload: bytes) -> dict[str, Any]:
    """The JSON object in a frame payload; anything else raises :class:`ProtocolError`."""
    try:
        message = json.loads(payload)
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ProtocolError(f"undecodable frame: {type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise ProtocolError("frame does not hold a JSON object")
    return message


class FrameBuffer:
    """Incremental decoder for non-blocking readers: feed bytes, get the complete frames back."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._data += data
        frames = []
        while len(self._data) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self._data)
            if length > MAX_FRAME_BYTES:
                raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
            end = _HEADER.size + length
            if len(self._data) < end:
                break
            frames.append(decode_payload(bytes(self._data[_HEADER.size : end])))
            del self._data[:end]
        return frames


def write_frame(fd: int, message: dict[str, Any]) -> None:
    """Write one frame to a blocking file descriptor."""
    view = memoryview(encode_frame(message))
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> dict[str, Any] | None:
    """Read one frame from a blocking file descriptor; None when the other side closed it."""
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    (length,) = _HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
    payload = _read_exactly(fd, length)
    if payload is None:
        return None
    return decode_payload(payload)
