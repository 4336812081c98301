"""Fixtures for the client tests: fake credentials, fast retries, clients pointed at protocol servers
(``make_server`` comes from tests/conftest.py)."""

from __future__ import annotations

import pytest

from valor_lib.clients import ChatClient, RetryPolicy, accounting_summary
from valor_lib.testing import ModelServer

FAKE_OPENAI_KEY = "sk-FAKEKEY-openai-7f3a9c1e5b"
FAKE_GEMINI_KEY = "AIzaFAKEKEY-gemini-2d8e4b6a0c"
FAST_RETRY = RetryPolicy(max_attempts=5, initial_delay_s=0.01, max_delay_s=0.05)

# (spec, protocol the server sees, client options) for every network backend, by name.
NETWORK_BACKENDS = {
    "openai-responses": ("openai:gpt-5-mini", "responses", {"api": "responses"}),
    "openai-chat": ("openai:gpt-5-mini", "chat", {"api": "chat"}),
    "openai-compatible": ("openai-compatible:{openai_base_url}/Qwen/Qwen3-8B", "chat", {}),
    "gemini": ("gemini:gemini-2.5-flash", "gemini", {}),
}


def pytest_configure(config):
    # google-genai subclasses aiohttp.ClientSession, which aiohttp flags; not ours to fix
    config.addinivalue_line("filterwarnings",
                            "ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


@pytest.fixture(autouse=True)
def fresh_accounting():
    """Each test starts with zeroed client accounting."""
    accounting_summary(reset=True)


@pytest.fixture
def fake_keys(monkeypatch):
    """Recognisable fake credentials in the environment (and no real ones)."""
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_COMPATIBLE_API_KEY",
                 "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_GEMINI_KEY)
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", FAKE_OPENAI_KEY)
    return {"openai": FAKE_OPENAI_KEY, "gemini": FAKE_GEMINI_KEY}


@pytest.fixture(params=list(NETWORK_BACKENDS))
def backend(request) -> str:
    """Each network backend in turn (a key of NETWORK_BACKENDS)."""
    return request.param


@pytest.fixture
def make_client(tmp_path, fake_keys):
    """``make_client(name, server, **options)``: a ChatClient for NETWORK_BACKENDS[name] pointed at
    ``server``, caching in the test's tmp dir, with fast retries; closed after the test."""
    clients = []

    def make(name: str, server: ModelServer, **options) -> ChatClient:
        spec, _, defaults = NETWORK_BACKENDS[name]
        spec = spec.format(openai_base_url=server.openai_base_url)
        kwargs = {**defaults, "cache_path": tmp_path / "cache.sqlite", "retry": FAST_RETRY, **options}
        if name in ("openai-responses", "openai-chat"):
            kwargs.setdefault("base_url", server.openai_base_url)
        elif name == "gemini":
            kwargs.setdefault("base_url", server.gemini_base_url)
        client = ChatClient(spec, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
