"""Pictures of the toy world: ground-truth overlays and distribution plots."""

from __future__ import annotations

from collections import Counter
from typing import Any

from valor_lib.toyworld.scene import Scene

GT_COLOR = (0, 220, 0)
DISTRACTOR_COLOR = (255, 60, 60)


def gt_boxes(scene: Scene, distractors: bool = True) -> list[dict[str, Any]]:
    """Boxes for :func:`valor_lib.viz.draw_boxes`: objects in green, distractors in red."""
    boxes = [{"bbox": o.bbox, "label": f"{o.color} {o.category} {o.depth:.1f}m", "color": GT_COLOR}
             for o in scene.objects]
    if distractors:
        boxes += [{"bbox": d.bbox, "label": d.kind + (f" ({d.mimics})" if d.mimics else ""),
                   "color": DISTRACTOR_COLOR} for d in scene.distractors]
    return boxes


def distribution_figure(scenes: list[Scene], manifest: dict[str, Any]) -> Any:
    """Objects per scene, distractor kinds, and answer types per benchmark split."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    counts = Counter(len(s.objects) for s in scenes)
    axes[0].bar(list(counts), list(counts.values()), color="tab:green")
    axes[0].set(title="objects per scene", xlabel="objects", ylabel="scenes")
    kinds = Counter(d.kind for s in scenes for d in s.distractors)
    axes[1].bar(list(kinds), list(kinds.values()), color="tab:red")
    axes[1].set(title="hard-negative distractors", ylabel="count")
    splits = {k: v["answer_types"] for k, v in manifest["splits"].items() if "answer_types" in v}
    types = sorted({t for v in splits.values() for t in v})
    bottom = [0] * len(splits)
    for t in types:
        vals = [v.get(t, 0) for v in splits.values()]
        axes[2].barh(list(splits), vals, left=bottom, label=t)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    axes[2].set(title="answer types per split", xlabel="queries")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig
