"""The reward as a verl custom reward function (verl 0.9; this module imports without verl).

verl config (``custom_reward_function``; ``reward_kwargs`` reach the function as keyword arguments)::

    custom_reward_function:
      path: valor_lib/rewards/verl_reward.py
      name: compute_score            # async; compute_score_sync for reward managers that cannot await
      reward_kwargs: {verifier: "gemini:gemini-2.5-flash", max_concurrency: 64}

Each row's ``extra_info`` carries the query under ``"question"`` (``query_key`` to change it); training is
label-free, so ``ground_truth`` is ignored. verl's reward loop runs ``compute_score`` once per sample,
concurrently; one scorer per process (per configuration) is shared by all calls, so the verifier client's
concurrency limit bounds the calls in flight across the batch and identical requests in flight share a call.
The verifier defaults to ``$VALOR_LLM_VERIFIER`` or else params.yaml's ``common.backends.llm_verifier``.

Returns ``{"score": total, <head>: 0/1 ..., "failed_heads": n}``; verl logs the extra keys. verl has no way
to leave a sample out of an update, so failed heads are scored 0 (failure policy ``zero``) and counted in
``failed_heads``; asking for ``drop`` is an error.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from valor_lib.rewards.heads import HEADS
from valor_lib.rewards.scorer import shared_scorer

VERIFIER_ENV = "VALOR_LLM_VERIFIER"


def default_verifier() -> str:
    """``$VALOR_LLM_VERIFIER`` or the active profile's ``common.backends.llm_verifier``."""
    if env := os.environ.get(VERIFIER_ENV):
        return env
    from valor_lib.params import apply_profile, load_raw

    return apply_profile(load_raw())["common"]["backends"]["llm_verifier"]


def _query(extra_info: dict[str, Any] | None, query_key: str) -> str:
    if not isinstance(extra_info, dict) or not isinstance(extra_info.get(query_key), str):
        raise ValueError(f"extra_info must carry the query as a string under {query_key!r}, got {extra_info!r}")
    return extra_info[query_key]


async def compute_score(data_source: str, solution_str: str, ground_truth: Any = None,
                        extra_info: dict[str, Any] | None = None, *, verifier: str | None = None,
                        query_key: str = "question", failure_policy: str = "zero",
                        reward_router_address: Any = None, reward_model_tokenizer: Any = None,
                        **scorer_options: Any) -> dict[str, float]:
    """Score one rollout (verl's signature). ``scorer_options`` go to ``RewardScorer`` (e.g.
    ``max_concurrency``, ``verdict_attempts``, ``syntax_timeout_s``)."""
    if failure_policy != "zero":
        raise ValueError("verl cannot drop a sample from an update; use failure_policy='zero' (failed heads "
                         "score 0 and are counted in 'failed_heads')")
    scorer = shared_scorer(verifier or default_verifier(), failure_policy="zero", **scorer_options)
    result = await scorer.ascore(_query(extra_info, query_key), solution_str)
    return {"score": float(result.total), **{h: float(result.heads[h] or 0.0) for h in HEADS},
            "failed_heads": float(len(result.failed_heads))}


def compute_score_sync(data_source: str, solution_str: str, ground_truth: Any = None,
                       extra_info: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, float]:
    """:func:`compute_score` for reward managers that call the function synchronously."""
    return asyncio.run(compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs))
