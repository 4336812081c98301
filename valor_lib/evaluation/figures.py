"""Tables and figures of notebook 08: accuracy next to the paper's numbers, error types, and a gallery of
successes and failures showing the image, the boxes the program used, the plan and the code."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from valor_lib.evaluation.records import BENCHMARKS, EvalItem
from valor_lib.paths import data_dir, require

PAPER_NAMES = {"omni3d-bench": "Omni3D-Bench", "tallyqa": "TallyQA", "gqa": "GQA", "robospatial": "RoboSpatial",
               "vsr": "VSR", "blink": "BLINK", "countbenchqa": "CountBenchQA", "realworldqa": "RealWorldQA"}
PAPER_TABLES = ("table1_llms_with_tools.csv", "table8_tuned_gd.csv")
BOX_COLORS = ((0, 200, 0), (60, 140, 255), (255, 160, 0), (200, 0, 255))


def paper_values(methods: Sequence[str], tables: Sequence[str] = PAPER_TABLES) -> dict[str, dict[str, float]]:
    """``{method: {benchmark key: value}}`` from ``data/paper/`` (the first table naming a method wins)."""
    import pandas as pd

    found: dict[str, dict[str, float]] = {}
    keys = {name: key for key, name in PAPER_NAMES.items()}
    for table in tables:
        frame = pd.read_csv(require(data_dir("paper", table), "copy the paper's tables into data/paper/"))
        for method, rows in frame.groupby("method"):
            if method in methods and method not in found:
                found[method] = {keys[b]: float(v) for b, v in zip(rows["benchmark"], rows["value"], strict=True)}
    return found


def accuracy_table(summaries: Mapping[str, Mapping[str, Mapping[str, Any]]],
                   paper_methods: Mapping[str, str | None]) -> Any:
    """One row per (system, benchmark): n, strict and paper-mode accuracy, and the paper's number for the row
    the system reproduces."""
    import pandas as pd

    paper = paper_values([m for m in paper_methods.values() if m])
    rows = []
    for system, per_benchmark in summaries.items():
        method = paper_methods.get(system)
        for benchmark, summary in per_benchmark.items():
            rows.append({"system": system, "benchmark": benchmark, "n": summary["n"],
                         "strict": summary["accuracy_strict"], "paper_rules": summary["accuracy_paper"],
                         "paper_row": method, "paper_value": paper.get(method or "", {}).get(benchmark)})
    return pd.DataFrame(rows)


def throughput_table(summaries: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Any:
    """One row per system over all its benchmarks: items, items/s, tool calls per item, format-ok share, how many
    benchmarks came from the prediction cache, and what per-image caches save (depth maps: one per image instead
    of one per depth call; detections: the toolbox's cache hits)."""
    import pandas as pd

    rows = []
    for system, per_benchmark in summaries.items():
        runs = list(per_benchmark.values())
        n = sum(r["n"] for r in runs)
        wall = sum(r["wall_s"] for r in runs)
        depth = [r["depth_map_reuse"] for r in runs]
        calls, images = sum(d["depth_calls"] for d in depth), sum(d["images"] for d in depth)
        detector = [r.get("tool_caches", {}).get("detector") for r in runs]
        lookups = sum(d["lookups"] for d in detector if d)
        computed = sum(d["computed"] for d in detector if d)
        ok = [(r["format_ok"], r["n"]) for r in runs if r["format_ok"] is not None]
        rows.append({
            "system": system, "items": n, "items/s": round(n / wall, 2) if wall else None,
            "tool calls/item": round(sum(r["tool_calls_per_item"] * r["n"] for r in runs) / n, 2) if n else None,
            "format ok %": round(sum(f * k for f, k in ok) / sum(k for _, k in ok), 1) if ok else None,
            "benchmarks from cache": f"{sum(r['provenance']['reused'] for r in runs)}/{len(runs)}",
            "depth calls": calls, "depth maps saved %": round(100 * (1 - images / calls), 1) if calls else None,
            "detections from cache %": round(100 * (1 - computed / lookups), 1) if lookups else None,
        })
    return pd.DataFrame(rows).set_index("system")


def accuracy_bars(table: Any) -> Any:
    """Grouped bars per benchmark: each system's strict accuracy (solid) and the paper's row (hatched)."""
    import matplotlib.pyplot as plt
    import numpy as np

    benchmarks = [b for b in BENCHMARKS if b in set(table["benchmark"])]
    systems = list(dict.fromkeys(table["system"]))
    width = 0.8 / (2 * len(systems))
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(benchmarks)), 4))
    x = np.arange(len(benchmarks))
    for s, system in enumerate(systems):
        rows = table[table["system"] == system].set_index("benchmark")
        ours = [rows["strict"].get(b, np.nan) for b in benchmarks]
        paper = [rows["paper_value"].get(b, np.nan) for b in benchmarks]
        offset = (2 * s - len(systems)) * width + width / 2
        bars = ax.bar(x + offset, ours, width, label=f"{system} (toy, strict)")
        ax.bar(x + offset + width, paper, width, color=bars[0].get_facecolor(), alpha=0.35, hatch="//",
               label=f"paper: {rows['paper_row'].iloc[0]}" if rows["paper_row"].iloc[0] else None)
    ax.set_xticks(x, [PAPER_NAMES[b] for b in benchmarks], rotation=20)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def error_table(summaries: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Any:
    """Error-type counts per (system, benchmark)."""
    import pandas as pd

    rows = [{"system": system, "benchmark": benchmark, **summary["error_types"]}
            for system, per_benchmark in summaries.items() for benchmark, summary in per_benchmark.items()]
    return pd.DataFrame(rows).fillna(0).set_index(["system", "benchmark"]).astype(int)


def error_bars(errors: Any) -> Any:
    """Stacked bars of error types per system (all benchmarks together, as shares of items)."""
    import matplotlib.pyplot as plt

    per_system = errors.groupby(level="system").sum()
    shares = per_system.div(per_system.sum(axis=1), axis=0) * 100
    fig, ax = plt.subplots(figsize=(8, 3))
    shares.plot.barh(stacked=True, ax=ax, colormap="tab20")
    ax.set_xlabel("share of items (%)")
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


def _as_box(value: Any) -> list[float] | None:
    if isinstance(value, dict):
        value = value.get("bbox", value.get("box"))
    if isinstance(value, list | tuple) and len(value) >= 4 and all(isinstance(v, int | float) for v in value[:4]):
        return [float(v) for v in value[:4]]
    return None


def record_boxes(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Boxes a prediction used, for drawing: detector results from the tool-call log (labelled with the
    prompt), or a grounded VLM's own boxes."""
    boxes = []
    for n, call in enumerate(c for c in record.get("tool_calls") or () if c["name"] == "gd_detect"):
        prompt = call["args"].split(",", 1)[-1].strip().strip("'\"")
        for value in call.get("result") or ():
            if (box := _as_box(value)) is not None:
                label = value.get("label", prompt) if isinstance(value, dict) else prompt
                boxes.append({"bbox": box, "label": label, "color": BOX_COLORS[n % len(BOX_COLORS)]})
    for value in record.get("boxes") or ():
        if (box := _as_box(value)) is not None:
            boxes.append({"bbox": box, "label": value.get("label", "") if isinstance(value, dict) else "",
                          "color": BOX_COLORS[0]})
    return boxes


def pick_examples(records: Sequence[Mapping[str, Any]], n: int, success: bool) -> list[Mapping[str, Any]]:
    """Up to ``n`` records that scored 1 (``success``) or 0, spread over benchmarks, in a stable order."""
    wanted = [r for r in records if (r["score_strict"] == 1.0) == success and r.get("error_type") != "image"]
    by_benchmark: dict[str, list[Mapping[str, Any]]] = {}
    for record in wanted:
        by_benchmark.setdefault(record["benchmark"], []).append(record)
    picked: list[Mapping[str, Any]] = []
    while len(picked) < n and any(by_benchmark.values()):
        for group in by_benchmark.values():
            if group and len(picked) < n:
                picked.append(group.pop(0))
    return picked


def _caption(record: Mapping[str, Any], width: int = 60) -> str:
    lines = [f"[{record['benchmark']}] {record['question']}",
             f"answer: {record['answer']!r}   prediction: {record['prediction']!r}   "
             f"score: {record['score_strict']:.2f}" + (f"   error: {record['error_type']}" if record["error_type"] else "")]
    if record.get("plan"):
        lines.append("plan: " + record["plan"])
    wrapped = [w for line in lines for w in textwrap.wrap(line, width) or [""]]
    code = (record.get("code") or record.get("response") or "").splitlines()[:14]
    return "\n".join([*wrapped, "", *(c[:width] for c in code)])


def gallery(records: Sequence[Mapping[str, Any]], items: Mapping[str, EvalItem], title: str) -> Any:
    """Each record's image with the boxes its program used, and the question, answer, plan and code."""
    import matplotlib.pyplot as plt

    from valor_lib.viz import draw_boxes

    if not records:
        fig, ax = plt.subplots(figsize=(6, 1))
        ax.axis("off")
        ax.set_title(f"{title}: none")
        return fig
    fig, axes = plt.subplots(len(records), 2, figsize=(13, 3.6 * len(records)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.4]})
    for (image_ax, text_ax), record in zip(axes, records, strict=True):
        image = items[record["id"]].image.load()
        image_ax.imshow(draw_boxes(image, record_boxes(record), scale=1))
        image_ax.axis("off")
        text_ax.axis("off")
        text_ax.text(0, 1, _caption(record), va="top", family="monospace", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
