"""Retries, timeouts, final failures, credentials and secrecy, through the real SDKs."""

from __future__ import annotations

import json
import random
import time

import pytest

from valor_lib.clients import (
    ChatClient,
    MissingCredentialsError,
    RequestFailedError,
    RetryPolicy,
    accounting_summary,
)
from valor_lib.clients.backends.base import parse_retry_after, redact
from valor_lib.testing import FaultPlan

EXPECTED_TYPE = {"429": "rate_limit", "500": "server", "503": "server", "drop": "connection",
                 "malformed": "malformed", "empty": "empty"}


@pytest.mark.parametrize("fault", list(EXPECTED_TYPE))
def test_transient_faults_are_retried_and_counted(fault, backend, make_server, make_client):
    server = make_server(faults=FaultPlan(script=(fault,)))
    client = make_client(backend, server, cache="off")
    result = client.complete("hello")
    assert result.ok and result.text == "echo: hello"
    assert result.attempts == 2 and len(server.received) == 2
    usage = client.usage.as_dict()
    assert usage["retries"] == 1 and usage["api_calls"] == 2 and usage["failures"] == 0
    assert usage["errors_by_type"] == {EXPECTED_TYPE[fault]: 1}


def test_retry_after_is_honoured(backend, make_server, make_client):
    server = make_server(faults=FaultPlan(script=("429",), retry_after_s=0.4))
    client = make_client(backend, server, cache="off")
    started = time.monotonic()
    assert client.complete("x").ok
    assert time.monotonic() - started >= 0.4


def test_slow_answers_time_out_and_are_retried(backend, make_server, make_client):
    server = make_server(faults=FaultPlan(script=("slow",), slow_s=1.5))
    client = make_client(backend, server, cache="off", timeout_s=0.3)
    started = time.monotonic()
    result = client.complete("x")
    assert result.ok and result.attempts == 2
    assert client.usage.as_dict()["errors_by_type"] == {"timeout": 1}
    assert time.monotonic() - started < 1.4


def test_a_call_that_keeps_failing_is_recorded_and_never_cached(backend, make_server, make_client):
    server = make_server(faults=FaultPlan(script=("500",) * 5))
    client = make_client(backend, server)
    result = client.complete("x")
    assert not result.ok and result.output is None
    assert result.error_type == "server" and result.attempts == 5 and "after 5 attempts" in result.error
    with pytest.raises(RequestFailedError, match="server"):
        _ = result.text
    assert client.usage.as_dict()["failures"] == 1
    assert len(client.cache) == 0
    again = client.complete("x")  # not served from the cache: the server is asked again
    assert again.ok and not again.cached and len(server.received) == 6


@pytest.mark.parametrize("fault", ["blocked"])
def test_safety_blocks_are_final(fault, backend, make_server, make_client):
    server = make_server(faults=FaultPlan(script=(fault,)))
    result = make_client(backend, server).complete("x")
    assert not result.ok and result.error_type == "blocked" and result.attempts == 1
    assert len(server.received) == 1


def test_wrong_key_is_an_auth_failure_without_retries(backend, make_server, make_client):
    server = make_server(api_key="the-right-key-123")
    result = make_client(backend, server).complete("x")
    assert not result.ok and result.error_type == "auth" and result.attempts == 1


def test_missing_credentials_fail_at_construction_naming_the_variables(monkeypatch, tmp_path):
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI",
                 "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "OPENAI_COMPATIBLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(MissingCredentialsError, match="OPENAI_API_KEY"):
        ChatClient("openai:gpt-5-mini", cache="off")
    with pytest.raises(MissingCredentialsError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        ChatClient("gemini:gemini-2.5-flash", cache="off")
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    with pytest.raises(MissingCredentialsError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        ChatClient("gemini:gemini-2.5-flash", cache="off")
    creds = tmp_path / "sa.json"
    creds.write_text("{}")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(creds))
    with pytest.raises(MissingCredentialsError, match="GOOGLE_CLOUD_PROJECT"):
        ChatClient("gemini:gemini-2.5-flash", cache="off")
    # a local OpenAI-compatible server needs no key
    ChatClient("openai-compatible:http://127.0.0.1:9/v1/m", cache="off").close()


def test_keys_never_reach_errors_cache_or_accounting(make_server, make_client, fake_keys, tmp_path):
    keys = list(fake_keys.values())

    def leaky_brain(request):
        if "leak" in request.messages[-1].text:
            raise RuntimeError(f"upstream rejected {keys[0]} and {keys[1]}")
        return "fine"

    server = make_server(leaky_brain)
    for name in ("openai-responses", "gemini"):
        client = make_client(name, server, retry=RetryPolicy(max_attempts=2, initial_delay_s=0.01))
        assert client.complete("ok").text == "fine"
        failed = client.complete("please leak")
        assert not failed.ok and "***" in failed.error
        assert not any(k in failed.error or k in repr(failed) for k in keys)
    dumped = json.dumps(accounting_summary())
    stored = b"".join(f.read_bytes() for f in tmp_path.glob("cache.sqlite*"))  # database, WAL, index
    assert not any(k in dumped or k.encode() in stored for k in keys)
    assert b"fine" in stored  # the answers are there, the keys are not


def test_backoff_grows_and_respects_retry_after():
    policy = RetryPolicy(initial_delay_s=1.0, multiplier=2.0, max_delay_s=5.0, jitter=0.5)
    rng = random.Random(0)
    delays = [policy.delay_s(n, None, rng) for n in range(1, 6)]
    for n, d in enumerate(delays, start=1):
        cap = min(5.0, 2.0 ** (n - 1))
        assert cap * 0.5 <= d <= cap
    assert policy.delay_s(1, 7.5, rng) == 7.5
    assert RetryPolicy(max_retry_after_s=3).delay_s(1, 100.0, rng) == 3.0


def test_retry_after_headers_and_redaction():
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({}) is None
    assert redact("key sk-abcdef123 used", ["sk-abcdef123"]) == "key *** used"
