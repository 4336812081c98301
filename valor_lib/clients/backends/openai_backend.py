"""OpenAI models (``openai:<model>``) and OpenAI-compatible servers such as vLLM
(``openai-compatible:<base_url>/<model>``), through the official ``openai`` SDK.

Both the Responses API (``api="responses"``, the default for ``openai:``) and Chat Completions
(``api="chat"``, the default for ``openai-compatible:``) are supported. Images travel as data URLs. The
SDK's own retries are off: the client's retry loop is the only one, so every retry is counted.

Parameters a provider ignores (documented, never an error):
- ``top_k``: sent only to OpenAI-compatible servers (as ``extra_body``); OpenAI has no top-k.
- ``seed`` and ``stop``: Chat Completions only; the Responses API has neither.
- OpenAI reasoning models (``gpt-5*``, ``o1*``, ``o3*``, ``o4*``) reject ``temperature``, ``top_p`` and
  ``stop``: they are dropped for those models. ``reasoning_effort`` is sent only when set.
"""

from __future__ import annotations

import os
import re
from typing import Any

from valor_lib.clients.backends.base import Backend, Reply, classify_transport_error, status_error
from valor_lib.clients.errors import CallError, ClientConfigError, MissingCredentialsError
from valor_lib.clients.types import ChatRequest, ImagePart, Message, TextPart

OPENAI_KEY_ENV = "OPENAI_API_KEY"
COMPATIBLE_KEY_ENV = "OPENAI_COMPATIBLE_API_KEY"
APIS = ("responses", "chat")
_REASONING_MODEL = re.compile(r"^(gpt-5|o1|o3|o4)")
_COMPATIBLE_SPLIT = re.compile(r"^(https?://[^/]+(?:/[^/]+)*?/v1)/(.+)$")


def split_compatible_arg(arg: str) -> tuple[str, str]:
    """``http://host:8000/v1/Qwen/Qwen3-8B`` -> (``http://host:8000/v1``, ``Qwen/Qwen3-8B``).

    The base URL ends at the first ``/v1`` path segment; everything after it is the model name, which may
    itself contain ``/``.
    """
    match = _COMPATIBLE_SPLIT.match(arg.strip())
    if not match:
        raise ClientConfigError(
            f"openai-compatible spec argument must be <base_url ending in /v1>/<model>, e.g. "
            f"'http://127.0.0.1:8000/v1/Qwen/Qwen3-8B'; got {arg!r}"
        )
    return match.group(1), match.group(2)


def is_qwen3(model: str) -> bool:
    """Qwen3 chat models, which answer without thinking in this project (``enable_thinking=False``)."""
    return "qwen3" in model.lower()


class OpenAIBackend(Backend):
    """Responses or Chat Completions over the official SDK (async client)."""

    kind = "openai"
    default_concurrency = 32

    compatible = False

    def __init__(self, model: str, *, api: str = "responses", base_url: str | None = None,
                 api_key: str | None = None, timeout_s: float = 120.0):
        super().__init__(model)
        if api not in APIS:
            raise ClientConfigError(f"api must be one of {APIS}, got {api!r}")
        self.api = api
        if self.compatible:
            key = api_key or os.environ.get(COMPATIBLE_KEY_ENV) or "EMPTY"
        else:
            key = api_key or os.environ.get(OPENAI_KEY_ENV)
            if not key:
                raise MissingCredentialsError(
                    f"openai:{model} needs an API key: set the environment variable {OPENAI_KEY_ENV}"
                )
        self._key = key
        import openai

        self._client = openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=timeout_s)

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "api": self.api}

    def secrets(self) -> list[str]:
        return [self._key] if self._key != "EMPTY" else []

    async def acall(self, request: ChatRequest) -> Reply:
        if self.api == "chat":
            completion = await self._client.chat.completions.create(**self.chat_kwargs(request))
            return _chat_reply(completion)
        response = await self._client.responses.create(**self.responses_kwargs(request))
        return _responses_reply(response)

    def _drops_sampling(self) -> bool:
        return not self.compatible and bool(_REASONING_MODEL.match(self.model))

    def chat_kwargs(self, request: ChatRequest) -> dict[str, Any]:
        """Keyword arguments of ``chat.completions.create`` for this request."""
        p = request.params
        kwargs: dict[str, Any] = {"model": self.model, "messages": [_chat_message(m) for m in request.messages]}
        if not self._drops_sampling():
            kwargs.update(_set(temperature=p.temperature, top_p=p.top_p, stop=list(p.stop) or None))
        kwargs.update(_set(max_completion_tokens=p.max_tokens, seed=request.effective_seed,
                           reasoning_effort=p.reasoning_effort))
        extra = self._compatible_extra(request)
        if extra:
            kwargs["extra_body"] = extra
        return kwargs

    def responses_kwargs(self, request: ChatRequest) -> dict[str, Any]:
        """Keyword arguments of ``responses.create`` for this request."""
        p = request.params
        kwargs: dict[str, Any] = {"model": self.model, "input": [_responses_message(m) for m in request.messages],
                                  "store": False}
        if not self._drops_sampling():
            kwargs.update(_set(temperature=p.temperature, top_p=p.top_p))
        kwargs.update(_set(max_output_tokens=p.max_tokens))
        if p.reasoning_effort:
            kwargs["reasoning"] = {"effort": p.reasoning_effort}
        extra = self._compatible_extra(request)
        if extra:
            kwargs["extra_body"] = extra
        return kwargs

    def _compatible_extra(self, request: ChatRequest) -> dict[str, Any]:
        if not self.compatible:
            return {}
        extra: dict[str, Any] = _set(top_k=request.params.top_k)
        if is_qwen3(self.model):
            extra["chat_template_kwargs"] = {"enable_thinking": False}
        return extra

    def classify(self, err: Exception) -> CallError:
        import openai

        if isinstance(err, openai.APITimeoutError):
            return CallError("timeout", "request timed out")
        if isinstance(err, openai.APIConnectionError):
            return CallError("connection", f"connection error: {err.__cause__ or err}")
        if isinstance(err, openai.APIStatusError):
            return status_error(err.status_code, f"HTTP {err.status_code}: {err.message}", err.response.headers)
        if isinstance(err, openai.APIResponseValidationError):
            return CallError("malformed", f"response does not match the API schema: {err}")
        return classify_transport_error(err)

    async def aclose(self) -> None:
        await self._client.close()


