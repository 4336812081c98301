"""``toy:<role>``: registry dispatch, what a brain sees, failures, batching."""

from __future__ import annotations

import pytest
from PIL import Image

from valor_lib.clients import (
    TOY_BRAIN_MODULES,
    CallError,
    ChatClient,
    ChatRequest,
    ClientConfigError,
    register_toy_brain,
    unregister_toy_brain,
    user,
)


class ColourBrain:
    """Names the dominant colour of the image it is shown (reads pixels, as a real VLM would)."""

    name = "colour-brain-v1"

    def __init__(self, fail_on: str = "", refuse_on: str = ""):
        self.fail_on, self.refuse_on = fail_on, refuse_on
        self.seen: list[ChatRequest] = []

    def __call__(self, request: ChatRequest) -> str:
        self.seen.append(request)
        text = request.messages[-1].text
        if self.refuse_on and self.refuse_on in text:
            raise CallError("blocked", "refused")
        if self.fail_on and self.fail_on in text:
            raise RuntimeError("brain bug")
        images = request.messages[-1].images
        if not images:
            return "no image"
        r, g, b = images[0].to_pil().convert("RGB").resize((1, 1)).getpixel((0, 0))
        return max((r, "red"), (g, "green"), (b, "blue"))[1]


@pytest.fixture
def colour_role():
    brains = []

    def factory(**options):
        brains.append(ColourBrain(**options))
        return brains[-1]

    register_toy_brain("test_colour", factory)
    yield brains
    unregister_toy_brain("test_colour")


def test_toy_brain_sees_the_request_and_answers(colour_role):
    client = ChatClient("toy:test_colour")
    requests = [ChatRequest((user("Colour?", Image.new("RGB", (5, 5), c)),), ) for c in ("red", "green", "blue")]
    results = client.map(requests, progress=False)
    assert [r.text for r in results] == ["red", "green", "blue"]
    brain = colour_role[0]
    assert brain.seen[0].messages == requests[0].messages
    assert client.backend.identity() == {"kind": "toy", "model": "test_colour", "brain": "colour-brain-v1"}


def test_brain_options_reach_the_factory_and_failures_are_recorded(colour_role):
    client = ChatClient("toy:test_colour", brain_options={"refuse_on": "secret"})
    ok, refused = client.map(["fine", "secret plan"], progress=False)
    assert ok.text == "no image"
    assert not refused.ok and refused.error_type == "blocked" and refused.attempts == 1


def test_a_crashing_brain_is_a_recorded_local_failure(colour_role):
    client = ChatClient("toy:test_colour", brain_options={"fail_on": "boom"})
    result = client.complete("boom")
    assert not result.ok and result.error_type == "local" and "brain bug" in result.error


def test_toy_requests_are_batched(colour_role):
    client = ChatClient("toy:test_colour")
    client.map([f"q{i}" for i in range(100)], progress=False)
    assert max(client._batcher.batch_sizes) > 1 and sum(client._batcher.batch_sizes) == 100


def test_unknown_and_unregistered_roles_are_clear_errors():
    with pytest.raises(ClientConfigError, match=r"known roles: .*verifier"):
        ChatClient("toy:no_such_role")
    missing = [role for role, module in TOY_BRAIN_MODULES.items() if _absent(module)]
    if missing:
        with pytest.raises(ClientConfigError, match="cannot be imported"):
            ChatClient(f"toy:{missing[0]}")


def test_duplicate_registration_needs_replace(colour_role):
    with pytest.raises(ValueError, match="already registered"):
        register_toy_brain("test_colour", lambda: ColourBrain())
    with pytest.raises(ValueError, match="plain name"):
        register_toy_brain("a:b", lambda: ColourBrain())


def _absent(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True
