"""What running one generated program produced (:class:`ExecResult`) and the failure classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Every value ``ExecResult.error_type`` can take besides None (success).
ERROR_TYPES: tuple[str, ...] = (
    "syntax",  # the program does not parse or compile (or is too large)
    "runtime",  # it raised, a tool rejected its arguments, or its answer is not plain data
    "timeout",  # wall or CPU time ran out (time spent inside parent-side tools is not counted)
    "forbidden",  # it tried something the sandbox does not allow (imports, introspection, files, ...)
    "memory",  # it ran out of its memory allowance
    "no_answer",  # it finished without setting ``final_answer`` to a value other than None
    "output_limit",  # it printed, returned or sent more data than allowed
)


@dataclass
class ExecResult:
    """Outcome of one program: ``ok`` is True only without error and with a non-None ``final_answer``."""

    ok: bool
    answer: Any = None
    error_type: str | None = None
    error: str = ""
    stdout: str = ""
    duration_s: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def failure(cls, error_type: str, error: str, **fields: Any) -> ExecResult:
        """A failed result of the given class (validated against :data:`ERROR_TYPES`)."""
        if error_type not in ERROR_TYPES:
            raise ValueError(f"unknown error_type {error_type!r}; expected one of {ERROR_TYPES}")
        return cls(ok=False, error_type=error_type, error=error, **fields)
