"""Batched generation of plans and programs by a policy behind any chat backend (contract).

    writer = ProgramWriter("hf:data/toy/models/policy-base", {"temperature": 0.7, "top_p": 0.8, "top_k": 20})
    responses = writer.write(["How many chairs are there in the image?"], n=5, seed=0)  # 1 list of 5 strings

Backends: ``vllm:<model>`` (offline batches on a GPU), ``hf:<path>`` (transformers, batched, CPU or GPU) and
every API kind (the paper's "LLMs with tools" baselines). Every backend gets the same messages
(:func:`valor_lib.policy.prompts.build_messages`); a local checkpoint is prompted with the number of worked
examples it was trained with. Sample ``j`` of a question carries ``sample_index`` j and seed ``seed + j``, so
the ``n`` samples differ and a rerun reproduces them (per-request seeds are exact on vLLM and the APIs; the hf
backend seeds once per batch, see ``valor_lib/clients/README.md``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from valor_lib.clients import ChatClient, ChatRequest, SamplingParams
from valor_lib.paths import repo_root
from valor_lib.policy.prompts import build_messages, prompt_config, system_prompt
from valor_lib.specs import parse_spec

LOCAL_KINDS = ("hf", "vllm")
log = logging.getLogger(__name__)


def resolve_policy_spec(spec: str) -> tuple[str, Path | None]:
    """The spec with a relative local model path made absolute (against the repo root), and that folder."""
    parsed = parse_spec(spec, role="policy")
    if parsed.kind not in LOCAL_KINDS:
        return spec, None
    path = Path(parsed.arg)
    if not path.is_absolute() and (repo_root() / path).exists():
        path = repo_root() / path
    return (f"{parsed.kind}:{path}", path) if path.exists() else (spec, None)


def as_sampling(sampling: SamplingParams | Mapping[str, Any] | None) -> SamplingParams:
    """Sampling parameters from a ``SamplingParams`` or a params mapping (unknown keys are errors)."""
    if sampling is None:
        return SamplingParams()
    if isinstance(sampling, SamplingParams):
        return sampling
    return SamplingParams(**dict(sampling))


class ProgramWriter:
    """Writes ``<plan>``/``<answer>`` responses for questions with one policy.

    Args:
        spec: policy backend spec (``hf:``, ``vllm:``, an API kind, or ``toy:``).
        sampling: decoding settings (the paper's evaluation: temperature 0.7, top-p 0.8, top-k 20; RL
            rollouts: 1.0 / 1.0); ``seed`` is set per call by :meth:`write`.
        examples: worked examples in the prompt (default: what a local checkpoint was trained with, else 4).
        client: a ready client for ``spec`` (tests, sharing one loaded model); otherwise one is built with
            ``client_options`` (e.g. ``device="cpu"``, ``batch_size=64`` for hf).
    """

    def __init__(self, spec: str, sampling: SamplingParams | Mapping[str, Any] | None = None, *,
                 examples: int | None = None, client: ChatClient | None = None, progress: bool = False,
                 **client_options: Any):
        self.spec, self.model_dir = resolve_policy_spec(spec)
        self.sampling = as_sampling(sampling)
        self.examples = examples if examples is not None else prompt_config(self.model_dir)["examples"]
        self.client = client or ChatClient(self.spec, role="policy", **client_options)
        self.progress = progress
        self.failures = 0

    def messages(self, question: str) -> list:
        """The chat messages for one question (what every backend is sent)."""
        return build_messages(question, self.examples)

    def requests(self, questions: Sequence[str], n: int = 1, seed: int | None = None) -> list[ChatRequest]:
        """One request per (question, sample), question-major, sample ``j`` with ``sample_index`` j."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        params = dataclasses.replace(self.sampling, seed=seed)
        out = []
        for question in questions:
            messages = tuple(self.messages(question))
            out.extend(ChatRequest(messages, params, j) for j in range(n))
        return out

    def write(self, questions: Sequence[str], n: int = 1, seed: int | None = None) -> list[list[str]]:
        """``n`` raw responses per question (a failed call gives "" and is counted in ``failures``)."""
        questions = list(questions)
        if not questions:
            return []
        results = self.client.map(self.requests(questions, n, seed), desc="write programs", progress=self.progress)
        texts = []
        for result in results:
            if not result.ok:
                self.failures += 1
                log.warning("policy call failed (%s): %s", result.error_type, result.error)
            texts.append(result.output if result.ok else "")
        return [texts[i * n:(i + 1) * n] for i in range(len(questions))]

    def identity(self) -> dict[str, Any]:
        """What determines the responses besides the questions and the seed (for prediction cache keys)."""
        prompt = hashlib.sha256(system_prompt(self.examples).encode()).hexdigest()[:16]
        return {"policy": self.client.backend.identity(), "sampling": self.sampling.as_dict(),
                "examples": self.examples, "prompt": prompt}

    def close(self) -> None:
        self.client.close()
