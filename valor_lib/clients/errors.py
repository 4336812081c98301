"""Exceptions of the client layer, and the vocabulary of failure types a call can end with."""

from __future__ import annotations

# Failure types (ChatResult.error_type); the first group is retried, the second is final at once.
RETRYABLE_TYPES = frozenset({"rate_limit", "server", "timeout", "connection", "malformed", "empty"})
# "length": cut by max_tokens before any answer text; "local": a local model (hf, vllm, toy) raised.
FINAL_TYPES = frozenset({"blocked", "length", "bad_request", "auth", "not_found", "local", "other"})
ERROR_TYPES = RETRYABLE_TYPES | FINAL_TYPES


class ClientError(Exception):
    """Base class of every error raised by ``valor_lib.clients``."""


class ClientConfigError(ClientError, ValueError):
    """A client was configured wrongly (bad spec, option, or unusable backend)."""


class MissingCredentialsError(ClientConfigError):
    """The API key or credentials a backend needs are not set; the message names the variables."""


class CallError(ClientError):
    """One attempt of a call failed; ``error_type`` says how (see ``ERROR_TYPES``).

    Backends raise it (or the client converts SDK exceptions into it); the client retries the retryable
    types and records the final one on the result. ``retry_after_s`` carries a server's Retry-After.
    """

    def __init__(self, error_type: str, message: str, retry_after_s: float | None = None):
        if error_type not in ERROR_TYPES:
            raise ValueError(f"unknown error type {error_type!r}; known: {sorted(ERROR_TYPES)}")
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        return self.error_type in RETRYABLE_TYPES


class RequestFailedError(ClientError):
    """Raised when the text of a failed result is read: the call ended without an answer."""

    def __init__(self, error_type: str, message: str):
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
