"""How provider responses become answers or typed failures (parsed by the SDKs' own response types)."""

from __future__ import annotations

import pytest

from valor_lib.clients import CallError


def _gemini(body):
    from google.genai import types

    from valor_lib.clients.backends.gemini_backend import _reply

    return _reply(types.GenerateContentResponse.model_validate(body))


def _chat(body):
    from openai.types.chat import ChatCompletion

    from valor_lib.clients.backends.openai_backend import _chat_reply

    return _chat_reply(ChatCompletion.model_validate(body))


def _candidate(finish, parts):
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish}],
            "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 2, "thoughtsTokenCount": 5}}


def test_gemini_answers_skip_thoughts_and_bill_them():
    reply = _gemini(_candidate("STOP", [{"text": "thinking...", "thought": True}, {"text": "yes"}]))
    assert (reply.text, reply.input_tokens, reply.output_tokens, reply.finish_reason) == ("yes", 7, 7, "stop")


@pytest.mark.parametrize(("body", "error_type"), [
    (_candidate("SAFETY", [{"text": "x"}]), "blocked"),
    ({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}, "blocked"),
    (_candidate("MAX_TOKENS", [{"text": "only thoughts", "thought": True}]), "length"),
    (_candidate("STOP", []), "empty"),
    ({"candidates": []}, "empty"),
])
def test_gemini_failures_are_typed(body, error_type):
    with pytest.raises(CallError) as info:
        _gemini(body)
    assert info.value.error_type == error_type


def _completion(content, finish):
    return {"id": "c", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


@pytest.mark.parametrize(("content", "finish", "error_type"), [
    (None, "length", "length"), ("", "stop", "empty"), (None, "content_filter", "blocked")])
def test_chat_failures_are_typed(content, finish, error_type):
    with pytest.raises(CallError) as info:
        _chat(_completion(content, finish))
    assert info.value.error_type == error_type


def test_chat_answer_cut_by_length_is_still_an_answer():
    reply = _chat(_completion("partial", "length"))
    assert (reply.text, reply.finish_reason, reply.input_tokens) == ("partial", "length", 3)
