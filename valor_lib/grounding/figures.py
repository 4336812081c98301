"""Pictures for the grounding notebooks: boxes after each verification stage, precision per stage, training
curves, mAP and accuracy with their spread over seeds, detections before and after fine-tuning, pooled comparisons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from valor_lib.viz import PALETTE, draw_boxes, image_grid

# Pseudo-label precision after each stage reported for the paper's pipeline (secondary summary, facts.md).
PAPER_PRECISION = {"coarse": 0.45, "crop": 0.50, "dedup": 0.75}
STAGE_TITLES = {"detections": "low-threshold detections", "coarse": "after coarse filter", "crop": "after crop check",
                "dedup": "after de-duplication"}


def stage_gallery(candidates: Mapping[str, Mapping[str, Any]], survivors: Mapping[str, Mapping[str, Sequence[str]]],
                  image_root: str | Path, image_ids: Sequence[str], scale: int = 2) -> Any:
    """One row per image, one column per stage: the boxes that stage kept, labelled."""
    stages = list(survivors)
    pictures, titles = [], []
    for image_id in image_ids:
        record = candidates[image_id]
        by_id = {b["box_id"]: b for b in record["boxes"]}
        with Image.open(Path(image_root) / record["file"]) as im:
            image = im.convert("RGB")
        for stage in stages:
            kept = [by_id[k] for k in survivors[stage].get(image_id, [])]
            boxes = [{"bbox": b["bbox"], "label": b["label"], "color": PALETTE[i % len(PALETTE)]}
                     for i, b in enumerate(kept)]
            pictures.append(draw_boxes(image, boxes, scale=scale))
            titles.append(f"{image_id}\n{STAGE_TITLES.get(stage, stage)}: {len(kept)} boxes")
    return image_grid(pictures, titles, ncols=len(stages))


def precision_chart(rows: Sequence[Mapping[str, Any]], paper: Mapping[str, float] = PAPER_PRECISION) -> Any:
    """Precision and recall per stage (bars) with the paper's precision (markers)."""
    import matplotlib.pyplot as plt

    stages = [r["stage"] for r in rows]
    x = np.arange(len(stages))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.bar(x - 0.2, [r["precision"] or 0 for r in rows], 0.4, label="precision (ours)", color="tab:green")
    ax.bar(x + 0.2, [r["recall"] or 0 for r in rows], 0.4, label="recall (ours)", color="tab:blue", alpha=0.6)
    marks = [(i, paper[s]) for i, s in enumerate(stages) if s in paper]
    if marks:
        ax.scatter([m[0] - 0.2 for m in marks], [m[1] for m in marks], marker="D", color="black", zorder=3,
                   label="precision (paper)")
    ax.set_xticks(x, [STAGE_TITLES.get(s, s) for s in stages], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def loss_curves(histories: Mapping[str, Sequence[Mapping[str, float]]], window: int = 5) -> Any:
    """Training loss per step (moving average) of each run."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    for name, history in histories.items():
        loss = np.array([h["loss"] for h in history], dtype=float)
        if len(loss) == 0:
            continue
        k = min(window, len(loss))
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(k, len(loss) + 1), smooth, label=name)
    ax.set(xlabel="step", ylabel="loss", title="fine-tuning loss (moving average)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def spread_bars(table: Mapping[str, Mapping[str, Sequence[float]]], title: str, ylabel: str) -> Any:
    """Grouped bars of mean +- std over seeds: ``table[row][metric] = [value per seed]``."""
    import matplotlib.pyplot as plt

    rows = list(table)
    metrics = list(dict.fromkeys(m for r in rows for m in table[r]))
    x = np.arange(len(metrics))
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(metrics) + 2), 3.6))
    for i, row in enumerate(rows):
        values = [np.asarray(table[row].get(m, []), dtype=float) for m in metrics]
        means = [v.mean() if len(v) else np.nan for v in values]
        stds = [v.std() if len(v) > 1 else 0.0 for v in values]
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=row)
    ax.set_xticks(x, metrics)
    ax.set(title=title, ylabel=ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def before_after(images: Sequence[Image.Image], names: Sequence[str],
                 detections: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]]) -> Any:
    """One row per image, one column per detector: its detections at the answering thresholds."""
    pictures, titles = [], []
    for i, (image, name) in enumerate(zip(images, names, strict=True)):
        for column, dets in detections.items():
            boxes = [{"bbox": d["bbox"], "label": d["label"], "score": d["score"], "color": PALETTE[k % len(PALETTE)]}
                     for k, d in enumerate(dets[i])]
            pictures.append(draw_boxes(image, boxes))
            titles.append(f"{name}\n{column}: {len(boxes)} boxes")
    return image_grid(pictures, titles, ncols=len(detections))


def threshold_curves(rows: Sequence[Mapping[str, Any]], benchmarks: Sequence[str]) -> Any:
    """Accuracy against gd_detect's answering thresholds (:func:`~valor_lib.grounding.experiment.sweep_rows`):
    one panel per benchmark and one for their mean, a line per detector."""
    import matplotlib.pyplot as plt

    panels = [*benchmarks, "mean"]
    thresholds = list(dict.fromkeys(r["thresholds"] for r in rows))
    detectors = list(dict.fromkeys(r["detector"] for r in rows))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for name in detectors:
            by_threshold = {r["thresholds"]: r[panel] for r in rows if r["detector"] == name}
            ax.plot(range(len(thresholds)), [by_threshold.get(t, np.nan) for t in thresholds], marker="o", label=name)
        ax.set_xticks(range(len(thresholds)), thresholds, rotation=45, fontsize=8)
        ax.set(title=panel, xlabel="box / text threshold")
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def pooled_intervals(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A forest plot of :func:`~valor_lib.grounding.paired.pooled_rows`: per (thresholds, comparison) the pooled
    change with its 95% interval, and each draw's own change as a dot."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.45 * max(len(rows), 1) + 1.2), layout="constrained")
    for y, row in enumerate(rows):
        color = "tab:gray" if row["verdict"] == "undecided" else ("tab:green" if row["ci95 low"] > 0 else "tab:red")
        ax.plot([row["ci95 low"], row["ci95 high"]], [y, y], color=color, linewidth=2)
        ax.plot(row["change (points)"], y, "D", color=color)
        ax.scatter(row["by draw"], [y] * len(row["by draw"]), s=14, color="black", alpha=0.6, zorder=3,
                   label="one draw" if y == 0 else None)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [f"{r['comparison']} ({r['thresholds']})" for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("change in mean accuracy (points), 95% interval over draws and items (items alone for one draw)")
    if rows:
        ax.legend(fontsize=8, loc="lower right")
    return fig
