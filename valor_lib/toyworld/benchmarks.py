"""Toy benchmark splits that mirror the eight real evaluation sets, field for field.

Each toy benchmark has a *recipe* (scene layout, query families, answer balancing) and a *row formatter*
that writes the real dataset's fields (e.g. BLINK's ``choices`` and ``"(A)"`` answers, VSR's captions and
0/1 labels, RoboSpatial's "Yes"/"No"), so the same loaders and metrics run on toy and real data.
Items are generated independently per index (deterministic from the seed), so rendering parallelises.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from valor_lib.toyworld.camera import Camera
from valor_lib.toyworld.queries import (
    Query,
    QueryError,
    QuerySpec,
    answer_query,
    query_text,
    sample_query,
)
from valor_lib.toyworld.render import render_pruned
from valor_lib.toyworld.scene import Layout, Scene, sample_scene
from valor_lib.toyworld.vocab import CATEGORIES, plural

BENCHMARKS = ("omni3d-bench", "tallyqa", "gqa", "robospatial", "vsr", "blink", "countbenchqa", "realworldqa")

# repeats weight the draw: Omni3D-Bench is about half float (3D size) questions
OMNI3D_FAMILIES = ("size_ref", "size_ref", "size_ratio", "size_ratio", "stack_height", "stack_height",
                   "count_rel", "depth", "size_compare", "stack_compare", "fit_under", "depth_choice",
                   "size_choice", "superlative_choice")
GENERAL_FAMILIES = ("count", "count_rel", "exist", "rel2d", "depth", "depth_choice", "size_compare",
                    "size_choice", "color", "color_yesno", "superlative_choice")


@dataclass(frozen=True)
class Recipe:
    """How one benchmark split's items are drawn."""

    families: tuple[str, ...]
    layout: Layout = field(default_factory=Layout)
    queries_per_image: int = 1
    balance: tuple[str, ...] = ()  # answers to cycle through by item index (e.g. yes/no, counts)
    count_targets: tuple[int, ...] = ()  # counting recipes: the true count wanted for item i


RECIPES: dict[str, Recipe] = {
    "omni3d-bench": Recipe(OMNI3D_FAMILIES, Layout(3, 7, p_truncated=0.05), queries_per_image=2),
    "tallyqa": Recipe(("count",), Layout(1, 5), count_targets=(0, 1, 2, 3, 4, 5)),
    "gqa": Recipe(("color", "color_yesno", "exist", "rel2d"), Layout(2, 6), balance=()),
    "robospatial/compatibility": Recipe(("fit_under", "stack_compare"), Layout(3, 6), balance=("yes", "no")),
    "robospatial/configuration": Recipe(("rel2d", "depth"), Layout(2, 6), balance=("yes", "no")),
    "vsr": Recipe(("rel2d", "depth"), Layout(2, 5), balance=("yes", "no")),
    "blink/Counting": Recipe(("count",), Layout(1, 5), count_targets=(1, 2, 3, 4, 5, 6)),
    "blink/Spatial_Relation": Recipe(("rel2d", "depth"), Layout(2, 6), balance=("yes", "no")),
    "countbenchqa": Recipe(("count",), Layout(0, 3), count_targets=(2, 3, 4, 5, 6, 7, 8)),
    "realworldqa": Recipe(("depth_choice", "size_choice", "superlative_choice", "count", "rel2d", "depth"),
                          Layout(2, 7)),
    # training sources (mining, RL); same recipes as their evaluation splits
    "pool": Recipe(GENERAL_FAMILIES + OMNI3D_FAMILIES, Layout(2, 7)),
    "pretrain": Recipe(GENERAL_FAMILIES + OMNI3D_FAMILIES, Layout(2, 7), queries_per_image=3),
    "source": Recipe((), Layout(1, 6, p_truncated=0.1)),
    "detection_val": Recipe((), Layout(2, 7)),
}


