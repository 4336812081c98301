"""The verifier reward model (contract): six binary heads, their weights, and adapters for TRL and verl.

    from valor_lib.rewards import WEIGHTS, compute_reward, RewardScorer
    res = compute_reward(query, response_text, verifier="toy:verifier")   # or a ChatClient
    res.total, res.heads          # heads: format, syntax, logic, attribute, spatial, adherence (None = failed)

    scorer = RewardScorer("gemini:gemini-2.5-flash", failure_policy="drop")
    results = scorer.score_batch(queries, responses)   # a whole GRPO batch, all verifier calls in flight

    reward_fn = trl_reward_function("toy:verifier", query_column="question")   # GRPOTrainer(reward_funcs=...)
    # verl: custom_reward_function.path=<valor_lib/rewards/verl_reward.py>, name=compute_score

Modules: :mod:`.heads` (weights, results, failure policy), :mod:`.prompts` (the four verifier prompts and the
verdict format), :mod:`.scorer` (batched scoring), :mod:`.trl_adapter`, :mod:`.verl_reward`,
:mod:`.toy_verifier` (``toy:verifier``), :mod:`.annotations` and :mod:`.agreement` (verifier error analysis).
"""

from valor_lib.rewards.heads import (
    FAILURE_POLICIES,
    HEADS,
    VERIFIER_HEADS,
    WEIGHTS,
    RewardResult,
    VerifierCall,
    combine,
    head_means,
)
from valor_lib.rewards.prompts import build_request, parse_verdict, render_prompt
from valor_lib.rewards.scorer import BatchStats, RewardScorer, compute_reward
from valor_lib.rewards.trl_adapter import trl_reward_function

__all__ = [
    "FAILURE_POLICIES",
    "HEADS",
    "VERIFIER_HEADS",
    "WEIGHTS",
    "BatchStats",
    "RewardResult",
    "RewardScorer",
    "VerifierCall",
    "build_request",
    "combine",
    "compute_reward",
    "head_means",
    "parse_verdict",
    "render_prompt",
    "trl_reward_function",
]
