"""``toy:<role>``: an offline brain from the toy registry, answering in the real model's format."""

from __future__ import annotations

from typing import Any

from valor_lib.clients.backends.base import Backend, Reply
from valor_lib.clients.errors import CallError
from valor_lib.clients.toy import make_toy_brain
from valor_lib.clients.types import ChatRequest


class ToyBackend(Backend):
    """Runs the role's brain on each request, one batch at a time in the client's worker thread."""

    kind = "toy"
    batched = True
    default_concurrency = 64
    default_cache = "off"
    batch_size = 32

    def __init__(self, role: str, *, brain_options: dict[str, Any] | None = None):
        super().__init__(role)
        self.brain = make_toy_brain(role, **(brain_options or {}))
        self.brain_name = str(getattr(self.brain, "name", role))

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "brain": self.brain_name}

    def generate_batch(self, requests: list[ChatRequest]) -> list[Reply | CallError]:
        replies: list[Reply | CallError] = []
        for request in requests:
            try:
                text = self.brain(request)
            except CallError as err:
                replies.append(err)
                continue
            if not isinstance(text, str):
                raise TypeError(f"toy brain {self.brain_name!r} returned {type(text).__name__}, not str")
            replies.append(Reply(text, finish_reason="stop"))
        return replies
