"""The interface every backend implements, and the failure classification shared by the network ones."""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from valor_lib.clients.errors import CallError
from valor_lib.clients.types import ChatRequest

# Environment variables holding credentials: their values are scrubbed from every error text.
SECRET_ENVS = ("OPENAI_API_KEY", "OPENAI_COMPATIBLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")


@dataclass(frozen=True)
class Reply:
    """A backend's successful answer to one request."""

    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None


class Backend:
    """One model behind one protocol.

    Network backends (``batched = False``) implement :meth:`acall`; the client runs many at once under its
    concurrency limit. Local backends (``batched = True``) implement :meth:`generate_batch`; the client
    gathers concurrent requests into batches of up to ``batch_size`` and runs them in one worker thread.
    Either raises :class:`CallError` for a failed answer; :meth:`classify` turns SDK exceptions into one.
    """

    kind: ClassVar[str]
    batched: ClassVar[bool] = False
    default_concurrency: ClassVar[int] = 16
    default_cache: ClassVar[str] = "use"  # "off" for local models, whose weights change under one path
    batch_size: int = 1

    def __init__(self, model: str):
        self.model = model

    @property
    def label(self) -> str:
        """``kind:model``: the accounting label (no URLs, no credentials)."""
        return f"{self.kind}:{self.model}"

    def identity(self) -> dict[str, Any]:
        """What, besides the request, determines the answer: part of every cache key."""
        return {"kind": self.kind, "model": self.model}

    def secrets(self) -> list[str]:
        """Credential strings to scrub from any error text."""
        return []

    async def acall(self, request: ChatRequest) -> Reply:
        raise NotImplementedError(f"{type(self).__name__} answers in batches (generate_batch)")

    def generate_batch(self, requests: list[ChatRequest]) -> list[Reply]:
        raise NotImplementedError(f"{type(self).__name__} answers one call at a time (acall)")

    def classify(self, err: Exception) -> CallError:
        """Map an exception from this backend's SDK to a :class:`CallError`."""
        return classify_transport_error(err)

    async def aclose(self) -> None:
        """Release connections (called on the client's event loop)."""


def classify_transport_error(err: Exception) -> CallError:
    """Timeouts, dropped connections and unparseable bodies, whichever HTTP library raised them."""
    if isinstance(err, CallError):
        return err
    name = f"{type(err).__module__}.{type(err).__name__}"
    if isinstance(err, TimeoutError | asyncio.TimeoutError) or "Timeout" in type(err).__name__:
        return CallError("timeout", f"timed out ({name})")
    if isinstance(err, json.JSONDecodeError):
        return CallError("malformed", f"response body is not valid JSON: {err}")
    transport_modules = ("httpx", "httpx2", "httpcore", "aiohttp", "h11")
    if isinstance(err, ConnectionError | OSError) or type(err).__module__.split(".")[0] in transport_modules:
        return CallError("connection", f"{name}: {err}")
    return CallError("other", f"{name}: {err}")


def status_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> CallError:
    """A :class:`CallError` for an HTTP error status."""
    if status == 429:
        return CallError("rate_limit", message, parse_retry_after(headers))
    if status in (408,):
        return CallError("timeout", message)
    if status >= 500 or status == 409:
        return CallError("server", message, parse_retry_after(headers))
    if status in (401, 403):
        return CallError("auth", message)
    if status == 404:
        return CallError("not_found", message)
    return CallError("bad_request", message)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds, possibly fractional, or an HTTP date)."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return float(lowered["retry-after-ms"]) / 1000.0
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return max(0.0, email.utils.mktime_tz(parsed) - time.time()) if parsed else None


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every credential string (``secrets`` and the values of ``SECRET_ENVS``) replaced by
    ``***``."""
    for secret in [*secrets, *(os.environ.get(name, "") for name in SECRET_ENVS)]:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    return text
