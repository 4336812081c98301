"""Pictures and tables of query generation: example images with their candidates, and the mix of query kinds."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from valor_lib.paths import repo_root
from valor_lib.querygen.rl_set import QUERY_KINDS, query_kind


def generation_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How the images went: examined, suitable (with a chosen query), judged unsuitable, failed replies."""
    return {
        "images examined": len(records),
        "suitable (query chosen)": sum(bool(r.get("question")) for r in records),
        "judged unsuitable": sum(r.get("suitable") is False for r in records),
        "failed (invalid replies or calls)": sum(r.get("suitable") is None for r in records),
        "requests per image": round(sum(r.get("attempts", 0) for r in records) / max(len(records), 1), 2),
    }


def _image(path: str) -> Image.Image:
    p = Path(path)
    with Image.open(p if p.is_absolute() else repo_root() / p) as im:
        return im.convert("RGB")


def examples_figure(records: Sequence[dict[str, Any]], count: int) -> Any:
    """The first ``count`` images that got a query, each with its candidates (the chosen one starred)."""
    import matplotlib.pyplot as plt

    shown = [r for r in records if r.get("question")][:count]
    if not shown:
        raise ValueError("no image got a query")
    fig, axes = plt.subplots(len(shown), 2, figsize=(13, 2.6 * len(shown)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 2.4]})
    for (image_ax, text_ax), record in zip(axes, shown, strict=True):
        image_ax.imshow(_image(record["image"]))
        image_ax.set_title(record["id"], fontsize=9)
        lines = []
        for i, query in enumerate(record["candidates"]):
            mark = "★" if i == record["chosen"] else "  "
            lines += textwrap.wrap(f"{mark} {i + 1}. {query}", 95, subsequent_indent="       ")
        text_ax.text(0, 1, "\n".join(lines), va="top", fontsize=9, family="monospace")
        for ax in (image_ax, text_ax):
            ax.axis("off")
    fig.tight_layout()
    return fig


def mix_table(rl_records: Sequence[dict[str, Any]]) -> dict[str, Counter]:
    """Query kinds per source."""
    table: dict[str, Counter] = {}
    for record in rl_records:
        table.setdefault(record["source"], Counter())[query_kind(record["question"])] += 1
    return table


def mix_figure(rl_records: Sequence[dict[str, Any]]) -> Any:
    """Stacked bars: how many queries of each kind each source contributes to the RL set."""
    import matplotlib.pyplot as plt

    table = mix_table(rl_records)
    sources = sorted(table)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    bottom = [0] * len(sources)
    for kind in QUERY_KINDS:
        counts = [table[s][kind] for s in sources]
        ax.bar(sources, counts, bottom=bottom, label=kind)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.set_ylabel("queries")
    ax.set_title("RL query set: kinds of query by source")
    ax.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig
