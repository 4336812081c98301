"""What a toy query asks a program to handle: its objects, spatial relations, object attributes and answer kind.

Read from the query text only (``parse_query`` for the toy templates, keyword scanning for anything else), so
toy brains may use it. The toy verifier checks plans and programs against these requirements; the toy
annotator of the verifier error analysis checks what programs actually compute against them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from valor_lib.toyworld.queries import QuerySpec, parse_query, strip_instructions
from valor_lib.toyworld.vocab import CATEGORIES, COLORS, canonical_noun

# relation word -> image axis it is judged on ("x": horizontal position, "y": vertical, "depth")
RELATION_AXES: dict[str, str] = {
    "left of": "x", "right of": "x", "leftmost": "x", "rightmost": "x",
    "above": "y", "below": "y",
    "in front of": "depth", "behind": "depth", "closer": "depth", "farther": "depth",
    "closest": "depth", "farthest": "depth",
}
# words that show a plan (or program comment) addresses a relation
RELATION_WORDS: dict[str, tuple[str, ...]] = {
    "left of": ("left",), "right of": ("right",), "leftmost": ("leftmost",), "rightmost": ("rightmost",),
    "above": ("above",), "below": ("below",),
    "in front of": ("in front", "closer"), "behind": ("behind", "farther"),
    "closer": ("closer", "closest", "nearest"), "farther": ("farther", "farthest"),
    "closest": ("closest", "nearest", "smallest depth"), "farthest": ("farthest", "largest depth"),
}
_SPEC_RELATIONS = {"closer to the camera than": "closer", "farther from the camera than": "farther"}
_FAMILY_RELATIONS = {"depth_choice": "closer", "superlative_choice": "closest"}
_SIZE_WORDS = {"tall": "height", "wide": "width"}
_NUMBER_FAMILIES = {"count", "count_rel", "size_ratio", "size_ref", "stack_height"}
_YES_NO_FAMILIES = {"exist", "rel2d", "depth", "size_compare", "color_yesno", "stack_compare", "fit_under"}
SIZE_DIMENSIONS = ("height", "width")


@dataclass(frozen=True)
class Requirements:
    """What a correct plan for a query must cover."""

    categories: tuple[str, ...]  # canonical object categories, in order of mention
    colors: tuple[str, ...]  # colours that pick out objects or are asked about
    relations: tuple[str, ...]  # keys of RELATION_AXES
    sizes: tuple[str, ...]  # real-world (3D) dimensions to measure: "height", "width"
    asks_color: bool  # the answer is a colour
    answer_kind: str  # "number", "yes/no", "choice", "word"
    options: tuple[str, ...] = ()
    family: str | None = None  # the toy template family, when the query is one
    refs: tuple[str, ...] = ()  # the referenced objects as "[superlative] [colour] category", in order
    main_relation: str | None = None  # the relation the question asks about (not a reference's superlative)

    @property
    def needs_depth(self) -> bool:
        """Real-world sizes and depth relations both need the depth tool."""
        return bool(self.sizes) or any(RELATION_AXES[r] == "depth" for r in self.relations)


def requirements(query: str) -> Requirements:
    """The requirements of a query (toy templates exactly, other text by keywords)."""
    spec = parse_query(query)
    return from_spec(spec) if spec is not None else from_text(query)


def from_spec(spec: QuerySpec) -> Requirements:
    """Requirements of a parsed toy query."""
    categories = [r.category for r in spec.refs]
    if spec.category:
        categories.insert(0, spec.category)
    colors = [r.color for r in spec.refs if r.color]
    if spec.color:
        colors.append(spec.color)
    relations = [_SPEC_RELATIONS.get(spec.relation, spec.relation)] if spec.relation else []
    relations += [r.superlative for r in spec.refs if r.superlative]
    if spec.family in _FAMILY_RELATIONS:
        relations.append(_FAMILY_RELATIONS[spec.family])
    sizes: list[str] = []
    if spec.family in ("size_compare", "size_choice", "size_ratio", "size_ref"):
        sizes = [_SIZE_WORDS[spec.attribute or "tall"]]
    elif spec.family in ("stack_compare", "stack_height"):
        sizes = ["height"]
    elif spec.family == "fit_under":
        sizes = ["height", "width"]
    if spec.family in _NUMBER_FAMILIES:
        kind = "number"
    elif spec.family in _YES_NO_FAMILIES:
        kind = "yes/no"
    elif spec.family.endswith("_choice"):
        kind = "choice"
    else:
        kind = "word"
    main = _SPEC_RELATIONS.get(spec.relation, spec.relation) if spec.relation else _FAMILY_RELATIONS.get(spec.family)
    return Requirements(tuple(dict.fromkeys(categories)), tuple(dict.fromkeys(colors)),
                        tuple(dict.fromkeys(relations)), tuple(sizes), spec.family == "color", kind,
                        tuple(spec.options), spec.family, tuple(r.noun() for r in spec.refs), main)


_WORD = re.compile(r"[a-z]+")


def from_text(query: str) -> Requirements:
    """Requirements of free text by keywords (queries that are not toy templates)."""
    core, options = strip_instructions(query)
    text = " " + " ".join(_WORD.findall(core.lower())) + " "
    categories = [c for w in _WORD.findall(core.lower()) if (c := canonical_noun(w))]
    colors = [c for c in COLORS if f" {c} " in text]
    relations = [r for r in RELATION_AXES if f" {r} " in text]
    relations += [r for w, r in (("nearer", "closer"), ("nearest", "closest"), ("further", "farther"))
                  if f" {w} " in text and r not in relations]
    sizes = []
    real_world = any(f" {w} " in text for w in ("d", "meters", "metres", "real", "actual", "cm"))
    for dim, words in (("height", ("tall", "taller", "height", "high")), ("width", ("wide", "wider", "width"))):
        if real_world and any(f" {w} " in text for w in words):
            sizes.append(dim)
    asks_color = " what color " in text or " what colour " in text
    if text.startswith((" how many ", " how much ", " how tall ", " how wide ", " what is the ratio")):
        kind = "number"
    elif options or text.startswith(" which "):
        kind = "choice"
    elif asks_color:
        kind = "word"
    else:
        kind = "yes/no"
    return Requirements(tuple(dict.fromkeys(categories)), tuple(colors), tuple(relations), tuple(sizes),
                        asks_color, kind, tuple(options))


def category_words(category: str) -> tuple[str, ...]:
    """Every word naming a category (name, plural, synonyms and their plurals)."""
    c = CATEGORIES[category]
    return (c.name, c.plural, *c.synonyms, *(s + "s" for s in c.synonyms))


_BOX_DETERMINERS = {"the", "a", "an", "every", "all", "any", "another", "of", "detected", "many", *COLORS,
                    "leftmost", "rightmost", "closest", "nearest", "farthest"}
_BOX_AFTER = {"of", "where", "coordinates", "coordinate", "width", "height", "center", "centre", "centers",
              "bottom", "top", "edge", "edges", "area", "areas", "size", "sizes", "x", "y", "gets"}


def categories_in(text: str, prose: bool = True) -> list[str]:
    """Categories named in a text, in order of first mention. In prose (``prose=True``), "box" also means a
    bounding box, so it counts as the category only where it reads as a named object ("the red box", "every
    box with gd_detect"), not as a box of something ("the box of the lamp", "each box", "the most confident
    box", "bounding box"). Detection prompts and questions in code are read with ``prose=False``."""
    words = _WORD.findall(text.lower())
    found = []
    for i, word in enumerate(words):
        category = canonical_noun(word)
        if category is None:
            continue
        if prose and word in ("box", "boxes"):
            before, after = words[i - 1] if i else "", words[i + 1] if i + 1 < len(words) else ""
            if before not in _BOX_DETERMINERS or after in _BOX_AFTER:
                continue
        found.append(category)
    return list(dict.fromkeys(found))


def colors_in(text: str) -> list[str]:
    """Colour words in a text."""
    words = set(_WORD.findall(text.lower()))
    return [c for c in COLORS if c in words]
