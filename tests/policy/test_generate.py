"""ProgramWriter: one prompt builder for every backend, n seeded samples per question, stable identity."""

from __future__ import annotations

import pytest

from valor_lib.clients import ChatClient, SamplingParams, register_toy_brain, unregister_toy_brain
from valor_lib.policy.generate import ProgramWriter, as_sampling, resolve_policy_spec
from valor_lib.policy.prompts import build_messages

QUESTIONS = ["How many chairs are there in the image?", "Is the red chair to the left of the table?"]


class EchoPolicy:
    """A toy brain that answers with what it was asked, so tests can see the requests."""

    name = "echo-policy"

    def __call__(self, request):
        return f"{request.sample_index}|{request.params.seed}|{request.messages[-1].text}|{len(request.messages)}"


@pytest.fixture
def echo_writer():
    register_toy_brain("echo-policy", EchoPolicy)
    try:
        yield ProgramWriter("toy:echo-policy", {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "max_tokens": 64})
    finally:
        unregister_toy_brain("echo-policy")


def test_requests_carry_the_shared_messages_and_distinct_sample_indices(echo_writer):
    requests = echo_writer.requests(QUESTIONS, n=3, seed=7)
    assert [r.sample_index for r in requests] == [0, 1, 2, 0, 1, 2]
    assert all(r.params.seed == 7 and r.params.temperature == 0.7 and r.params.top_k == 20 for r in requests)
    assert list(requests[3].messages) == build_messages(QUESTIONS[1], 4)


def test_write_groups_samples_per_question(echo_writer):
    out = echo_writer.write(QUESTIONS, n=3, seed=7)
    assert len(out) == 2 and all(len(samples) == 3 for samples in out)
    assert out[1][2] == f"2|7|Question: {QUESTIONS[1]}|2"
    assert echo_writer.write([], n=2) == []
    with pytest.raises(ValueError):
        echo_writer.write(QUESTIONS, n=0)


def test_identity_names_backend_sampling_and_prompt(echo_writer):
    identity = echo_writer.identity()
    assert identity["sampling"] == {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "max_tokens": 64}
    assert identity["examples"] == 4 and len(identity["prompt"]) == 16
    assert ProgramWriter("toy:echo-policy", examples=1, client=echo_writer.client).identity()["prompt"] != identity["prompt"]


def test_sampling_from_params_mapping():
    assert as_sampling({"temperature": 1.0, "top_p": 1.0}) == SamplingParams(temperature=1.0, top_p=1.0)
    with pytest.raises(TypeError):
        as_sampling({"temprature": 1.0})


def test_relative_local_paths_resolve_against_the_repo_root():
    spec, folder = resolve_policy_spec("hf:valor_lib")
    assert spec.startswith("hf:/") and folder is not None and folder.is_dir()
    assert resolve_policy_spec("hf:Qwen/Qwen3-8B") == ("hf:Qwen/Qwen3-8B", None)
    assert resolve_policy_spec("openai:gpt-5-mini") == ("openai:gpt-5-mini", None)


@pytest.mark.slow
def test_hf_policy_samples_are_seeded_and_use_the_trained_prompt_layout(tiny_policy):
    client = ChatClient(f"hf:{tiny_policy}", role="policy", device="cpu", batch_size=8)
    writer = ProgramWriter(f"hf:{tiny_policy}", {"temperature": 1.0, "top_p": 1.0, "max_tokens": 24}, client=client)
    assert writer.examples == 1
    first = writer.write(QUESTIONS, n=3, seed=0)
    again = writer.write(QUESTIONS, n=3, seed=0)
    assert first == again
    assert len({text for samples in first for text in samples}) > 1
    assert writer.identity()["policy"]["weights"]
