"""Pictures of the tools at work: depth estimates against ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def depth_scatter(estimates: Sequence[float], truths: Sequence[float], title: str = "depth tool") -> Any:
    """Estimated vs true depth (metres) with the identity line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.scatter(truths, estimates, s=10, alpha=0.7)
    top = max([*truths, *estimates, 1.0]) * 1.05
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="ground-truth depth (m)", ylabel="depth(image, bbox) (m)",
           title=title)
    fig.tight_layout()
    return fig
