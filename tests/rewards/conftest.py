"""Fixtures for the reward tests: verifier clients (toy, or Gemini protocol against a local scripted server)."""

from __future__ import annotations

import pytest
from reward_cases import TOOL_API

from valor_lib.clients import ChatClient, RetryPolicy
from valor_lib.rewards import RewardScorer

FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay_s=0.01, max_delay_s=0.02)


@pytest.fixture
def toy_scorer():
    """A scorer over the rules-only toy verifier."""
    scorer = RewardScorer("toy:verifier", tool_api=TOOL_API, brain_options={"error_rate": 0.0})
    yield scorer
    scorer.close()


@pytest.fixture
def gemini_client(make_server, monkeypatch):
    """``gemini_client(brain, **server_options)``: a Gemini-protocol client against a local server running
    ``brain`` (no cache, fast retries); returns (client, server)."""
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaFAKEKEY-rewards-tests")
    clients = []

    def make(brain, **server_options):
        server = make_server(brain, **server_options)
        client = ChatClient("gemini:gemini-2.5-flash", role="llm_verifier", base_url=server.gemini_base_url,
                            cache="off", retry=FAST_RETRY)
        clients.append(client)
        return client, server

    yield make
    for client in clients:
        client.close()
