"""Test infrastructure importable by tests and benchmarks: local servers speaking the providers'
protocols with fault injection, and simple deterministic brains."""

from valor_lib.clients.types import ChatRequest
from valor_lib.testing.faults import FAULT_KINDS, TRANSIENT_FAULTS, FaultPlan
from valor_lib.testing.server import ModelServer, Received


def echo_brain(request: ChatRequest) -> str:
    """Repeats the last message's text and names its images by hash: a deterministic test brain."""
    last = request.messages[-1]
    images = "".join(f" <image {img.sha256[:8]}>" for img in last.images)
    return f"echo: {last.text}{images}"


echo_brain.name = "echo"

__all__ = ["FAULT_KINDS", "TRANSIENT_FAULTS", "FaultPlan", "ModelServer", "Received", "echo_brain"]
