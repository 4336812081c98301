"""Generate the whole toy world under ``data/toy/`` (atomically: a failed build leaves no partial folder).

Layout written::

    images/<split>/<scene_id>.png    every image once (benchmark folders hold hard links to these)
    benchmarks/<benchmark>/...       the eight toy benchmarks, each in its real dataset's file format
    detection/{source,val,vlm-knowledge}.json  COCO boxes of images/source, images/detection-val, images/vlm-knowledge
    scenes/<split>.jsonl             scene ground truth of every image (scoring and annotations only)
    pretrain_queries.jsonl           text-only queries for the toy base model's pretraining
    manifest.json                    sizes, answer-type mix, seed, generation time
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from valor_lib.processes import process_pool
from valor_lib.toyworld.benchmarks import Item, benchmark_phrasing, format_row, item_seed, make_item
from valor_lib.toyworld.camera import Camera
from valor_lib.toyworld.config import ToyWorldParams
from valor_lib.toyworld.vocab import CATEGORIES

CAMERA = Camera()
CATEGORY_IDS = {name: i + 1 for i, name in enumerate(CATEGORIES)}


@dataclass(frozen=True)
class SplitPlan:
    """One split to generate: which recipe, how many images, under which split name."""

    recipe: str
    split: str
    images: int


def plan_splits(p: ToyWorldParams) -> list[SplitPlan]:
    """Every split of the toy world with its image count."""
    half = p.eval_items // 2
    plans = [
        SplitPlan("omni3d-bench", "omni3d-bench", math.ceil(p.omni3d_rows / 2)),
        SplitPlan("tallyqa", "tallyqa-val", p.eval_items),
        SplitPlan("tallyqa", "tallyqa-train", p.train_items),
        SplitPlan("gqa", "gqa-val", p.eval_items),
        SplitPlan("gqa", "gqa-train", p.train_items),
        SplitPlan("robospatial/compatibility", "robospatial-compatibility", half),
        SplitPlan("robospatial/configuration", "robospatial-configuration", p.eval_items - half),
        SplitPlan("vsr", "vsr-dev", p.eval_items),
        SplitPlan("vsr", "vsr-train", p.train_items),
        SplitPlan("blink/Counting", "blink-counting", half),
        SplitPlan("blink/Spatial_Relation", "blink-spatial", p.eval_items - half),
        SplitPlan("countbenchqa", "countbenchqa-test", p.eval_items),
        SplitPlan("realworldqa", "realworldqa-test", p.eval_items),
        SplitPlan("pool", "pool", p.pool_images),
        SplitPlan("source", "source", p.source_images),
        SplitPlan("detection_val", "detection-val", p.detection_val_images),
        SplitPlan("detection_val", "vlm-knowledge", p.knowledge_images),
        SplitPlan("pretrain", "pretrain", math.ceil(p.pretrain_queries / 3)),
    ]
    return [plan for plan in plans if plan.images > 0]


def _make(args: tuple[str, str, int, int, float]) -> Item:
    recipe, split, index, seed, min_visible = args
    return make_item(recipe, split, index, seed, CAMERA, min_visible)


def generate(plans: list[SplitPlan], seed: int, min_visible: float, workers: int) -> Iterator[tuple[SplitPlan, list[Item]]]:
    """Render every planned split (in parallel when ``workers`` > 1), yielding each split's items in order."""
    tasks = [(plan, (plan.recipe, plan.split, i, seed, min_visible)) for plan in plans for i in range(plan.images)]
    bar = tqdm(total=len(tasks), desc="toy world", unit="img")
    if workers > 1:
        pool = process_pool(workers)
        results = pool.map(_make, [t for _, t in tasks], chunksize=8)
    else:
        pool, results = None, map(_make, (t for _, t in tasks))
    try:
        current: SplitPlan | None = None
        items: list[Item] = []
        for (plan, _), item in zip(tasks, results, strict=True):
            if current is not None and plan != current:
                yield current, items
                items = []
            current = plan
            items.append(item)
            bar.update(1)
        if current is not None:
            yield current, items
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)


# ---------------------------------------------------------------- writers


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def _save_images(folder: Path, items: list[Item]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for item in items:
        (folder / f"{item.scene.id}.png").write_bytes(item.png)


def _link_images(source: Path, folder: Path, items: list[Item]) -> None:
    """Hard-link a split's canonical images into a benchmark's own folder layout."""
    folder.mkdir(parents=True, exist_ok=True)
    for item in items:
        name = f"{item.scene.id}.png"
        os.link(source / name, folder / name)


def _write_parquet(path: Path, rows: list[dict[str, Any]], images: list[bytes], names: list[str],
                   image_column: str = "image") -> None:
    """Rows plus an HF ``Image`` column, saved as parquet (what ``load_dataset`` reads for the real sets)."""
    import datasets

    columns: dict[str, list[Any]] = {k: [r[k] for r in rows] for k in rows[0]}
    columns[image_column] = [{"bytes": b, "path": n} for b, n in zip(images, names, strict=True)]
    features = datasets.Dataset.from_dict({k: v for k, v in columns.items() if k != image_column}).features
    features[image_column] = datasets.Image()
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(path))


