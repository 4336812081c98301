"""Server side of the provider protocols the test server speaks: JSON request -> ChatRequest (what the
brain sees), answer -> JSON response, and the error and fault bodies of each protocol.

Covered: OpenAI Chat Completions (``/v1/chat/completions``), OpenAI Responses (``/v1/responses``) and Gemini
``generateContent`` (``/v1beta/models/{model}:generateContent``), non-streaming, text and image inputs.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

from valor_lib.clients.types import ChatRequest, ImagePart, Message, SamplingParams, TextPart

_BUDGET_TO_EFFORT = {0: "none", 1024: "low", 8192: "medium", 24576: "high"}


def count_tokens(request: ChatRequest) -> int:
    """A deterministic stand-in for a tokenizer: words of text, plus 64 per image."""
    return sum(len(p.text.split()) if isinstance(p, TextPart) else 64 for m in request.messages for p in m.content)


def _b64decode(text: str) -> bytes:
    """Standard or URL-safe base64 (the Gemini SDK sends the latter)."""
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _image_from_data_url(url: str) -> ImagePart:
    if not url.startswith("data:") or ";base64," not in url:
        raise ValueError("only base64 data URLs are supported for images")
    return ImagePart(_b64decode(url.split(";base64,", 1)[1]))


def _params(**values: Any) -> SamplingParams:
    stop = values.pop("stop", None) or ()
    return SamplingParams(stop=(stop,) if isinstance(stop, str) else tuple(stop),
                          **{k: v for k, v in values.items() if v is not None})


# ----- parsing ---------------------------------------------------------------------------------------
def parse_chat(body: dict[str, Any]) -> ChatRequest:
    messages = []
    for m in body["messages"]:
        role = "system" if m["role"] == "developer" else m["role"]
        content = m["content"]
        if isinstance(content, list):
            content = [p["text"] if p["type"] == "text" else _image_from_data_url(p["image_url"]["url"])
                       for p in content]
        messages.append(Message(role, content))
    params = _params(temperature=body.get("temperature"), top_p=body.get("top_p"), top_k=body.get("top_k"),
                     max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
                     seed=body.get("seed"), reasoning_effort=body.get("reasoning_effort"), stop=body.get("stop"))
    return ChatRequest(tuple(messages), params)


def parse_responses(body: dict[str, Any]) -> ChatRequest:
    messages = [Message("system", body["instructions"])] if body.get("instructions") else []
    items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
    for item in items:
        role = "system" if item["role"] == "developer" else item["role"]
        content = item["content"]
        if isinstance(content, list):
            content = [p["text"] if p["type"] in ("input_text", "output_text")
                       else _image_from_data_url(p["image_url"]) for p in content]
        messages.append(Message(role, content))
    params = _params(temperature=body.get("temperature"), top_p=body.get("top_p"), top_k=body.get("top_k"),
                     max_tokens=body.get("max_output_tokens"),
                     reasoning_effort=(body.get("reasoning") or {}).get("effort"))
    return ChatRequest(tuple(messages), params)


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    return d.get(camel, d.get(snake))


def parse_gemini(body: dict[str, Any]) -> ChatRequest:
    messages = []
    system_instruction = _get(body, "systemInstruction", "system_instruction")
    if system_instruction:
        messages.append(Message("system", "".join(p.get("text", "") for p in system_instruction["parts"])))
    for content in body["contents"]:
        parts = []
        for p in content["parts"]:
            inline = _get(p, "inlineData", "inline_data")
            parts.append(ImagePart(_b64decode(inline["data"])) if inline else p["text"])
        messages.append(Message("assistant" if content.get("role") == "model" else "user", parts))
    config = _get(body, "generationConfig", "generation_config") or {}
    thinking = _get(config, "thinkingConfig", "thinking_config") or {}
    level = _get(thinking, "thinkingLevel", "thinking_level")
    budget = _get(thinking, "thinkingBudget", "thinking_budget")
    effort = level.lower() if level else _BUDGET_TO_EFFORT.get(budget)
    params = _params(temperature=config.get("temperature"), top_p=_get(config, "topP", "top_p"),
                     top_k=_get(config, "topK", "top_k"), max_tokens=_get(config, "maxOutputTokens", "max_output_tokens"),
                     seed=config.get("seed"), reasoning_effort=effort, stop=_get(config, "stopSequences", "stop_sequences"))
    return ChatRequest(tuple(messages), params)


PARSERS = {"chat": parse_chat, "responses": parse_responses, "gemini": parse_gemini}


# ----- answers ---------------------------------------------------------------------------------------
def answer_body(protocol: str, model: str, text: str, n_in: int, n_out: int) -> dict[str, Any]:
    """A successful, non-streaming response of ``protocol`` carrying ``text``."""
    if protocol == "chat":
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}}
    if protocol == "responses":
        return {"id": f"resp_{uuid.uuid4().hex[:12]}", "object": "response", "created_at": int(time.time()),
                "model": model, "status": "completed", "output": [
                    {"type": "message", "id": f"msg_{uuid.uuid4().hex[:12]}", "status": "completed",
                     "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}]}],
                "usage": {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out,
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}}}
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP",
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": n_in, "candidatesTokenCount": n_out,
                              "totalTokenCount": n_in + n_out},
            "modelVersion": model}


def error_body(protocol: str, status: int, message: str) -> dict[str, Any]:
    """The error JSON a provider sends with an HTTP error status."""
    if protocol == "gemini":
        names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
                 500: "INTERNAL", 503: "UNAVAILABLE"}
        return {"error": {"code": status, "message": message, "status": names.get(status, "UNKNOWN")}}
    kinds = {401: "invalid_request_error", 429: "rate_limit_error", 400: "invalid_request_error"}
    return {"error": {"message": message, "type": kinds.get(status, "server_error"), "param": None,
                      "code": None}}


def empty_body(protocol: str, model: str) -> dict[str, Any]:
    """A 200 answer without any content (Gemini: no candidates)."""
    if protocol == "chat":
        return {**answer_body("chat", model, "", 1, 0), "choices": []}
    if protocol == "responses":
        return {**answer_body("responses", model, "", 1, 0), "output": []}
    return {"usageMetadata": {"promptTokenCount": 1, "totalTokenCount": 1}, "modelVersion": model}


def blocked_body(protocol: str, model: str) -> dict[str, Any]:
    """A 200 answer whose content a safety filter withheld."""
    if protocol == "chat":
        body = answer_body("chat", model, "", 1, 0)
        body["choices"][0].update(finish_reason="content_filter", message={"role": "assistant", "content": None})
        return body
    if protocol == "responses":
        return {**answer_body("responses", model, "", 1, 0), "status": "incomplete", "output": [],
                "incomplete_details": {"reason": "content_filter"}}
    return {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 1},
            "modelVersion": model}