def item_seed(base_seed: int, split: str, index: int, attempt: int = 0) -> int:
    """A 63-bit seed for one item, stable across processes and Python versions."""
    digest = hashlib.blake2b(f"{base_seed}/{split}/{index}/{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@dataclass
class Item:
    """One generated image with its scene ground truth and its queries."""

    scene: Scene
    png: bytes
    queries: list[Query]


def _png(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=3)
    return buf.getvalue()


def _count_query(scene: Scene, rng: np.random.Generator, target: int, focus: str) -> Query | None:
    """'How many <focus> ...' when the scene holds exactly ``target`` of them."""
    spec = QuerySpec("count", category=focus)
    answer, answer_type, ids = answer_query(spec, scene)
    if int(answer) != target:
        return None
    return Query(query_text(spec), answer, answer_type, spec, ids)


def make_item(recipe_key: str, split: str, index: int, base_seed: int, camera: Camera, min_visible: float,
              max_attempts: int = 200) -> Item:
    """Draw scenes for item ``index`` until the recipe's wishes (count, balance) are met."""
    recipe = RECIPES[recipe_key]
    for attempt in range(max_attempts):
        seed = item_seed(base_seed, split, index, attempt)
        rng = np.random.default_rng(seed)
        layout = recipe.layout
        focus = None
        if recipe.count_targets:
            target = recipe.count_targets[index % len(recipe.count_targets)]
            focus = str(rng.choice(list(CATEGORIES)))
            layout = Layout(layout.min_objects, layout.max_objects, focus_category=focus if target else None,
                            focus_count=(target, target), p_poster=layout.p_poster, p_rug=layout.p_rug,
                            p_shadow=layout.p_shadow, p_truncated=layout.p_truncated)
        domain = "source" if recipe_key == "source" else "target"
        scene = sample_scene(f"{split}-{index:05d}", seed, camera, domain, layout)
        rendered = render_pruned(scene, camera, min_visible)
        if not recipe.families:
            if scene.objects:
                return Item(scene, _png(rendered.image), [])
            continue
        queries: list[Query] = []
        if recipe.count_targets and focus is not None:
            if not target and scene.by_category(focus):
                continue
            q = _count_query(scene, rng, target, focus)
            if q is None:
                continue
            queries.append(q)
        else:
            want = recipe.balance[index % len(recipe.balance)] if recipe.balance else None
            families = list(recipe.families)
            for _ in range(recipe.queries_per_image * 6):
                q = sample_query(scene, rng, families)
                if q is None or (want is not None and q.answer != want):
                    continue
                if any(q.text == other.text for other in queries):
                    continue
                queries.append(q)
                if len(queries) == recipe.queries_per_image:
                    break
            if not queries:
                continue
        return Item(scene, _png(rendered.image), queries)
    raise QueryError(f"could not draw item {index} of {split!r} in {max_attempts} attempts")


# ---------------------------------------------------------------- rows in each real dataset's format


def _letter(i: int) -> str:
    return "ABCDEFGH"[i]


def count_choices(answer: int, rng: np.random.Generator) -> list[str]:
    """Four numeric options including the true count, in increasing order."""
    low = max(0, answer - int(rng.integers(0, 4)))
    return [str(v) for v in range(low, low + 4)]


DIRECT_ANSWER = "Please answer directly with a single word or number."


def benchmark_phrasing(q: Query, rng: np.random.Generator) -> str:
    """The query as one of the evaluated benchmarks might put it to the policy, drawn uniformly: plain, or with
    the instruction or option list its answer type gets there after the loaders' rewrites (RoboSpatial's
    "Answer yes or no.", RealWorldQA's direct-answer line or options, BLINK's options). A language model
    pretrained on plain questions only is thrown by these suffixes; the real policy has seen such phrasings."""
    from valor_lib.evaluation.rewrites import with_options

    forms = [q.text, f"{q.text}\n{DIRECT_ANSWER}"]
    if q.answer_type == "yes/no":
        forms += [f"{q.text} Answer yes or no.", with_options(q.text, ["yes", "no"])]
    elif q.answer_type == "choice":
        forms.append(with_options(q.text, list(q.spec.options)))
    elif q.answer_type == "int":
        forms.append(with_options(q.text, count_choices(int(q.answer), rng)))
    return forms[int(rng.integers(len(forms)))]


def vsr_caption(q: Query) -> str:
    """A VSR-style statement ("The chair is to the left of the table.") from a relation query."""
    a, b = (r.text() for r in q.spec.refs)
    rel = q.spec.relation or ""
    rel = f"to the {rel}" if rel in ("left of", "right of") else rel
    return f"{a[0].upper()}{a[1:]} is {rel} {b}."


def format_row(benchmark: str, item: Item, q: Query, index: int, rng: np.random.Generator) -> dict[str, Any]:
    """One row of the toy benchmark in the real dataset's field names and types (image excluded)."""
    name = f"{item.scene.id}.png"
    w, h = 256, 192
    boxes = [item.scene.objects[i].bbox for i in q.object_ids if i < len(item.scene.objects)]
    if benchmark == "omni3d-bench":
        return {"image_index": name, "q_index": index, "question": q.text, "answer": q.answer,
                "answer_type": {"choice": "str", "yes/no": "str"}.get(q.answer_type, q.answer_type)}
    if benchmark == "tallyqa":
        return {"question": q.text, "answer": int(q.answer), "image": f"VG_100K/{name}", "width": w, "height": h,
                "bboxs": boxes, "dataset": "tallyqa"}
    if benchmark == "gqa":
        return {"question": q.text, "answer": q.answer, "image": f"images/{name}", "width": w, "height": h,
                "bboxs": boxes, "dataset": "gqa"}
    if benchmark.startswith("robospatial/"):
        return {"category": benchmark.split("/")[1], "question": f"{q.text} Answer yes or no.",
                "answer": q.answer.capitalize()}
    if benchmark == "vsr":
        a, b = (r.category for r in q.spec.refs)
        return {"image": name, "image_link": f"toy://vsr/images/{name}", "caption": vsr_caption(q),
                "label": int(q.answer == "yes"), "relation": q.spec.relation, "subj": a, "obj": b,
                "annotator_id": 0, "vote_true_validator_id": "[]", "vote_false_validator_id": "[]"}
    if benchmark.startswith("blink/"):
        sub_task = benchmark.split("/")[1]
        choices = count_choices(int(q.answer), rng) if sub_task == "Counting" else ["yes", "no"]
        letter = _letter(choices.index(q.answer))
        lines = "\n".join(f"({_letter(i)}) {c}" for i, c in enumerate(choices))
        return {"idx": f"val_{sub_task}_{index + 1}", "question": q.text, "sub_task": sub_task, "choices": choices,
                "answer": f"({letter})", "prompt": f"{q.text}\nSelect from the following choices.\n{lines}",
                "explanation": ""}
    if benchmark == "countbenchqa":
        cat = q.spec.category or "object"
        return {"text": f"{q.answer} {plural(cat)} standing on a floor", "question": q.text,
                "number": int(q.answer)}
    if benchmark == "realworldqa":
        if q.answer_type == "choice":
            options = list(q.spec.options)
            lines = "\n".join(f"{_letter(i)}. {o}" for i, o in enumerate(options))
            question = (f"{q.text}\n{lines}\nPlease answer directly with only the letter of the correct option "
                        "and nothing else.")
            return {"question": question, "answer": _letter(options.index(q.answer))}
        answer = q.answer.capitalize() if q.answer_type == "yes/no" else q.answer
        return {"question": f"{q.text}\n{DIRECT_ANSWER}", "answer": answer}
    raise KeyError(f"unknown benchmark {benchmark!r}")
