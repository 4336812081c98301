"""Backends behind one interface, chosen by spec string (``kind:arg``, see ``valor_lib.specs``)."""

from __future__ import annotations

import importlib
from typing import Any

from valor_lib.clients.backends.base import Backend, Reply
from valor_lib.clients.errors import ClientConfigError
from valor_lib.specs import Spec, parse_spec

__all__ = ["BACKENDS", "Backend", "Reply", "create_backend"]

# Chat backend kind -> "module:Class" (imported on first use, so e.g. transformers loads only for hf).
BACKENDS: dict[str, str] = {
    "openai": "valor_lib.clients.backends.openai_backend:OpenAIBackend",
    "openai-compatible": "valor_lib.clients.backends.openai_backend:OpenAICompatibleBackend",
    "gemini": "valor_lib.clients.backends.gemini_backend:GeminiBackend",
    "hf": "valor_lib.clients.backends.hf_backend:HFBackend",
    "vllm": "valor_lib.clients.backends.vllm_backend:VLLMBackend",
    "toy": "valor_lib.clients.backends.toy_backend:ToyBackend",
}
_NETWORK = ("openai", "openai-compatible", "gemini")


def create_backend(spec: str | Spec, *, timeout_s: float = 120.0, **options: Any) -> Backend:
    """Build the backend for ``spec``; ``options`` go to its constructor (e.g. ``api="chat"``,
    ``base_url=...``, ``device="cpu"``, ``brain_options={...}``). Credentials are checked here."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if spec.kind not in BACKENDS:
        raise ClientConfigError(f"{spec} is not a chat backend; chat kinds: {sorted(BACKENDS)}")
    if spec.kind in _NETWORK:
        options["timeout_s"] = timeout_s
    module, name = BACKENDS[spec.kind].split(":")
    cls = getattr(importlib.import_module(module), name)
    try:
        return cls(spec.arg, **options)
    except TypeError as err:
        if "unexpected keyword argument" in str(err):
            raise ClientConfigError(f"{spec}: {err}") from None
        raise
