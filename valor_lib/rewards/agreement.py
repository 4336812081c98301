"""How well verifiers agree with annotated rewards (paper §3.1: Gemini-2.5-Flash 87 %, Qwen3-8B 15 %,
Llama-3.2-11B 7 % on 100 hand-labelled outputs).

Per verifier and head, a verdict is compared with the annotation: agreement, **under-rewarding** (the
verifier fails what the annotator passed), **over-rewarding** (the reverse) and failed verdicts (the
verifier gave no parsable answer; they count as disagreements). ``overall`` is agreement over all
(output, head) pairs; ``exact`` the share of outputs on which every head agrees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from valor_lib.rewards.heads import VERIFIER_HEADS, RewardResult


def verdict_frame(output_ids: Sequence[str], results: Sequence[RewardResult],
                  heads: Sequence[str] = VERIFIER_HEADS) -> pd.DataFrame:
    """One verifier's verdicts as a table: ``output_id`` and 0/1 per head (missing where the head failed)."""
    if len(output_ids) != len(results):
        raise ValueError(f"{len(output_ids)} output ids for {len(results)} results")
    rows = [{"output_id": oid, **{h: r.heads[h] for h in heads}} for oid, r in zip(output_ids, results, strict=True)]
    frame = pd.DataFrame(rows, columns=["output_id", *heads])
    for head in heads:
        frame[head] = frame[head].astype("Float64").astype("Int64")
    return frame


def _aligned(annotations: pd.DataFrame, verdicts: pd.DataFrame, heads: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    truth = annotations.set_index("output_id")[list(heads)]
    if truth.isna().any().any():
        raise ValueError("every annotated output needs a label for every compared head")
    judged = verdicts.set_index("output_id").reindex(truth.index)[list(heads)]
    return truth.astype(int), judged


def head_counts(annotations: pd.DataFrame, verdicts: pd.DataFrame,
                heads: Sequence[str] = VERIFIER_HEADS) -> pd.DataFrame:
    """Per head: agreement, under- and over-rewarding rates, failures, and the confusion counts."""
    truth, judged = _aligned(annotations, verdicts, heads)
    rows = {}
    for head in heads:
        t, v = truth[head], judged[head]
        failed = v.isna()
        agree = (~failed) & (v == t)
        rows[head] = {
            "agreement": float(agree.mean()),
            "under": float(((~failed) & (v == 0) & (t == 1)).mean()),
            "over": float(((~failed) & (v == 1) & (t == 0)).mean()),
            "failed": float(failed.mean()),
            "tp": int(((~failed) & (v == 1) & (t == 1)).sum()), "tn": int(((~failed) & (v == 0) & (t == 0)).sum()),
            "fp": int(((~failed) & (v == 1) & (t == 0)).sum()), "fn": int(((~failed) & (v == 0) & (t == 1)).sum()),
        }
    return pd.DataFrame(rows).T


def confusion(annotations: pd.DataFrame, verdicts: pd.DataFrame, head: str) -> pd.DataFrame:
    """2x2 counts of one head: rows the annotation, columns the verdict (plus a ``failed`` column)."""
    truth, judged = _aligned(annotations, verdicts, [head])
    t, v = truth[head], judged[head]
    table = pd.DataFrame(0, index=pd.Index(["annotated 1", "annotated 0"]),
                         columns=pd.Index(["verifier 1", "verifier 0", "failed"]))
    for label, value in (("annotated 1", 1), ("annotated 0", 0)):
        rows = t == value
        table.loc[label, "verifier 1"] = int((rows & (v == 1)).sum())
        table.loc[label, "verifier 0"] = int((rows & (v == 0)).sum())
        table.loc[label, "failed"] = int((rows & v.isna()).sum())
    return table


def agreement_table(annotations: pd.DataFrame, verdicts: Mapping[str, pd.DataFrame],
                    heads: Sequence[str] = VERIFIER_HEADS) -> pd.DataFrame:
    """One row per verifier: overall and exact agreement, per-head agreement, under/over-rewarding, failures."""
    rows = {}
    for name, frame in verdicts.items():
        truth, judged = _aligned(annotations, frame, heads)
        agree = (judged == truth).fillna(False).astype(bool)
        counts = head_counts(annotations, frame, heads)
        pairs = len(truth) * len(heads)
        rows[name] = {
            "outputs": len(truth), "overall": float(agree.to_numpy().mean()), "exact": float(agree.all(axis=1).mean()),
            **{f"agree {h}": float(counts.loc[h, "agreement"]) for h in heads},
            "under-rewarding": float((counts["fn"].sum()) / pairs),
            "over-rewarding": float((counts["fp"].sum()) / pairs),
            "failed": float(judged.isna().to_numpy().mean()),
        }
    return pd.DataFrame(rows).T


def agreement_figure(table: pd.DataFrame, heads: Sequence[str] = VERIFIER_HEADS, paper: Mapping[str, float] | None = None) -> Any:
    """Bars of overall and per-head agreement per verifier, and stacked disagreement (under / over /
    failed); ``paper`` adds the paper's agreement figures as reference lines."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    columns = ["overall", *(f"agree {h}" for h in heads)]
    table[columns].astype(float).plot.bar(ax=left, rot=0, width=0.8)
    left.set_ylim(0, 1.05)
    left.set_ylabel("agreement with annotations")
    left.legend(["overall", *heads], fontsize=8, ncol=len(heads) + 1, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    for name, value in (paper or {}).items():
        left.axhline(value, color="grey", lw=0.8, ls="--")
        left.text(-0.45, value, f"paper: {name} {value:.0%}", fontsize=7, va="bottom", ha="left", color="grey")
    table[["under-rewarding", "over-rewarding", "failed"]].astype(float).plot.bar(ax=right, stacked=True, rot=0,
                                                                                  color=["#d62728", "#1f77b4", "#7f7f7f"])
    right.set_ylabel("share of (output, head) pairs")
    right.set_title("disagreements")
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig
