"""Pictures of detector training and of its operating points: the loss curve, the call score of each threshold
pair."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if len(v) < window or window < 2:
        return v
    return np.convolve(v, np.ones(window) / window, mode="valid")


def loss_figure(history: Sequence[dict[str, float]], window: int = 20,
                validation: Sequence[dict[str, float]] = (), selected_epoch: int | None = None) -> Any:
    """Total loss and the final head's class / box / GIoU losses per step (moving average of ``window``); with
    ``validation`` (``{"epoch", "step", "score"}`` per check), a third panel of the held-out score per epoch,
    the kept epoch (``selected_epoch``) marked."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3 if validation else 2, figsize=(15 if validation else 11, 3.2))
    steps = np.array([h["step"] for h in history])
    total = _smooth([h["loss"] for h in history], window)
    axes[0].plot(steps[len(steps) - len(total):], total)
    axes[0].set(title="total loss (all heads)", xlabel="step", yscale="log")
    for key, label in (("loss_ce", "class (focal)"), ("loss_bbox", "box L1"), ("loss_giou", "1 - GIoU")):
        if history and key in history[0]:
            values = _smooth([h[key] for h in history], window)
            axes[1].plot(steps[len(steps) - len(values):], values, label=label)
    axes[1].set(title="final decoder head", xlabel="step")
    axes[1].legend(fontsize=7, ncol=2)
    if validation:
        epochs = [v["epoch"] for v in validation]
        axes[2].plot(epochs, [v["score"] for v in validation], marker="o")
        if selected_epoch is not None:
            best = next(v["score"] for v in validation if v["epoch"] == selected_epoch)
            axes[2].scatter([selected_epoch], [best], s=160, facecolors="none", edgecolors="red",
                            label=f"kept: epoch {selected_epoch}")
            axes[2].legend(fontsize=8)
        axes[2].set(title="held-out source mAP", xlabel="epoch")
    fig.tight_layout()
    return fig


def operating_point_figure(rows: Sequence[dict[str, Any]], chosen: Sequence[float],
                           configured: Sequence[float] | None = None) -> Any:
    """The call score (``evaluate.call_scores``) of each (box, text) threshold pair as a heat map, with the best
    pair circled and the configured one (``common.gd_thresholds``) crossed; and box precision / recall / F1 and
    the call scores against the box threshold."""
    import matplotlib.pyplot as plt

    boxes = sorted({r["box"] for r in rows})
    texts = sorted({r["text"] for r in rows})
    grid = np.full((len(texts), len(boxes)), np.nan)
    for r in rows:
        grid[texts.index(r["text"]), boxes.index(r["box"])] = r["call_score"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    image = axes[0].imshow(grid, origin="lower", cmap="viridis", aspect="auto")
    axes[0].set(xticks=range(len(boxes)), xticklabels=boxes, yticks=range(len(texts)), yticklabels=texts,
                xlabel="box threshold", ylabel="text threshold", title="call score on the held-out detection set")
    fig.colorbar(image, ax=axes[0])
    marks = [(chosen, {"marker": "o", "facecolors": "none", "edgecolors": "red"}, "best call score")]
    if configured is not None:
        marks.append((configured, {"marker": "x", "color": "red"}, "configured"))
    for (box, text), style, label in marks:
        if box in boxes and text in texts:
            axes[0].scatter(boxes.index(box), texts.index(text), s=140, label=label, **style)
    axes[0].legend(fontsize=8, loc="upper left")
    best_text = [r for r in rows if r["text"] == chosen[1]]
    for key in ("precision", "recall", "f1", "top_box_hit", "count_exact", "empty_when_absent"):
        axes[1].plot([r["box"] for r in best_text], [r[key] for r in best_text], marker=".", label=key)
    axes[1].set(xlabel="box threshold", title=f"text threshold {chosen[1]}", ylim=(0, 1))
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
