"""Backend construction from spec strings (``common.backends.detector / depth / vqa`` in params.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from valor_lib.paths import MissingDataError, repo_root
from valor_lib.specs import parse_spec
from valor_lib.tools.depth import DepthAnythingDepth, DepthBackend, GroundPlaneDepth, MogeDepth
from valor_lib.tools.errors import ToolBackendError
from valor_lib.tools.vqa import ClientVQA

_LOCAL_HINTS = ("./", "../", "data/", "results/", "/")
_LOCAL_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin")


def resolve_model_path(arg: str, must_exist: bool = False) -> str:
    """A spec argument as a local path (relative paths resolve against the repository root) or, when it
    names nothing local and does not look like a path, a hub id."""
    path = Path(arg)
    candidate = path if path.is_absolute() else repo_root() / path
    if candidate.exists():
        return str(candidate)
    if must_exist or arg.startswith(_LOCAL_HINTS) or arg.endswith(_LOCAL_SUFFIXES):
        hint = " (run the toy_world stage to build the toy detector)" if "data/toy" in arg else ""
        raise MissingDataError(f"model not found: {candidate}{hint}")
    return arg


def make_depth(spec: str, device: str = "auto", cache_size: int = 32) -> DepthBackend:
    """A depth backend: ``toy:ground-plane``, ``moge:<checkpoint>`` or ``depth-anything-hf:<checkpoint>``."""
    parsed = parse_spec(spec, role="depth")
    if parsed.kind == "toy":
        if parsed.arg != "ground-plane":
            raise ToolBackendError(f"unknown toy depth backend {spec!r}; use toy:ground-plane")
        return GroundPlaneDepth()
    if parsed.kind == "moge":
        return MogeDepth(resolve_model_path(parsed.arg), device=device, cache_size=cache_size)
    return DepthAnythingDepth.from_pretrained(resolve_model_path(parsed.arg), device=device, cache_size=cache_size)


def make_vqa(spec: str, **client_options: Any) -> ClientVQA:
    """VQA through a vision-language chat client, e.g. ``openai:gpt-5-mini`` or ``toy:vqa``."""
    from valor_lib.clients import ChatClient

    return ClientVQA(ChatClient(spec, role="vqa", **client_options))
