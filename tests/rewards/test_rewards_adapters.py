"""The TRL reward function and the verl custom reward module."""

import asyncio
import importlib
import sys

import pytest
from reward_cases import BAD_FORMAT, GOOD, PIXEL_SIZE, QUERY, TOOL_API

from valor_lib.rewards import RewardScorer, trl_reward_function
from valor_lib.rewards.trl_adapter import completion_text


@pytest.fixture
def scorer():
    scorer = RewardScorer("toy:verifier", tool_api=TOOL_API, brain_options={"error_rate": 0.0})
    yield scorer
    scorer.close()


def test_trl_reward_function_scores_a_batch_and_logs_heads(scorer):
    reward = trl_reward_function(scorer)
    metrics, extra = {}, {}
    completions = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": PIXEL_SIZE}],
                   [{"role": "assistant", "content": BAD_FORMAT}]]
    values = reward(prompts=[[{"role": "user", "content": QUERY}]] * 3, completions=completions,
                    question=[QUERY] * 3, log_metric=lambda k, v: metrics.__setitem__(k, v),
                    log_extra=lambda k, v: extra.__setitem__(k, v), trainer_state=None)
    assert values == [pytest.approx(1.0), pytest.approx(0.5), 0.0]
    assert reward.__name__ == "valor_reward" and {f"valor/{k}": v for k, v in reward.history[-1].items()} == metrics
    assert metrics["valor/format"] == pytest.approx(2 / 3) and metrics["valor/attribute"] == pytest.approx(0.5)
    assert extra["valor/spatial"] == [1.0, 1.0, 0.0]


def test_trl_reward_function_returns_none_for_dropped_samples():
    reward = trl_reward_function("toy:verifier", tool_api=TOOL_API,
                                 brain_options={"error_rate": 0.0, "garble_rate": 1.0}, verdict_attempts=1)
    assert reward(prompts=["p"], completions=[GOOD], question=[QUERY]) == [None]
    reward.scorer.close()


def test_trl_reward_function_needs_the_query_column(scorer):
    with pytest.raises(KeyError, match="question"):
        trl_reward_function(scorer)(prompts=["p"], completions=[GOOD], answer=["x"])
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}]) == "hi"
    with pytest.raises(TypeError):
        completion_text(42)


def test_verl_module_imports_without_verl_and_scores():
    assert "verl" not in sys.modules
    verl_reward = importlib.import_module("valor_lib.rewards.verl_reward")
    assert asyncio.iscoroutinefunction(verl_reward.compute_score)
    options = {"verifier": "toy:verifier", "tool_api": TOOL_API, "brain_options": {"error_rate": 0.0}}
    out = asyncio.run(verl_reward.compute_score("valor", PIXEL_SIZE, None, {"question": QUERY},
                                                reward_router_address=None, **options))
    assert out["score"] == pytest.approx(0.5) and out["attribute"] == 0.0 and out["failed_heads"] == 0.0
    assert verl_reward.compute_score_sync("valor", GOOD, None, {"question": QUERY}, **options)["score"] == 1.0
    with pytest.raises(ValueError, match="extra_info"):
        asyncio.run(verl_reward.compute_score("valor", GOOD, None, {}, **options))
    with pytest.raises(ValueError, match="cannot drop"):
        asyncio.run(verl_reward.compute_score("valor", GOOD, None, {"question": QUERY}, failure_policy="drop"))


def test_verl_default_verifier_comes_from_params(monkeypatch):
    from valor_lib.rewards import verl_reward

    monkeypatch.delenv(verl_reward.VERIFIER_ENV, raising=False)
    assert verl_reward.default_verifier() == "toy:verifier"
    monkeypatch.setenv(verl_reward.VERIFIER_ENV, "gemini:gemini-2.5-flash")
    assert verl_reward.default_verifier() == "gemini:gemini-2.5-flash"
