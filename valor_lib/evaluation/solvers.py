"""Solvers turn a batch of evaluation items (with their loaded images) into predictions.

- :class:`ProgramSolver`: a program writer (the policy's ``ProgramWriter``, or any LLM behind an API spec, i.e.
  the paper's "LLMs with tools") writes ``<plan>``/``<answer>`` responses for the questions; the programs run in
  the sandbox with the real tools (``execute_many``, bounded parallelism). Each tool call is logged with its
  arguments, outcome and (JSON-safe, truncated) result, so boxes a program used can be drawn later.
- Direct-answer VLMs live in :mod:`valor_lib.evaluation.baselines`.

A solver's ``identity()`` is everything that determines its outputs besides the items and the seed; it enters
the prediction cache key.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, Protocol

from PIL import Image

from valor_lib.evaluation.records import EvalItem
from valor_lib.programs import SandboxLimits, execute_many, parse_response

MAX_STDOUT_CHARS = 2000
MAX_RESULT_ITEMS = 64
MAX_RESULT_CHARS = 500


class ProgramWriterLike(Protocol):
    """The policy's program writer interface (``valor_lib.policy.generate.ProgramWriter``)."""

    def write(self, questions: list[str], n: int = 1, seed: int | None = None) -> list[list[str]]: ...


class Solver(Protocol):
    """What the runner needs from a solver."""

    kind: str

    def identity(self) -> dict[str, Any]: ...

    def solve(self, items: Sequence[EvalItem], images: Sequence[Image.Image], seed: int) -> list[dict[str, Any]]: ...


def jsonable(value: Any, depth: int = 0) -> Any:
    """A small JSON-safe copy of a tool result (long lists and strings truncated, numpy converted)."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value[:MAX_RESULT_CHARS]
    if depth < 4 and isinstance(value, list | tuple):
        return [jsonable(v, depth + 1) for v in value[:MAX_RESULT_ITEMS]]
    if depth < 4 and isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in list(value.items())[:MAX_RESULT_ITEMS]}
    return repr(value)[:MAX_RESULT_CHARS]


class _ItemImage:
    """What a program's ``image`` stands for in the parent: one item's image (objects may share a PIL image)."""

    __slots__ = ("height", "image", "index", "size", "width")

    def __init__(self, image: Image.Image, index: int):
        self.image, self.index = image, index
        self.size = image.size
        self.width, self.height = image.size


class ToolRecorder:
    """Wraps tools so each call's result is logged under the item that made it."""

    def __init__(self, tools: Mapping[str, Callable[..., Any]]):
        self.calls: dict[int, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.tools = {name: self._wrap(name, fn) for name, fn in tools.items()}

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(item_image: _ItemImage, *args: Any, **kwargs: Any) -> Any:
            entry: dict[str, Any] = {"name": name}
            with self._lock:
                self.calls.setdefault(item_image.index, []).append(entry)
            try:
                value = fn(item_image.image, *args, **kwargs)
            except BaseException as err:
                entry["error"] = f"{type(err).__name__}: {err}"[:MAX_RESULT_CHARS]
                raise
            entry["result"] = jsonable(value)
            return value

        return call

    def merged(self, index: int, log: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
        """The sandbox's call log for item ``index`` with results added, and the seconds spent in tools."""
        recorded = self.calls.get(index, [])
        calls, seconds = [], 0.0
        for position, call in enumerate(log):
            entry = {"name": call["name"], "args": call["args"], "ok": call["ok"]}
            if "error" in call:
                entry["error"] = call["error"]
            if position < len(recorded) and recorded[position]["name"] == call["name"] and "result" in recorded[position]:
                entry["result"] = recorded[position]["result"]
            calls.append(entry)
            seconds += float(call.get("duration_s", 0.0))
        return calls, seconds


class ProgramSolver:
    """Program writer + tools (see module docstring).

    Args:
        writer: ``.write(questions, n=1, seed=...) -> list[list[str]]`` raw responses.
        tools: name -> callable ``fn(image, *args)`` (the toolbox's functions); None runs dummy tools.
        identity: what determines the writer's and tools' outputs (e.g. weights fingerprints of the policy and
            detector, sampling parameters, prompt fingerprint); part of the prediction cache key.
        timeout_s, workers, limits: sandbox settings (``execute_many``).
        tool_stats: optional callable returning the toolbox's cache statistics.
        prefetch: optional ``fn(images, codes)`` run before the programs (e.g. the toolbox's batched
            :meth:`~valor_lib.tools.Toolbox.prefetch_detections`, which fills the detection cache).
    """

    kind = "program"

    def __init__(self, writer: ProgramWriterLike, tools: Mapping[str, Callable[..., Any]] | None, *,
                 identity: Mapping[str, Any], timeout_s: float = 5.0, workers: int = 2,
                 limits: SandboxLimits | None = None, tool_stats: Callable[[], Mapping[str, Any]] | None = None,
                 prefetch: Callable[[Sequence[Image.Image], Sequence[str]], Any] | None = None):
        self.writer, self.tools, self._identity = writer, tools, dict(identity)
        self.timeout_s, self.workers, self.limits = timeout_s, workers, limits or SandboxLimits()
        self.tool_stats, self.prefetch = tool_stats, prefetch

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, **self._identity, "tool_names": sorted(self.tools or ()), "timeout_s": self.timeout_s,
                "limits": asdict(self.limits), "prefetch": self.prefetch is not None}

    def _responses(self, questions: list[str], seed: int) -> list[str]:
        batches = self.writer.write(questions, n=1, seed=seed)
        if len(batches) != len(questions) or any(len(b) < 1 or not isinstance(b[0], str) for b in batches):
            raise ValueError(f"program writer returned {len(batches)} response lists for {len(questions)} "
                             "questions (expected one list holding at least one str per question)")
        return [b[0] for b in batches]

    def solve(self, items: Sequence[EvalItem], images: Sequence[Image.Image], seed: int) -> list[dict[str, Any]]:
        started = time.perf_counter()
        responses = self._responses([item.question for item in items], seed)
        generate_s = (time.perf_counter() - started) / max(len(items), 1)
        parsed = [parse_response(text) for text in responses]
        if self.prefetch is not None and self.tools is not None:
            self.prefetch(images, [p.code or "" for p in parsed])
        recorder = ToolRecorder(self.tools) if self.tools is not None else None
        tokens = [_ItemImage(image, i) for i, image in enumerate(images)]
        results = execute_many([p.code for p in parsed], recorder.tools if recorder else None, self.timeout_s,
                               tokens, workers=self.workers, limits=self.limits)
        outcomes = []
        for index, (text, p, result) in enumerate(zip(responses, parsed, results, strict=True)):
            calls, tool_s = recorder.merged(index, result.tool_calls) if recorder else ([], 0.0)
            outcomes.append({
                "prediction": result.answer, "response": text, "plan": p.plan, "code": p.code,
                "format_ok": p.format_ok, "format_problems": list(p.problems), "error_type": result.error_type,
                "error": result.error, "stdout": result.stdout[:MAX_STDOUT_CHARS], "tool_calls": calls,
                "timings": {"generate_s": generate_s, "execute_s": result.duration_s, "tools_s": tool_s},
            })
        return outcomes
