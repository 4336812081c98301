"""Token, call, retry and cost accounting per backend, and the summary a stage stores."""

from __future__ import annotations

import json

import pytest

from valor_lib.clients import accounting_summary, price_for
from valor_lib.testing import FaultPlan


def test_prices_per_million_tokens():
    assert price_for("openai", "gpt-5-mini") == (0.25, 2.00)
    assert price_for("gemini", "gemini-2.5-flash") == (0.30, 2.50)
    assert price_for("openai", "gpt-5-mini-2025-08-07") == (0.25, 2.00)
    assert price_for("gemini", "models/gemini-2.5-flash-001") == (0.30, 2.50)
    assert price_for("gemini", "gemini-2.5-flash-lite") == (0.10, 0.40)
    assert price_for("openai", "my-finetune") is None
    assert price_for("openai-compatible", "gpt-5-mini") is None  # unknown host: no price
    assert price_for("hf", "gpt-5-mini") is None


def test_usage_counts_calls_retries_tokens_and_cost(make_server, make_client):
    server = make_server(faults=FaultPlan(script=(None, "429", None)))
    client = make_client("openai-responses", server)
    client.map(["one two three", "four five"], progress=False)  # the 2nd arrival is rate limited once
    client.complete("one two three")  # from the cache
    failed = make_client("openai-responses", make_server(faults=FaultPlan(script=("500",) * 9)),
                         max_concurrency=1).complete("doomed")
    assert not failed.ok
    u = client.usage.as_dict()
    assert (u["requests"], u["api_calls"], u["cache_hits"], u["retries"], u["failures"]) == (4, 8, 1, 5, 1)
    assert u["errors_by_type"] == {"rate_limit": 1, "server": 5}
    assert (u["input_tokens"], u["output_tokens"]) == (3 + 2, 4 + 3)  # echo adds one word
    assert u["cost_usd"] == pytest.approx((5 * 0.25 + 7 * 2.00) / 1e6)
    assert u["latency_s"]["p50"] is not None


def test_summary_groups_backends_and_totals_cost(make_server, make_client):
    server = make_server()
    make_client("openai-chat", server).complete("a b")
    make_client("gemini", server).complete("c d e")
    make_client("openai-compatible", server).complete("f")
    summary = accounting_summary()
    json.dumps(summary)  # ready for metrics.json
    assert set(summary["by_backend"]) == {"openai:gpt-5-mini", "gemini:gemini-2.5-flash",
                                          "openai-compatible:Qwen/Qwen3-8B"}
    total = summary["total"]
    assert total["api_calls"] == 3 and total["unpriced"] == ["openai-compatible:Qwen/Qwen3-8B"]
    expected = (2 * 0.25 + 3 * 2.00) / 1e6 + (3 * 0.30 + 4 * 2.50) / 1e6
    assert total["cost_usd"] == pytest.approx(expected)
    accounting_summary(reset=True)
    assert accounting_summary()["total"]["api_calls"] == 0