def _rows(benchmark: str, items: list[Item], seed: int, limit: int | None = None) -> tuple[list[dict], list[Item]]:
    rows, owners = [], []
    rng = np.random.default_rng(item_seed(seed, benchmark, -1))
    for item in items:
        for q in item.queries:
            rows.append(format_row(benchmark, item, q, len(rows), rng))
            owners.append(item)
    if limit is not None:
        rows, owners = rows[:limit], owners[:limit]
    return rows, owners


def _coco(items: list[Item]) -> dict[str, Any]:
    """COCO detection ground truth of a split."""
    images, annotations = [], []
    for image_id, item in enumerate(items, start=1):
        images.append({"id": image_id, "file_name": f"{item.scene.id}.png", "width": CAMERA.width,
                       "height": CAMERA.height})
        for obj in item.scene.objects:
            x1, y1, x2, y2 = obj.bbox
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": CATEGORY_IDS[obj.category], "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    categories = [{"id": i, "name": name} for name, i in CATEGORY_IDS.items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_split(root: Path, plan: SplitPlan, items: list[Item], p: ToyWorldParams, seed: int) -> dict[str, Any]:
    """Write one split's files; return its manifest entry."""
    _write_jsonl(root / "scenes" / f"{plan.split}.jsonl", [i.scene.to_dict() for i in items])
    bench = root / "benchmarks"
    info: dict[str, Any] = {"images": len(items)}
    recipe = plan.recipe
    if recipe == "pretrain":
        rng = np.random.default_rng([seed, len(items)])
        queries = [{"id": f"{i.scene.id}-{k}", "question": benchmark_phrasing(q, rng), "family": q.spec.family}
                   for i in items for k, q in enumerate(i.queries)][: p.pretrain_queries]
        _write_jsonl(root / "pretrain_queries.jsonl", queries)
        info["queries"] = len(queries)
        return info
    images = root / "images" / plan.split
    _save_images(images, items)
    if recipe in ("source", "detection_val"):
        coco = _coco(items)
        coco_path = root / "detection" / f"{plan.split.removeprefix('detection-')}.json"
        coco_path.parent.mkdir(exist_ok=True)
        coco_path.write_text(json.dumps(coco))
        info["boxes"] = len(coco["annotations"])
        return info
    if recipe == "pool":
        return info
    benchmark = recipe.split("/")[0]
    rows, owners = _rows(recipe, items, seed, limit=p.omni3d_rows if benchmark == "omni3d-bench" else None)
    info["rows"] = len(rows)
    info["answer_types"] = dict(Counter(q.answer_type for i in items for q in i.queries))
    info["families"] = dict(Counter(q.spec.family for i in items for q in i.queries))
    pngs, owner_names = [o.png for o in owners], [f"{o.scene.id}.png" for o in owners]
    if benchmark == "omni3d-bench":
        _write_parquet(bench / "omni3d-bench" / "train.parquet", rows, pngs, owner_names)
    elif benchmark in ("tallyqa", "gqa"):
        kind = plan.split.split("-")[1]
        _write_jsonl(bench / benchmark / f"{benchmark}_{kind}.jsonl", rows)
        sub = "VG_100K" if benchmark == "tallyqa" else "images"
        _link_images(images, bench / benchmark / sub, items)
    elif benchmark == "vsr":
        _write_jsonl(bench / "vsr" / f"{plan.split.split('-')[1]}.jsonl", rows)
        _link_images(images, bench / "vsr" / "images", items)
    elif benchmark == "robospatial":
        _write_parquet(bench / "robospatial" / f"{recipe.split('/')[1]}.parquet", rows, pngs, owner_names, "img")
    elif benchmark == "blink":
        _write_parquet(bench / "blink" / recipe.split("/")[1] / "val.parquet", rows, pngs, owner_names, "image_1")
    elif benchmark in ("countbenchqa", "realworldqa"):
        _write_parquet(bench / benchmark / "test.parquet", rows, pngs, owner_names)
    else:
        raise KeyError(recipe)
    return info


def build_world(p: ToyWorldParams, seed: int, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Generate every split into ``out_dir`` (replaced atomically); return the manifest."""
    out = Path(out_dir)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    start = time.perf_counter()
    manifest: dict[str, Any] = {"seed": seed, "params": p.model_dump(), "camera": CAMERA.to_dict(),
                                "categories": CATEGORY_IDS, "splits": {}}
    try:
        for plan, items in generate(plan_splits(p), seed, p.min_visible, p.workers):
            manifest["splits"][plan.split] = write_split(partial, plan, items, p, seed)
        manifest["seconds"] = round(time.perf_counter() - start, 1)
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=2))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)
    return manifest
