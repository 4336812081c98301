"""The reward as a TRL reward function: ``(prompts, completions, **kwargs) -> list[float | None]``.

TRL's ``GRPOTrainer`` passes every dataset column to reward functions as a keyword argument (one value per
completion), so the query is read from a column (``question`` by default) rather than from the chat prompt.
A whole generation batch is scored at once with :class:`~valor_lib.rewards.scorer.RewardScorer`.

Dropped samples (failure policy ``drop``): TRL 1.16 accepts ``None`` from a reward function; when every
reward function returns None for a completion, the trainer treats it as unscorable: it is left out of its
group's mean and standard deviation and its advantage is set to 0, so it does not move the policy. With our
single reward function, returning None drops the sample from the update.

Logged per step through TRL's ``log_metric`` hook: the mean of each head over the completions where it was
evaluated (``valor/<head>``), the share of dropped samples and failed heads; the per-completion heads go
to the completions table through ``log_extra``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from valor_lib.clients import ChatClient
from valor_lib.rewards.heads import HEADS, head_means
from valor_lib.rewards.scorer import RewardScorer


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or (conversational) a list of messages whose last holds it."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, str):
            return content
        if isinstance(content, Sequence):  # content parts: [{"type": "text", "text": ...}, ...]
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise TypeError(f"cannot read the text of a completion of type {type(completion).__name__}")


def trl_reward_function(verifier: ChatClient | RewardScorer | str, *, query_column: str = "question",
                        progress: bool = False, **scorer_options: Any) -> Callable[..., list[float | None]]:
    """A TRL reward function scoring with ``verifier`` (spec string, client or ready scorer).

    The function has attributes ``scorer`` and ``history`` (the per-head means of every call, for curves).
    """
    scorer = verifier if isinstance(verifier, RewardScorer) else RewardScorer(verifier, **scorer_options)
    if isinstance(verifier, RewardScorer) and scorer_options:
        raise ValueError("scorer options cannot be combined with a ready RewardScorer")
    history: list[dict[str, float]] = []

    def valor_reward(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        if query_column not in kwargs:
            columns = sorted(k for k in kwargs if k not in ("trainer_state", "log_extra", "log_metric"))
            raise KeyError(f"the reward needs the dataset column {query_column!r} with each query; got {columns}")
        queries = [str(q) for q in kwargs[query_column]]
        results = scorer.score_batch(queries, [completion_text(c) for c in completions], progress=progress)
        means = head_means(results)
        history.append(means)
        if (log_metric := kwargs.get("log_metric")) is not None:
            for name, value in means.items():
                log_metric(f"valor/{name}", value)
        if (log_extra := kwargs.get("log_extra")) is not None:
            for head in HEADS:
                log_extra(f"valor/{head}", [r.heads[head] for r in results])
        return [r.total for r in results]

    valor_reward.__name__ = "valor_reward"
    valor_reward.scorer = scorer
    valor_reward.history = history
    return valor_reward
