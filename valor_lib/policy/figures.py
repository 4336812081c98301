"""Figures and tables of notebooks 04-05: training curves, accuracy bars, responses before and after."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from valor_lib.rewards.heads import HEADS

CURVES = (("reward", "total reward"), *((f"valor/{h}", h) for h in HEADS), ("kl", "KL to the base policy"),
          ("completions/mean_length", "response length (tokens)"))


def history_frame(history: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """TRL's log history as one row per optimizer step (summary rows left out)."""
    rows = [h for h in history if "step" in h and "reward" in h]
    return pd.DataFrame(rows).set_index("step") if rows else pd.DataFrame()


def training_curves(histories: Mapping[int, Sequence[Mapping[str, Any]]]) -> Any:
    """One panel per curve (total reward, each head, KL, response length), one line per seed."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 5, figsize=(17, 5.5), squeeze=False)
    for ax, (key, title) in zip(axes.flat, CURVES, strict=False):
        for seed, history in histories.items():
            frame = history_frame(history)
            if key in frame:
                ax.plot(frame.index, frame[key], label=f"seed {seed}", lw=1.2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(CURVES):]:
        ax.axis("off")
    if histories:
        axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_bars(table: pd.DataFrame) -> Any:
    """Grouped bars: accuracy per benchmark (columns) for each policy (rows)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 3.8))
    table.T.plot.bar(ax=ax, width=0.8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncol=min(len(table), 6))
    ax.tick_params(axis="x", rotation=0, labelsize=8)
    fig.tight_layout()
    return fig


def before_after(before: Mapping[str, Any], after: Mapping[str, Any], benchmark: str, count: int) -> pd.DataFrame:
    """The first ``count`` items of a benchmark where the two policies' predictions differ, side by side."""
    old = {r["id"]: r for r in before[benchmark].records}
    rows = []
    for record in after[benchmark].records:
        prior = old.get(record["id"])
        if prior is None or str(prior["prediction"]) == str(record["prediction"]):
            continue
        rows.append({"question": record["question"], "answer": record["answer"],
                     "before: plan": prior["plan"], "before: prediction": prior["prediction"],
                     "after: plan": record["plan"], "after: prediction": record["prediction"]})
        if len(rows) == count:
            break
    with pd.option_context("display.max_colwidth", None):
        return pd.DataFrame(rows)


def kind_bars(shares: pd.DataFrame) -> Any:
    """Stacked horizontal bars: the share of each response kind (:mod:`valor_lib.policy.diagnose`) per policy."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 0.5 * len(shares) + 1.6))
    shares.iloc[::-1].plot.barh(stacked=True, ax=ax, width=0.7, colormap="tab20")
    ax.set_xlabel("share of responses (%)")
    ax.set_xlim(0, 100)
    ax.legend(fontsize=8, ncol=min(len(shares.columns), 6), loc="upper center", bbox_to_anchor=(0.5, -0.35))
    fig.tight_layout()
    return fig
