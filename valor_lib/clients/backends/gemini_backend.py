"""Gemini models (``gemini:<model>``) through the official ``google-genai`` SDK, with a Gemini API key or
Vertex AI service-account credentials.

Images travel inline (``Part.from_bytes``). SDK retries are switched off explicitly (``attempts=1``), so
the client's retries are the only ones. ``base_url`` points the SDK at another endpoint (tests use a local
server). System messages become ``system_instruction``. ``reasoning_effort`` maps onto a thinking budget
for Gemini 2.x (none/minimal 0, low 1024, medium 8192, high 24576 tokens) and onto ``thinking_level`` for
Gemini 3. Every sampling parameter is supported (``seed`` is best effort on Google's side).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from valor_lib.clients.backends.base import (
    Backend,
    Reply,
    classify_transport_error,
    status_error,
)
from valor_lib.clients.errors import CallError, MissingCredentialsError
from valor_lib.clients.types import ChatRequest, Message, TextPart

API_KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
VERTEX_ENV = "GOOGLE_GENAI_USE_VERTEXAI"
CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"
LOCATION_ENV = "GOOGLE_CLOUD_LOCATION"
THINKING_BUDGETS = {"none": 0, "minimal": 0, "low": 1024, "medium": 8192, "high": 24576}
BLOCK_REASONS = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
                 "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"}
_DELAY = re.compile(r"^([0-9.]+)s$")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


class GeminiBackend(Backend):
    """``models.generate_content`` on the SDK's async client."""

    kind = "gemini"
    default_concurrency = 32

    def __init__(self, model: str, *, api_key: str | None = None, vertexai: bool | None = None,
                 project: str | None = None, location: str | None = None, base_url: str | None = None,
                 timeout_s: float = 120.0):
        super().__init__(model)
        from google import genai
        from google.genai import types

        # attempts=1: no SDK retries. Leaving retry_options unset is not enough: the SDK then retries aiohttp
        # connection errors itself after sleeping 1-10 s, invisibly to our accounting.
        http = types.HttpOptions(base_url=base_url, timeout=int(timeout_s * 1000),
                                 retry_options=types.HttpRetryOptions(attempts=1))
        self.vertexai = _env_flag(VERTEX_ENV) if vertexai is None else vertexai
        self._key = None
        if self.vertexai:
            project = project or os.environ.get(PROJECT_ENV)
            _check_vertex_credentials(model, project)
            location = location or os.environ.get(LOCATION_ENV) or "global"
            self._client = genai.Client(vertexai=True, project=project, location=location, http_options=http)
        else:
            self._key = api_key or next((os.environ[e] for e in API_KEY_ENVS if os.environ.get(e)), None)
            if not self._key:
                raise MissingCredentialsError(
                    f"gemini:{model} needs an API key: set {' or '.join(API_KEY_ENVS)} (or, for Vertex AI, "
                    f"{VERTEX_ENV}=true with {CREDENTIALS_ENV} and {PROJECT_ENV})"
                )
            self._client = genai.Client(api_key=self._key, http_options=http)

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model}

    def secrets(self) -> list[str]:
        return [self._key] if self._key else []

    def request_kwargs(self, request: ChatRequest) -> dict[str, Any]:
        """Keyword arguments of ``models.generate_content`` for this request."""
        from google.genai import types

        p = request.params
        system_text = "\n\n".join(m.text for m in request.messages if m.role == "system")
        config: dict[str, Any] = {
            "system_instruction": system_text or None,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "top_k": p.top_k,
            "max_output_tokens": p.max_tokens,
            "seed": request.effective_seed,
            "stop_sequences": list(p.stop) or None,
        }
        if p.reasoning_effort:
            if self.model.removeprefix("models/").startswith("gemini-3"):
                level = "MINIMAL" if p.reasoning_effort == "none" else p.reasoning_effort.upper()
                config["thinking_config"] = types.ThinkingConfig(thinking_level=level)
            else:
                config["thinking_config"] = types.ThinkingConfig(thinking_budget=THINKING_BUDGETS[p.reasoning_effort])
        contents = [_content(m) for m in request.messages if m.role != "system"]
        return {"model": self.model, "contents": contents,
                "config": types.GenerateContentConfig(**{k: v for k, v in config.items() if v is not None})}

    async def acall(self, request: ChatRequest) -> Reply:
        response = await self._client.aio.models.generate_content(**self.request_kwargs(request))
        return _reply(response)

    def classify(self, err: Exception) -> CallError:
        from google.genai import errors

        if isinstance(err, errors.APIError):
            headers = getattr(getattr(err, "response", None), "headers", None)
            error = status_error(int(err.code or 0), f"HTTP {err.code} {err.status}: {err.message}", headers)
            if error.retry_after_s is None and error.retryable:
                error.retry_after_s = _retry_info_delay(err.details)
            return error
        return classify_transport_error(err)

    async def aclose(self) -> None:
        await self._client.aio.aclose()


def _check_vertex_credentials(model: str, project: str | None) -> None:
    creds = os.environ.get(CREDENTIALS_ENV)
    adc = Path.home() / ".config" / "gcloud" / "application_default_credentials.json"
    problem = None
    if creds and not Path(creds).is_file():
        problem = f"{CREDENTIALS_ENV}={creds} is not a file"
    elif not creds and not adc.is_file():
        problem = f"set {CREDENTIALS_ENV} to a service-account JSON file"
    elif not project:
        problem = f"set {PROJECT_ENV} to the Google Cloud project"
    if problem:
        raise MissingCredentialsError(f"gemini:{model} on Vertex AI needs credentials: {problem}")


def _content(m: Message) -> Any:
    from google.genai import types

    parts = []
    for p in m.content:
        if isinstance(p, TextPart):
            parts.append(types.Part.from_text(text=p.text))
        else:
            data, mime = p.encoded()
            parts.append(types.Part.from_bytes(data=data, mime_type=mime))
    return types.Content(role="user" if m.role == "user" else "model", parts=parts)


def _name(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def _reply(response: Any) -> Reply:
    feedback = getattr(response, "prompt_feedback", None)
    if feedback is not None and feedback.block_reason:
        raise CallError("blocked", f"prompt blocked ({_name(feedback.block_reason)})")
    if not response.candidates:
        raise CallError("empty", "response has no candidates")
    candidate = response.candidates[0]
    finish = _name(candidate.finish_reason)
    if finish in BLOCK_REASONS:
        raise CallError("blocked", f"answer withheld (finish_reason={finish})")
    parts = (candidate.content.parts if candidate.content else None) or []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    if not text:
        if finish == "MAX_TOKENS":
            raise CallError("length", "max_output_tokens was reached before any answer text")
        raise CallError("empty", f"candidate has no text (finish_reason={finish})")
    usage = response.usage_metadata
    output_tokens = None
    if usage is not None and usage.candidates_token_count is not None:
        output_tokens = usage.candidates_token_count + (usage.thoughts_token_count or 0)
    return Reply(text, usage.prompt_token_count if usage else None, output_tokens,
                 "length" if finish == "MAX_TOKENS" else "stop")


def _retry_info_delay(details: Any) -> float | None:
    """The ``google.rpc.RetryInfo`` delay in an error body, e.g. ``"retryDelay": "7s"``."""
    try:
        entries = details.get("error", details).get("details", [])
        for entry in entries:
            if str(entry.get("@type", "")).endswith("RetryInfo"):
                match = _DELAY.match(str(entry.get("retryDelay", "")))
                if match:
                    return float(match.group(1))
    except AttributeError:
        return None
    return None
