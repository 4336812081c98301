"""The world a program sees inside its sandbox process: restricted builtins and modules, the image handle,
captured ``print``, and the audit hook that stops interpreter-level escapes while the program runs."""

from __future__ import annotations

import builtins
import math
import sys
import time
import types
from collections.abc import Callable
from typing import Any

from .plain_data import call_repr
from .policy import ALLOWED_MODULES, attribute_problem

# Audit events a running program may raise (``id()`` raises one); every other event is an escape attempt.
_ALLOWED_EVENTS = frozenset({"builtins.id"})

_SAFE_BUILTINS = (
    "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr", "classmethod",
    "complex", "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hash", "hex", "id",
    "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "oct", "ord",
    "pow", "property", "range", "repr", "reversed", "round", "set", "slice", "sorted", "staticmethod", "str",
    "sum", "tuple", "zip", "__build_class__", "NotImplemented", "Ellipsis",
    "Exception", "ArithmeticError", "AssertionError", "AttributeError", "FloatingPointError", "IndexError",
    "KeyError", "LookupError", "MemoryError", "NameError", "NotImplementedError", "OverflowError",
    "RecursionError", "RuntimeError", "StopIteration", "TypeError", "UnboundLocalError", "ValueError",
    "ZeroDivisionError",
)  # fmt: skip


class SandboxViolation(BaseException):
    """Raised into a program that tried something forbidden (not an ``Exception``: plain handlers miss it)."""


class LimitExceeded(BaseException):
    """Raised into a program that printed too much or called tools too often."""


class RunState:
    """Per-program bookkeeping: captured output, tool-call log, and the first sticky violation or limit.

    Violations and limits are sticky: a program that catches the exception raised into it still fails.
    """

    def __init__(self, max_output_chars: int, max_tool_calls: int):
        self.max_output_chars = max_output_chars
        self.max_tool_calls = max_tool_calls
        self.output: list[str] = []
        self.output_chars = 0
        self.tool_calls: list[dict[str, Any]] = []
        self.tool_calls_made = 0
        self.failure: tuple[str, str] | None = None

    def fail(self, error_type: str, message: str, exc_type: type[BaseException]) -> BaseException:
        """Record the first failure and return the exception to raise into the program."""
        if self.failure is None:
            self.failure = (error_type, message)
        return exc_type(message)

    def write(self, text: str) -> None:
        room = self.max_output_chars - self.output_chars
        if len(text) > room:
            self.output.append(text[: max(room, 0)])
            self.output_chars = self.max_output_chars
            raise self.fail(
                "output_limit", f"printed more than {self.max_output_chars} characters", LimitExceeded
            )
        self.output.append(text)
        self.output_chars += len(text)

    def count_tool_call(self) -> None:
        """Enforce the per-program limit on tool calls."""
        if self.tool_calls_made >= self.max_tool_calls:
            raise self.fail("runtime", f"more than {self.max_tool_calls} tool calls", LimitExceeded)
        self.tool_calls_made += 1

    def log_tool_call(self, name: str, run: Callable[[], Any], args: tuple, kwargs: dict, image: Any) -> Any:
        """Count, run and log one in-process tool call (name, arguments, duration, success)."""
        self.count_tool_call()
        start = time.perf_counter()
        ok = False
        try:
            result = run()
            ok = True
            return result
        finally:
            self.tool_calls.append(
                {
                    "name": name,
                    "args": call_repr(args, kwargs, image=image),
                    "duration_s": round(time.perf_counter() - start, 6),
                    "ok": ok,
                }
            )


class ImageHandle:
    """The program's view of the input image: its size only; tools receive it as a reference."""

    __slots__ = ("_height", "_width")

    def __init__(self, width: int, height: int):
        self._width = width
        self._height = height

    @property
    def width(self) -> int:
        return self._width

    @property
    def height(self) -> int:
        return self._height

    @property
    def size(self) -> tuple[int, int]:
        return (self._width, self._height)

    def __repr__(self) -> str:
        return f"<image {self._width}x{self._height}>"


