"""Exceptions raised by the tools. A program that triggers one fails with error type ``runtime``."""

from __future__ import annotations


class ToolError(Exception):
    """Base class of every tool failure."""


class ToolInputError(ToolError, ValueError):
    """A tool was called with bad input: unreadable image, malformed or degenerate box, empty prompt, ..."""


class ToolBackendError(ToolError, RuntimeError):
    """A tool's backend cannot run: missing optional package, missing model files, failed model call."""
