"""The tools a program calls, as seen from inside its sandbox process.

* Dummy tools (the syntax reward): the real signatures and return types with fixed values, argument checks
  like the real tools, no pixels and no inter-process round trip.
* Proxies: forward the call (arguments as plain data, image as a reference) to the parent process, where the
  real tools run, and return the reply or raise the tool's error into the program.
"""

from __future__ import annotations

import keyword
import math
import numbers
from collections.abc import Callable
from typing import Any

from .namespace import ImageHandle, RunState, SandboxViolation
from .plain_data import DataLimits, PlainDataError, to_plain
from .protocol import read_frame, write_frame

DUMMY_BOX = [0, 0, 10, 10]
DUMMY_DEPTH = 0.5
DUMMY_VQA_ANSWER = "yes"
MAX_TEXT_CHARS = 2000
# Bounds on the arguments of one tool call sent to the parent.
ARGUMENT_LIMITS = DataLimits(max_depth=8, max_items=10_000, max_chars=20_000)

# Builtin exception types a tool error may be raised as inside the program (its own class name is kept).
_ERROR_BASES: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        ValueError, TypeError, KeyError, IndexError, LookupError, ZeroDivisionError, ArithmeticError,
        OverflowError, RuntimeError, NotImplementedError, AssertionError, AttributeError, MemoryError,
    )
}  # fmt: skip


class ToolError(Exception):
    """A parent-side tool failed with an exception that is not a builtin type."""


def _take_image(tool: str, handle: ImageHandle, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Split off the image argument (first positional or ``image=``); it must be the program's image."""
    if "image" in kwargs:
        kwargs = dict(kwargs)
        image = kwargs.pop("image")
    elif args:
        image, args = args[0], args[1:]
    else:
        raise TypeError(f"{tool}() needs the image as its first argument")
    if image is not handle:
        raise TypeError(
            f"{tool}() expects the input image `image` as first argument, got {type(image).__name__}"
        )
    return args, kwargs


def _check_text(tool: str, what: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{tool}(): {what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{tool}(): {what} is empty")
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"{tool}(): {what} is longer than {MAX_TEXT_CHARS} characters")
    return value


def check_bbox(tool: str, bbox: Any) -> list[float]:
    """A bounding box must be 4 finite real numbers [x1, y1, x2, y2] (list, tuple or array)."""
    if isinstance(bbox, str | bytes | dict) or not hasattr(type(bbox), "__len__"):
        raise TypeError(f"{tool}(): bbox must be 4 numbers [x1, y1, x2, y2], got {type(bbox).__name__}")
    values = list(bbox) if len(bbox) == 4 else None
    if values is None:
        raise ValueError(f"{tool}(): bbox must have 4 numbers, got {len(bbox)}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{tool}(): bbox values must be numbers, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError(f"{tool}(): bbox values must be finite, got {value}")
    return [float(value) for value in values]


def make_dummy_tools(handle: ImageHandle, state: RunState) -> dict[str, Callable[..., Any]]:
    """``gd_detect``, ``depth`` and ``vqa`` with fixed outputs, running inside the sandbox process."""

    def gd_detect(image: Any, prompt: str) -> list[dict[str, Any]]:
        _take_image("gd_detect", handle, (image,), {})
        nouns = [noun.strip() for noun in _check_text("gd_detect", "prompt", prompt).split(",")]
        return [{"bbox": list(DUMMY_BOX), "label": noun, "score": 1.0} for noun in nouns if noun]

    def depth(image: Any, bbox: Any) -> float:
        _take_image("depth", handle, (image,), {})
        check_bbox("depth", bbox)
        return DUMMY_DEPTH

    def vqa(image: Any, bbox: Any, question: str) -> str:
        _take_image("vqa", handle, (image,), {})
        if bbox is not None:
            check_bbox("vqa", bbox)
        _check_text("vqa", "question", question)
        return DUMMY_VQA_ANSWER

    def logged(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def tool(*args: Any, **kwargs: Any) -> Any:
            return state.log_tool_call(name, lambda: fn(*args, **kwargs), args, kwargs, handle)

        tool.__name__ = tool.__qualname__ = name
        return tool

    return {name: logged(name, fn) for name, fn in (("gd_detect", gd_detect), ("depth", depth), ("vqa", vqa))}


def _remote_error(tool: str, error: Any) -> Exception:
    """The exception to raise into the program for a tool's error reply."""
    if not isinstance(error, dict):
        return ToolError(f"{tool} failed")
    name = str(error.get("type", "ToolError"))
    message = f"{error.get('message', '')} (in {tool})"
    base = _ERROR_BASES.get(str(error.get("base")), ToolError)
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        name = base.__name__
    cls = base if name == base.__name__ else type(name, (base,), {})
    return cls(message)


def make_proxy_tools(
    names: list[str], handle: ImageHandle, state: RunState, channel_fd: int
) -> dict[str, Callable[..., Any]]:
    """Tools that run in the parent process, reached over the sandbox's channel (one call at a time).
    The parent logs these calls (it sees the real durations, and its log survives a timeout)."""

    def remote(name: str, args: tuple, kwargs: dict) -> Any:
        try:
            payload = to_plain(
                {"args": list(args), "kwargs": kwargs}, ARGUMENT_LIMITS, f"arguments of {name}()"
            )
        except PlainDataError as exc:
            raise (ValueError if exc.too_large else TypeError)(str(exc)) from None
        write_frame(channel_fd, {"op": "tool", "name": name, **payload})
        reply = read_frame(channel_fd)
        if reply is None or reply.get("op") != "tool_result":
            raise state.fail("forbidden", "the tool channel was closed or tampered with", SandboxViolation)
        if reply.get("ok"):
            return reply.get("value")
        raise _remote_error(name, reply.get("error"))

    def proxy(name: str) -> Callable[..., Any]:
        def tool(*args: Any, **kwargs: Any) -> Any:
            rest, kw = _take_image(name, handle, args, kwargs)
            state.count_tool_call()
            return remote(name, rest, kw)

        tool.__name__ = tool.__qualname__ = name
        return tool

    return {name: proxy(name) for name in names}