class OpenAICompatibleBackend(OpenAIBackend):
    """Any server speaking the OpenAI protocol (vLLM, SGLang, ...); the key is optional
    (``OPENAI_COMPATIBLE_API_KEY``, else the placeholder ``EMPTY``)."""

    kind = "openai-compatible"
    compatible = True
    default_concurrency = 64

    def __init__(self, arg: str, *, api: str = "chat", api_key: str | None = None, timeout_s: float = 120.0):
        base_url, model = split_compatible_arg(arg)
        super().__init__(model, api=api, base_url=base_url, api_key=api_key, timeout_s=timeout_s)


def _set(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _chat_message(m: Message) -> dict[str, Any]:
    if not m.images:
        return {"role": m.role, "content": m.text}
    parts = [{"type": "text", "text": p.text} if isinstance(p, TextPart)
             else {"type": "image_url", "image_url": {"url": p.data_url()}} for p in m.content]
    return {"role": m.role, "content": parts}


def _responses_message(m: Message) -> dict[str, Any]:
    if m.role != "user":
        return {"role": m.role, "content": m.text}
    parts = [{"type": "input_image", "image_url": p.data_url(), "detail": "auto"} if isinstance(p, ImagePart)
             else {"type": "input_text", "text": p.text} for p in m.content]
    return {"role": "user", "content": parts}


def _chat_reply(completion: Any) -> Reply:
    if not getattr(completion, "choices", None):
        raise CallError("empty", "chat completion has no choices")
    choice = completion.choices[0]
    if choice.finish_reason == "content_filter":
        raise CallError("blocked", "the provider's content filter withheld the answer")
    text = choice.message.content if choice.message else None
    if not text:
        if choice.finish_reason == "length":
            raise CallError("length", "max_tokens was reached before any answer text")
        raise CallError("empty", f"chat completion has no text (finish_reason={choice.finish_reason})")
    usage = completion.usage
    return Reply(text, usage.prompt_tokens if usage else None, usage.completion_tokens if usage else None,
                 choice.finish_reason)


def _responses_reply(response: Any) -> Reply:
    reason = getattr(getattr(response, "incomplete_details", None), "reason", None)
    if reason == "content_filter":
        raise CallError("blocked", "the provider's content filter withheld the answer")
    if getattr(response, "error", None):
        raise CallError("server", f"response failed: {response.error}")
    text = "".join(
        part.text for item in (response.output or []) if getattr(item, "type", None) == "message"
        for part in (item.content or []) if getattr(part, "type", None) == "output_text"
    )
    if not text:
        if reason == "max_output_tokens":
            raise CallError("length", "max_output_tokens was reached before any answer text")
        raise CallError("empty", f"response has no output text (status={response.status})")
    usage = response.usage
    finish = "length" if reason == "max_output_tokens" else "stop"
    return Reply(text, usage.input_tokens if usage else None, usage.output_tokens if usage else None, finish)