def _public_copy(module: types.ModuleType, name: str) -> types.ModuleType:
    """A fresh module holding the public, non-module attributes of ``module`` that the policy allows."""
    copy = types.ModuleType(name)
    for attr, value in vars(module).items():
        if attribute_problem(attr) is None and not isinstance(value, types.ModuleType):
            setattr(copy, attr, value)
    return copy


def restricted_modules() -> dict[str, types.ModuleType]:
    """Importable modules by name: math and a numpy without file I/O, raw memory access or submodules
    other than linalg, random and fft. Built once per worker before any program runs."""
    import numpy
    import numpy.fft
    import numpy.linalg
    import numpy.random

    modules = {"math": _public_copy(math, "math"), "numpy": _public_copy(numpy, "numpy")}
    for sub in ("linalg", "random", "fft"):
        modules[f"numpy.{sub}"] = _public_copy(getattr(numpy, sub), f"numpy.{sub}")
        setattr(modules["numpy"], sub, modules[f"numpy.{sub}"])
    assert set(modules) == ALLOWED_MODULES
    return modules


def _is_internal_numpy_import(name: str, fromlist: Any, level: int) -> bool:
    """numpy's C code imports its own helpers on first use with ``PyImport_Import``, which goes through the
    ``__import__`` of the running (program) frame and passes a list as ``fromlist`` (import statements pass
    None or a tuple). Such calls get the already-loaded numpy module; nothing is ever loaded here."""
    return not level and type(fromlist) is list and name.startswith("numpy.") and name in sys.modules


def make_builtins(state: RunState, modules: dict[str, types.ModuleType]) -> dict[str, Any]:
    """The builtins of one program: a safe subset plus ``print`` into ``state``, checked
    ``getattr``/``hasattr`` and an ``__import__`` that only hands out the restricted modules."""
    table = {name: getattr(builtins, name) for name in _SAFE_BUILTINS}

    def checked_name(name: object) -> str:
        if type(name) is not str:
            raise TypeError("attribute name must be a string")
        if problem := attribute_problem(name):
            raise state.fail("forbidden", problem, SandboxViolation)
        return name

    def getattr_(obj: Any, name: str, *default: Any) -> Any:
        return getattr(obj, checked_name(name), *default)

    def hasattr_(obj: Any, name: str) -> bool:
        return hasattr(obj, checked_name(name))

    def print_(
        *values: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
    ):
        if file is not None:
            raise TypeError("print() to a file is not available to programs")
        sep = " " if sep is None else sep
        end = "\n" if end is None else end
        if type(sep) is not str or type(end) is not str:
            raise TypeError("sep and end must be strings")
        state.write(sep.join(str(value) for value in values) + end)

    def import_(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0):
        if not level and name in modules:
            return modules[name] if fromlist else modules[name.partition(".")[0]]
        if _is_internal_numpy_import(name, fromlist, level):
            return sys.modules[name]
        raise state.fail("forbidden", f"import of {name!r} is not allowed", SandboxViolation)

    table.update(getattr=getattr_, hasattr=hasattr_, print=print_, __import__=import_)
    return table


class AuditGate:
    """State of the audit hook, referenced only by the hook and the runner's own frame, so a program that
    reaches ``RunState`` through closures still cannot switch the hook off or erase a violation."""

    __slots__ = ("guarded", "inspecting", "violation")

    def __init__(self) -> None:
        self.guarded = False  # set once the program starts; never cleared
        self.inspecting = False  # the runner itself reads traceback frames
        self.violation: str | None = None


def install_audit_hook(gate: AuditGate) -> None:
    """While ``gate.guarded``, every interpreter audit event outside a tiny allow-list is refused and recorded
    (hooks cannot be removed: one program per sandbox process)."""

    def hook(event: str, args: tuple) -> None:
        if not gate.guarded or event in _ALLOWED_EVENTS:
            return
        if gate.inspecting and event == "object.__getattr__":
            return
        message = f"blocked operation {event!r}"
        if gate.violation is None:
            gate.violation = message
        raise SandboxViolation(message)

    sys.addaudithook(hook)
