"""The toy world's vocabulary: object categories with metric sizes and shapes, colours, synonyms."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    """An object category: metric size ranges (metres) and the silhouette used to draw it."""

    name: str
    plural: str
    width: tuple[float, float]
    height: tuple[float, float]
    depth: tuple[float, float]
    shape: str
    synonyms: tuple[str, ...] = ()


CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category("chair", "chairs", (0.42, 0.55), (0.80, 1.00), (0.45, 0.55), "chair"),
        Category("table", "tables", (0.90, 1.60), (0.68, 0.80), (0.70, 0.90), "table", ("desk",)),
        Category("sofa", "sofas", (1.60, 2.20), (0.75, 0.95), (0.85, 0.95), "sofa", ("couch",)),
        Category("lamp", "lamps", (0.30, 0.45), (1.30, 1.80), (0.30, 0.45), "lamp"),
        Category("box", "boxes", (0.30, 0.70), (0.30, 0.70), (0.30, 0.70), "box", ("crate",)),
        Category("ball", "balls", (0.22, 0.50), (0.22, 0.50), (0.22, 0.50), "ball", ("sphere",)),
        Category("cabinet", "cabinets", (0.70, 1.20), (1.20, 1.90), (0.45, 0.60), "cabinet", ("cupboard",)),
        Category("vase", "vases", (0.14, 0.24), (0.30, 0.55), (0.14, 0.24), "vase"),
    )
}

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 200),
    "yellow": (230, 200, 40),
    "white": (235, 235, 230),
    "black": (35, 35, 40),
    "orange": (235, 130, 30),
    "purple": (130, 60, 170),
}

COLOR_SYNONYMS: dict[str, tuple[str, ...]] = {"purple": ("violet",), "black": ("dark",)}


def plural(category: str) -> str:
    """The plural noun of a category."""
    return CATEGORIES[category].plural


def canonical_noun(word: str) -> str | None:
    """Map a noun (singular, plural or synonym) to its category name, or None."""
    w = word.strip().lower()
    for cat in CATEGORIES.values():
        if w in (cat.name, cat.plural) or w in cat.synonyms or w in {s + "s" for s in cat.synonyms}:
            return cat.name
        if w.endswith("es") and w[:-2] in cat.synonyms:
            return cat.name
    return None
