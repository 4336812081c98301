"""Every network backend through its real SDK against the local protocol server: the brain must see
exactly the request that was sent (text, images, sampling parameters as each provider supports them)."""

from __future__ import annotations

import pytest
from PIL import Image

from valor_lib.clients import ChatClient, ChatRequest, SamplingParams, assistant, system, user
from valor_lib.testing import ModelServer

PARAMS = SamplingParams(temperature=0.5, top_p=0.9, top_k=20, max_tokens=64, seed=7, reasoning_effort="low",
                        stop=("END",))
FULL = {"temperature": 0.5, "top_p": 0.9, "top_k": 20, "max_tokens": 64, "seed": 9, "reasoning_effort": "low",
        "stop": ["END"]}

# (spec, options, what the provider receives of PARAMS with sample_index 2, i.e. effective seed 9)
CASES = {
    "responses": ("openai:gpt-4.1-mini", {"api": "responses"},
                  {k: FULL[k] for k in ("temperature", "top_p", "max_tokens", "reasoning_effort")}),
    "responses-reasoning-model": ("openai:gpt-5-mini", {"api": "responses"},
                                  {k: FULL[k] for k in ("max_tokens", "reasoning_effort")}),
    "chat": ("openai:gpt-4.1-mini", {"api": "chat"}, {k: v for k, v in FULL.items() if k != "top_k"}),
    "chat-reasoning-model": ("openai:gpt-5-mini", {"api": "chat"},
                             {k: FULL[k] for k in ("max_tokens", "seed", "reasoning_effort")}),
    "compatible-chat": ("openai-compatible:{base}/Qwen/Qwen3-8B", {}, FULL),
    "compatible-responses": ("openai-compatible:{base}/Qwen/Qwen3-8B", {"api": "responses"},
                             {k: FULL[k] for k in ("temperature", "top_p", "top_k", "max_tokens", "reasoning_effort")}),
    "gemini": ("gemini:gemini-2.5-flash", {}, FULL),
}


def _describe(request: ChatRequest) -> list[tuple[str, list]]:
    return [(m.role, [p.text if hasattr(p, "text") else p.to_pil().convert("RGB").tobytes() for p in m.content])
            for m in request.messages]


@pytest.mark.parametrize("case", list(CASES))
def test_brain_sees_the_request_that_was_sent(case, make_server, fake_keys, tmp_path):
    seen: list[ChatRequest] = []

    def brain(request: ChatRequest) -> str:
        seen.append(request)
        return "the answer"

    server: ModelServer = make_server(brain)
    spec, options, expected_params = CASES[case]
    base_url = server.openai_base_url if not spec.startswith("gemini") else server.gemini_base_url
    if spec.startswith("openai-compatible"):
        spec = spec.format(base=server.openai_base_url)
    else:
        options = {**options, "base_url": base_url}
    photo = Image.new("RGB", (12, 9), (200, 30, 60))
    photo.putpixel((3, 4), (0, 255, 0))
    request = ChatRequest(
        (system("You judge programs."), user("Look at", photo, "then answer."), assistant("Earlier answer."),
         user("Final question?")), PARAMS, sample_index=2)
    with ChatClient(spec, cache="off", **options) as client:
        result = client.complete(request)
    assert result.ok and result.text == "the answer"
    assert result.input_tokens == 3 + 2 + 64 + 2 + 2 + 2 and result.output_tokens == 2
    assert _describe(seen[0]) == _describe(request)
    assert seen[0].params.as_dict() == expected_params
    received = server.received[0]
    if case.startswith("compatible"):
        assert received.payload["chat_template_kwargs"] == {"enable_thinking": False}
        assert received.auth == f"Bearer {fake_keys['openai']}"
    elif case == "gemini":
        assert received.model == "gemini-2.5-flash" and received.auth == fake_keys["gemini"]
    else:
        assert received.auth == f"Bearer {fake_keys['openai']}"
        assert received.payload.get("store", False) is False


def test_unset_parameters_are_not_sent(make_server, make_client, backend):
    server = make_server()
    client = make_client(backend, server, cache="off")
    assert client.complete("plain").text == "echo: plain"
    payload = server.received[0].payload
    sent = set(payload) | set(payload.get("generationConfig", {}))
    assert not sent & {"temperature", "top_p", "top_k", "seed", "stop", "max_tokens", "max_completion_tokens",
                       "max_output_tokens", "topP", "topK", "maxOutputTokens", "stopSequences", "reasoning"}


def test_openai_compatible_spec_splits_after_v1():
    from valor_lib.clients.backends.openai_backend import split_compatible_arg

    assert split_compatible_arg("http://h:8000/v1/Qwen/Qwen3-8B") == ("http://h:8000/v1", "Qwen/Qwen3-8B")
    assert split_compatible_arg("https://x.org/api/v1/m") == ("https://x.org/api/v1", "m")
    assert split_compatible_arg("http://h/v1/org/v1-model") == ("http://h/v1", "org/v1-model")
    for bad in ("http://h:8000/Qwen3", "http://h:8000/v1", "h:8000/v1/m"):
        with pytest.raises(ValueError, match="base_url ending in /v1"):
            split_compatible_arg(bad)
