"""Backend spec strings (``kind:argument``), e.g. ``toy:verifier``, ``gemini:gemini-2.5-flash``,
``hf:data/toy/models/policy-base``. One parser, one table of which kinds serve which role."""

from __future__ import annotations

from dataclasses import dataclass

# Every backend kind the library implements, with what its argument is.
KINDS: dict[str, str] = {
    "toy": "a toy-world role, e.g. toy:verifier",
    "openai": "an OpenAI model name, e.g. openai:gpt-5-mini",
    "gemini": "a Gemini model name, e.g. gemini:gemini-2.5-flash",
    "openai-compatible": "<base_url>/<model> of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1/Qwen/Qwen3-8B",
    "vllm": "a model path or hub id served by vLLM offline batching (GPU)",
    "hf": "a local path or hub id of a transformers model",
    "groundingdino-hf": "a transformers GroundingDINO checkpoint (path or hub id)",
    "groundingdino-pth": "an Open-GroundingDino .pth checkpoint, converted on load",
    "moge": "a MoGe checkpoint (needs the optional moge package)",
    "depth-anything-hf": "a transformers metric depth checkpoint (path or hub id)",
}

_CHAT = {"toy", "openai", "gemini", "openai-compatible", "hf", "vllm"}
_VISION_CHAT = {"toy", "openai", "gemini", "openai-compatible", "hf"}

# Which kinds may fill each role named in params (common.backends).
ROLE_KINDS: dict[str, set[str]] = {
    "policy": _CHAT,
    "llm_verifier": _CHAT,
    "vlm_verifier": _VISION_CHAT,
    "querygen": _VISION_CHAT,
    "vqa": _VISION_CHAT,
    "judge": _CHAT,
    "detector": {"groundingdino-hf", "groundingdino-pth"},
    "depth": {"toy", "moge", "depth-anything-hf"},
}


class SpecError(ValueError):
    """A backend spec string that is malformed, unknown, or not allowed for its role."""


@dataclass(frozen=True)
class Spec:
    """A parsed backend spec: ``kind`` and the ``arg`` after the first colon."""

    kind: str
    arg: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.arg}"


def parse_spec(text: str, role: str | None = None) -> Spec:
    """Parse ``kind:arg``; with ``role``, also check the kind may serve that role."""
    if not isinstance(text, str) or ":" not in text:
        raise SpecError(f"backend spec must look like 'kind:argument', got {text!r}; kinds: {sorted(KINDS)}")
    kind, arg = text.split(":", 1)
    if kind not in KINDS:
        raise SpecError(f"unknown backend kind {kind!r} in {text!r}; known kinds: {sorted(KINDS)}")
    if not arg.strip():
        raise SpecError(f"backend spec {text!r} has no argument ({kind}: {KINDS[kind]})")
    if role is not None:
        if role not in ROLE_KINDS:
            raise SpecError(f"unknown backend role {role!r}; roles: {sorted(ROLE_KINDS)}")
        if kind not in ROLE_KINDS[role]:
            raise SpecError(
                f"backend {text!r} cannot serve as {role}; allowed kinds: {sorted(ROLE_KINDS[role])}"
            )
    return Spec(kind, arg)
