"""Plain data: the only values that cross a process boundary (answers, tool arguments and tool results).

Plain data is str, int, float, bool, None and lists, tuples and str-keyed dicts of those (tuples become
lists).
numpy scalars and arrays are converted to Python values. Types are matched exactly, so subclasses (a crafted
``str`` subclass, an object with a custom ``__reduce__``) are rejected rather than trusted.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from itertools import islice
from typing import Any

_MAX_INT_BITS = 1024


class PlainDataError(ValueError):
    """A value is not plain data (``too_large`` False) or exceeds a size limit (``too_large`` True)."""

    def __init__(self, message: str, *, too_large: bool):
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class DataLimits:
    """Bounds on nesting depth, total container items and total string characters."""

    max_depth: int = 32
    max_items: int = 100_000
    max_chars: int = 1_000_000


class _Budget:
    def __init__(self, limits: DataLimits, what: str):
        self.limits = limits
        self.what = what
        self.items = 0
        self.chars = 0

    def spend(self, items: int = 0, chars: int = 0) -> None:
        self.items += items
        self.chars += chars
        if self.items > self.limits.max_items:
            raise PlainDataError(f"{self.what} has more than {self.limits.max_items} items", too_large=True)
        if self.chars > self.limits.max_chars:
            raise PlainDataError(
                f"{self.what} has more than {self.limits.max_chars} characters of text", too_large=True
            )


def to_plain(value: Any, limits: DataLimits | None = None, what: str = "value") -> Any:
    """Return ``value`` as plain data, or raise :class:`PlainDataError` naming what is wrong."""
    return _convert(value, 0, _Budget(limits or DataLimits(), what))


def _convert(value: Any, depth: int, budget: _Budget) -> Any:
    kind = type(value)
    if value is None or kind is bool or kind is float:
        return value
    if kind is str:
        budget.spend(chars=len(value))
        return value
    if kind is int:
        if value.bit_length() > _MAX_INT_BITS:
            raise PlainDataError(
                f"{budget.what} contains an integer over {_MAX_INT_BITS} bits", too_large=True
            )
        return value
    if kind is list or kind is tuple or kind is dict:
        if depth >= budget.limits.max_depth:
            raise PlainDataError(
                f"{budget.what} is nested deeper than {budget.limits.max_depth} levels", too_large=True
            )
        budget.spend(items=len(value))
        if kind is dict:
            out = {}
            for key, item in value.items():
                if type(key) is not str:
                    raise PlainDataError(
                        f"{budget.what} has a dict key of type {type(key).__name__} (keys must be str)",
                        too_large=False,
                    )
                budget.spend(chars=len(key))
                out[key] = _convert(item, depth + 1, budget)
            return out
        return [_convert(item, depth + 1, budget) for item in value]
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.generic):
            item = numpy.generic.item(value)
            if type(item) in (str, int, float, bool) or item is None:
                return _convert(item, depth, budget)
        elif isinstance(value, numpy.ndarray):
            budget.spend(items=int(value.size))
            return _convert(numpy.ndarray.tolist(value), depth, budget)
    raise PlainDataError(
        f"{budget.what} must be plain data (str, int, float, bool, None, list, tuple, dict); "
        f"found {kind.__name__}",
        too_large=False,
    )


def _describe(value: Any, image: Any, depth: int) -> str:
    """Bounded description that never calls user-defined methods (types are matched exactly)."""
    kind = type(value)
    if image is not None and value is image:
        return "image"
    if value is None or kind is bool or kind is float:
        return repr(value)
    if kind is int:
        return repr(value) if value.bit_length() <= _MAX_INT_BITS else f"<int of {value.bit_length()} bits>"
    if kind is str:
        return repr(value[:200])
    if kind in (list, tuple, dict):
        if depth >= 3:
            return "[...]" if kind is not dict else "{...}"
        items = list(islice(value.items() if kind is dict else value, 8))
        if kind is dict:
            parts = [f"{_describe(k, image, depth + 1)}: {_describe(v, image, depth + 1)}" for k, v in items]
        else:
            parts = [_describe(item, image, depth + 1) for item in items]
        if len(value) > 8:
            parts.append("...")
        opening, closing = {list: "[]", tuple: "()", dict: "{}"}[kind]
        return opening + ", ".join(parts) + closing
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        return f"<array shape={value.shape} dtype={value.dtype}>"
    if numpy is not None and isinstance(value, numpy.generic):
        return repr(numpy.generic.item(value))[:200]
    return f"<{kind.__name__}>"


def call_repr(args: Any, kwargs: Any, image: Any = None, limit: int = 200) -> str:
    """``short_repr`` of a call's arguments, written like the call site: ``image, 'cup, table', k=1``."""
    parts = [_describe(arg, image, 1) for arg in args]
    parts += [f"{key}={_describe(val, image, 1)}" for key, val in kwargs.items() if type(key) is str]
    text = ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."
