"""Run generated programs in the sandbox: :func:`execute` and :func:`execute_many` (contract).

Program conventions (the authors'): the code runs as the body of a function, so a bare ``return`` ends it;
``final_answer`` starts as None and must end up a non-None plain value (str, bool, int, float, None, lists,
tuples, dicts; numpy values are converted) for ``ok``. Programs see ``image`` (a handle with ``width``,
``height`` and ``size``; 640x480 when no image is given), ``math``, ``numpy``/``np`` and the tools
``gd_detect(image, "noun, noun")``, ``depth(image, bbox)`` and ``vqa(image, bbox or None, question)``.

With ``tools=None`` the tools are dummies with the real signatures (the syntax reward). Otherwise ``tools``
maps names to callables that run in this process and are called as ``fn(image, *args, **kwargs)`` with the
caller's own image object; an exception they raise becomes a ``runtime`` error of the program carrying
its type and message. Workers are started on first use, shared by the whole process, and stopped at exit or
by :func:`close`. See the package docstring for the security design.
"""

from __future__ import annotations

import keyword
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .pool import Dispatcher, Job, close_pool, shared_pool
from .result import ExecResult

DEFAULT_IMAGE_SIZE = (640, 480)
MAX_TIMEOUT_S = 3600.0
_RESERVED_NAMES = frozenset({"image", "math", "np", "numpy", "final_answer", "print", "getattr", "hasattr"})


@dataclass(frozen=True)
class SandboxLimits:
    """Per-program limits besides the wall timeout."""

    memory_mb: int = 512  # address space a program may add to its (numpy-loaded) process
    max_output_chars: int = 65_536  # printed text, and the size of ``final_answer``
    max_tool_calls: int = 256
    tool_timeout_s: float = 120.0  # one real tool call, including waiting for the shared tool lock
    max_code_chars: int = 100_000


def image_size_of(image: Any) -> tuple[int, int]:
    """(width, height) of a PIL image, an HxW(xC) numpy array, an object with ``width``/``height``, or an
    image file path; 640x480 for None."""
    if image is None:
        return DEFAULT_IMAGE_SIZE
    size = getattr(image, "size", None)
    if isinstance(size, tuple) and len(size) == 2 and all(isinstance(v, int) for v in size):
        return size
    shape = getattr(image, "shape", None)
    if type(image).__module__ == "numpy" and isinstance(shape, tuple) and len(shape) in (2, 3):
        return (int(shape[1]), int(shape[0]))
    width, height = getattr(image, "width", None), getattr(image, "height", None)
    if isinstance(width, int) and isinstance(height, int):
        return (width, height)
    if isinstance(image, str | os.PathLike):
        from PIL import Image

        with Image.open(image) as opened:
            return opened.size
    raise TypeError(f"cannot tell the size of an image of type {type(image).__name__}")


def _check_tools(tools: Mapping[str, Callable[..., Any]] | None) -> dict[str, Callable[..., Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, Mapping):
        raise TypeError(f"tools must be a mapping of name -> callable, got {type(tools).__name__}")
    for name, fn in tools.items():
        if (
            not (isinstance(name, str) and name.isidentifier())
            or keyword.iskeyword(name)
            or name.startswith("_")
        ):
            raise ValueError(f"invalid tool name {name!r}")
        if name in _RESERVED_NAMES:
            raise ValueError(f"tool name {name!r} is reserved for the program's namespace")
        if not callable(fn):
            raise TypeError(f"tool {name!r} is not callable")
    return dict(tools)


def _check_timeout(timeout_s: float) -> float:
    if (
        not isinstance(timeout_s, int | float)
        or not math.isfinite(timeout_s)
        or not 0 < timeout_s <= MAX_TIMEOUT_S
    ):
        raise ValueError(f"timeout_s must be a number in (0, {MAX_TIMEOUT_S:g}], got {timeout_s!r}")
    return float(timeout_s)


def execute_many(
    codes: Sequence[str],
    tools: Mapping[str, Callable[..., Any]] | None = None,
    timeout_s: float = 5.0,
    images: Sequence[Any] | None = None,
    *,
    workers: int | None = None,
    limits: SandboxLimits | None = None,
    progress: bool = False,
) -> list[ExecResult]:
    """Run programs in parallel on warm sandbox workers; results come back in the order of ``codes``.

    ``images`` (optional) is aligned with ``codes``; ``workers`` defaults to ``os.cpu_count()``.
    """
    codes = list(codes)
    for code in codes:
        if not isinstance(code, str):
            raise TypeError(f"programs must be str, got {type(code).__name__}")
    image_list = [None] * len(codes) if images is None else list(images)
    if len(image_list) != len(codes):
        raise ValueError(f"{len(image_list)} images for {len(codes)} programs")
    checked_tools = _check_tools(tools)
    timeout = _check_timeout(timeout_s)
    limit_values = asdict(limits or SandboxLimits())
    count = workers if workers is not None else (os.cpu_count() or 1)
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if not codes:
        return []
    jobs = [
        Job(code, image, image_size_of(image), timeout, limit_values)
        for code, image in zip(codes, image_list, strict=True)
    ]
    return Dispatcher(shared_pool(), checked_tools, count).run(jobs, progress)


def execute(
    code: str,
    tools: Mapping[str, Callable[..., Any]] | None = None,
    timeout_s: float = 5.0,
    image: Any = None,
    *,
    limits: SandboxLimits | None = None,
) -> ExecResult:
    """Run one program in the sandbox (see :func:`execute_many`)."""
    return execute_many([code], tools, timeout_s, [image], workers=1, limits=limits)[0]


def close() -> None:
    """Stop this process's idle sandbox workers now (also done at exit; later calls start new ones)."""
    close_pool()
