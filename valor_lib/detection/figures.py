"""Pictures of detector training: the loss curve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if len(v) < window or window < 2:
        return v
    return np.convolve(v, np.ones(window) / window, mode="valid")


def loss_figure(history: Sequence[dict[str, float]], window: int = 20) -> Any:
    """Total loss and the final head's class / box / GIoU losses per step (moving average of ``window``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
    steps = np.array([h["step"] for h in history])
    total = _smooth([h["loss"] for h in history], window)
    axes[0].plot(steps[len(steps) - len(total):], total)
    axes[0].set(title="total loss (all heads)", xlabel="step", yscale="log")
    for key, label in (("loss_ce", "class (focal)"), ("loss_bbox", "box L1"), ("loss_giou", "1 - GIoU")):
        if history and key in history[0]:
            values = _smooth([h[key] for h in history], window)
            axes[1].plot(steps[len(steps) - len(values):], values, label=label)
    axes[1].set(title="final decoder head", xlabel="step")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
