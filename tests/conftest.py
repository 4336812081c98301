"""Shared test setup: offline hubs, a repo root, small temporary toy worlds."""

from __future__ import annotations

import os

import pytest

# Nothing in the tests may reach a model or dataset hub.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_name] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def make_server():
    """``make_server(brain=echo_brain, **options)``: a started ``valor_lib.testing.ModelServer`` on
    127.0.0.1 (OpenAI and Gemini protocols, optional faults and latency), stopped after the test."""
    from valor_lib.testing import ModelServer, echo_brain

    servers = []

    def make(brain=echo_brain, **options):
        servers.append(ModelServer(brain, **options).start())
        return servers[-1]

    yield make
    for server in servers:
        server.stop()
