"""Spatial queries about toy scenes: a structured form, its text, its parser, and its true answer.

A :class:`QuerySpec` renders to English with one template per family and parses back from that English
(:func:`parse_query`); toy brains that must *understand* a query (the template programmer, the toy verifier,
the toy query generator) use the parser, never the scene. :func:`answer_query` computes the ground-truth
answer from the scene and refuses ill-posed questions (ambiguous references, differences inside a margin),
so every generated question has one clear answer.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from valor_lib.toyworld.scene import Scene, SceneObject
from valor_lib.toyworld.vocab import CATEGORIES, COLORS, canonical_noun, plural

SUPERLATIVES = ("leftmost", "rightmost", "closest", "farthest")
REL2D = ("left of", "right of", "above", "below")
RELDEPTH = ("in front of", "behind", "closer to the camera than", "farther from the camera than")
SIZE_ATTRS = ("tall", "wide")
ANSWER_TYPES = ("int", "float", "yes/no", "str", "choice")

# margins that keep answers unambiguous
PX_MARGIN = 8.0
DEPTH_MARGIN = 0.5
SIZE_MARGIN = 0.2
MIN_VISIBLE_REF = 0.6


class QueryError(ValueError):
    """A query that is ill-posed for a scene (ambiguous reference, no clear answer)."""


@dataclass(frozen=True)
class Ref:
    """A referring expression: ``the [superlative] [colour] category``."""

    category: str
    color: str | None = None
    superlative: str | None = None

    def text(self) -> str:
        words = ["the", self.superlative, self.color, self.category]
        return " ".join(w for w in words if w)

    def noun(self) -> str:
        """The option text of this object in a multiple-choice question (no article)."""
        return self.text().removeprefix("the ")


@dataclass(frozen=True)
class QuerySpec:
    """A query's structure. ``refs`` are the objects it mentions, in order of mention."""

    family: str
    refs: tuple[Ref, ...] = ()
    relation: str | None = None
    attribute: str | None = None
    value: float | None = None
    category: str | None = None
    color: str | None = None
    options: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["refs"] = [asdict(r) for r in self.refs]
        d["options"] = list(self.options)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuerySpec:
        return cls(**{**d, "refs": tuple(Ref(**r) for r in d["refs"]), "options": tuple(d["options"])})


@dataclass
class Query:
    """A query with its ground-truth answer (string form) and answer type."""

    text: str
    answer: str
    answer_type: str
    spec: QuerySpec
    object_ids: list[int] = field(default_factory=list)


# ---------------------------------------------------------------- text rendering and parsing


TEMPLATES: dict[str, str] = {
    "count": "How many {np} are there in the image?",
    "count_rel": "How many {np} are {rel} {A}?",
    "exist": "Is there a {color} {category} in the image?",
    "rel2d": "Is {A} {rel} {B}?",
    "depth": "Is {A} {rel} {B}?",
    "depth_choice": "Which is closer to the camera, {A} or {B}?",
    "size_compare": "Is {A} {cmp} than {B} in 3D?",
    "size_choice": "Which is {cmp} in 3D, {A} or {B}?",
    "size_ref": "If {A} is {value} meters {attr}, how {attr} is {B} in meters?",
    "size_ratio": "How many times {cmp} is {A} than {B} in 3D?",
    "color": "What color is {A}?",
    "color_yesno": "Is {A} {color}?",
    "superlative_choice": "Which object is closest to the camera: {A}, {B}, or {C}?",
    "stack_compare": "If {A} were stacked on top of {B}, would the stack be taller than {C}?",
    "stack_height": "If {A} were stacked on top of {B}, how tall would the stack be in meters, given that {C} is {value} meters tall?",
    "fit_under": "Could {A} fit under {B}?",
}
COMPARATIVE = {"tall": "taller", "wide": "wider"}
FAMILIES = tuple(TEMPLATES)


def _rel_text(relation: str) -> str:
    return f"to the {relation}" if relation in ("left of", "right of") else relation


def query_text(spec: QuerySpec) -> str:
    """English text of a query spec."""
    slots = dict(zip("ABC", (r.text() for r in spec.refs), strict=False))
    noun_phrase = f"{spec.color} {plural(spec.category)}" if spec.color and spec.category else (
        plural(spec.category) if spec.category else "")
    attr = spec.attribute or "tall"
    text = TEMPLATES[spec.family].format(
        np=noun_phrase, rel=_rel_text(spec.relation or ""), attr=attr, cmp=COMPARATIVE[attr],
        color=spec.color or "", category=spec.category or "",
        value=f"{spec.value:.2f}" if spec.value is not None else "", **slots)
    return text[0].upper() + text[1:]


_COLOR_RE = "|".join(COLORS)
_NOUNS = sorted({n for c in CATEGORIES.values() for n in (c.name, *c.synonyms)}, key=len, reverse=True)
_PLURALS = sorted({n for c in CATEGORIES.values() for n in (c.plural, *(s + "s" for s in c.synonyms))},
                  key=len, reverse=True)
_REF_RE = (rf"the (?:(?:{'|'.join(SUPERLATIVES)}|nearest) )?(?:(?:{_COLOR_RE}) )?(?:{'|'.join(_NOUNS)})")
_NP_RE = rf"(?:(?:{_COLOR_RE}) )?(?:{'|'.join(_PLURALS)})"
_REL_RE = "|".join(re.escape(r) for r in ("to the left of", "to the right of", "above", "below", *RELDEPTH))


def _slot_regex(slot: str) -> str:
    return {
        "A": _REF_RE, "B": _REF_RE, "C": _REF_RE, "np": _NP_RE, "rel": _REL_RE, "attr": "tall|wide",
        "cmp": "taller|wider", "color": _COLOR_RE, "category": "|".join(_NOUNS), "value": r"\d+(?:\.\d+)?",
    }[slot]


def _pattern(template: str) -> re.Pattern[str]:
    """A regex matching a template's texts, one named group per slot (repeats must agree)."""
    out, seen = [], set()
    for part in re.split(r"(\{[A-Za-z]+\})", template):
        if part.startswith("{"):
            slot = part[1:-1]
            out.append(f"(?P={slot})" if slot in seen else f"(?P<{slot}>{_slot_regex(slot)})")
            seen.add(slot)
        else:
            out.append(re.escape(part))
    return re.compile("^" + "".join(out) + "$", re.IGNORECASE)


# "depth" shares its template with "rel2d"; the relation tells them apart when parsing
_PATTERNS: dict[str, re.Pattern[str]] = {f: _pattern(t) for f, t in TEMPLATES.items() if f != "depth"}


def parse_ref(text: str) -> Ref:
    """Parse ``the [superlative] [colour] noun`` (synonyms and 'nearest' accepted)."""
    words = text.lower().removeprefix("the ").split()
    sup = words.pop(0) if words and words[0] in (*SUPERLATIVES, "nearest") else None
    sup = "closest" if sup == "nearest" else sup
    color = words.pop(0) if words and words[0] in COLORS else None
    category = canonical_noun(" ".join(words))
    if category is None:
        raise QueryError(f"unknown object noun in {text!r}")
    return Ref(category, color, sup)


def _parse_np(text: str) -> tuple[str, str | None]:
    words = text.lower().split()
    color = words.pop(0) if words[0] in COLORS else None
    category = canonical_noun(" ".join(words))
    if category is None:
        raise QueryError(f"unknown object noun in {text!r}")
    return category, color


def _canon_rel(rel: str) -> str:
    return rel.lower().removeprefix("to the ")


_INSTRUCTIONS = re.compile(
    r"\s*(?:Answer yes or no\.|Please answer directly with[^\n]*|Select from the following choices\.)\s*$",
    re.IGNORECASE)
_OPTIONS_SUFFIX = re.compile(r"\s*Options:\s*\{(?P<opts>[^{}]*)\}\.?\s*$")
_LETTER_LINE = re.compile(r"^\(?([A-H])[.):]\s*(.+)$")


def strip_instructions(text: str) -> tuple[str, tuple[str, ...]]:
    """Split a benchmark question into its core question and any listed options.

    Handles the benchmarks' decorations: a trailing "Answer yes or no.", "Please answer directly ...",
    "Options: {a, b}." and lettered option lines ("A. x" / "(A) x").
    """
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    options: list[str] = []
    kept = []
    for line in lines:
        m = _LETTER_LINE.match(line)
        if m and kept:
            options.append(m.group(2).strip())
        else:
            kept.append(line)
    core = " ".join(kept)
    while True:
        stripped = _INSTRUCTIONS.sub("", core)
        m = _OPTIONS_SUFFIX.search(stripped)
        if m:
            options = [o.strip() for o in m["opts"].split(",") if o.strip()]
            stripped = stripped[: m.start()]
        if stripped == core:
            break
        core = stripped
    return core.strip(), tuple(options)


def parse_query(text: str) -> QuerySpec | None:
    """Recover the spec of a query written with the toy templates (None if it is not one).

    Benchmark decorations (instruction lines, listed options) are ignored; see :func:`strip_instructions`.
    """
    text, _ = strip_instructions(text)
    text = " ".join(text.split())
    for family, pattern in _PATTERNS.items():
        m = pattern.match(text)
        if not m:
            continue
        g = m.groupdict()
        try:
            refs = tuple(parse_ref(g[s]) for s in "ABC" if g.get(s))
            category, color = _parse_np(g["np"]) if g.get("np") else (None, None)
        except QueryError:
            return None
        if g.get("category"):
            category = canonical_noun(g["category"])
        if g.get("color"):
            color = g["color"].lower()
        attr = g.get("attr") or {"taller": "tall", "wider": "wide"}.get((g.get("cmp") or "").lower())
        attr = attr.lower() if attr else None
        value = float(g["value"]) if g.get("value") else None
        rel = _canon_rel(g["rel"]) if g.get("rel") else None
        if family == "rel2d" and rel in RELDEPTH:
            family = "depth"
        options = tuple(r.noun() for r in refs) if family.endswith("_choice") else ()
        return QuerySpec(family, refs, rel, attr, value, category, color, options)
    return None


# ---------------------------------------------------------------- resolution against a scene


def _cx(o: SceneObject) -> float:
    return (o.bbox[0] + o.bbox[2]) / 2


def _cy(o: SceneObject) -> float:
    return (o.bbox[1] + o.bbox[3]) / 2


def matches(scene: Scene, category: str, color: str | None = None) -> list[SceneObject]:
    """Objects of a category (and colour)."""
    return [o for o in scene.objects if o.category == category and (color is None or o.color == color)]


def resolve(ref: Ref, scene: Scene) -> SceneObject:
    """The unique object a reference picks out, or :class:`QueryError`."""
    cands = matches(scene, ref.category, ref.color)
    if not cands:
        raise QueryError(f"nothing matches {ref.text()!r}")
    if ref.superlative is None:
        if len(cands) != 1:
            raise QueryError(f"{ref.text()!r} is ambiguous ({len(cands)} matches)")
        return cands[0]
    if len(cands) < 2:
        raise QueryError(f"superlative {ref.text()!r} needs at least two candidates")
    key, margin = {"leftmost": (_cx, PX_MARGIN), "rightmost": (lambda o: -_cx(o), PX_MARGIN),
                   "closest": (lambda o: o.z, DEPTH_MARGIN), "farthest": (lambda o: -o.z, DEPTH_MARGIN)}[
        ref.superlative]
    ranked = sorted(cands, key=key)
    if key(ranked[1]) - key(ranked[0]) < margin:
        raise QueryError(f"{ref.text()!r}: no clear {ref.superlative} object")
    return ranked[0]


def _require_clear(*objs: SceneObject) -> None:
    for o in objs:
        if o.visible < MIN_VISIBLE_REF or o.truncated:
            raise QueryError(f"object {o.id} is too hidden or cut off to ask about")


def _rel_holds(rel: str, a: SceneObject, b: SceneObject) -> bool:
    """Whether ``a rel b`` holds, with a margin (QueryError inside the margin)."""
    if rel in REL2D:
        da, db = (_cx(a), _cx(b)) if rel in ("left of", "right of") else (_cy(a), _cy(b))
        if abs(da - db) < PX_MARGIN:
            raise QueryError("2D positions too close to call")
        return da < db if rel in ("left of", "above") else da > db
    if abs(a.z - b.z) < DEPTH_MARGIN:
        raise QueryError("depths too close to call")
    return a.z < b.z if rel in ("in front of", "closer to the camera than") else a.z > b.z


def _size(o: SceneObject, attr: str) -> float:
    return o.height if attr == "tall" else o.width


def _clearly_different(x: float, y: float) -> None:
    if abs(x - y) < SIZE_MARGIN * min(x, y):
        raise QueryError("sizes too close to call")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def answer_query(spec: QuerySpec, scene: Scene) -> tuple[str, str, list[int]]:
    """Ground-truth (answer, answer_type, ids of the objects involved); QueryError if ill-posed."""
    f = spec.family
    if f == "count":
        found = matches(scene, spec.category or "", spec.color)
        return str(len(found)), "int", [o.id for o in found]
    if f == "exist":
        found = matches(scene, spec.category or "", spec.color)
        return _yes(bool(found)), "yes/no", [o.id for o in found]
    objs = [resolve(r, scene) for r in spec.refs]
    if len({o.id for o in objs}) != len(objs):
        raise QueryError("a query must mention distinct objects")
    ids = [o.id for o in objs]
    if f == "count_rel":
        (anchor,) = objs
        found = [o for o in matches(scene, spec.category or "", spec.color) if o.id != anchor.id]
        return str(sum(_rel_holds(spec.relation or "", o, anchor) for o in found)), "int", ids + [o.id for o in found]
    if f in ("rel2d", "depth"):
        return _yes(_rel_holds(spec.relation or "", *objs)), "yes/no", ids
    if f == "depth_choice":
        a, b = objs
        return spec.refs[0 if _rel_holds("closer to the camera than", a, b) else 1].noun(), "choice", ids
    if f == "color":
        return objs[0].color, "str", ids
    if f == "color_yesno":
        return _yes(objs[0].color == spec.color), "yes/no", ids
    if f == "superlative_choice":
        ranked = sorted(range(3), key=lambda i: objs[i].z)
        if objs[ranked[1]].z - objs[ranked[0]].z < DEPTH_MARGIN:
            raise QueryError("depths too close to call")
        return spec.refs[ranked[0]].noun(), "choice", ids
    _require_clear(*objs)
    attr = spec.attribute or "tall"
    if f == "size_compare":
        a, b = (_size(o, attr) for o in objs)
        _clearly_different(a, b)
        return _yes(a > b), "yes/no", ids
    if f == "size_choice":
        a, b = (_size(o, attr) for o in objs)
        _clearly_different(a, b)
        return spec.refs[0 if a > b else 1].noun(), "choice", ids
    if f == "size_ref":
        return f"{_size(objs[1], attr):.3f}", "float", ids
    if f == "size_ratio":
        a, b = (_size(o, attr) for o in objs)
        return f"{a / b:.3f}", "float", ids
    if f == "stack_compare":
        stack, other = objs[0].height + objs[1].height, objs[2].height
        _clearly_different(stack, other)
        return _yes(stack > other), "yes/no", ids
    if f == "stack_height":
        return f"{objs[0].height + objs[1].height:.3f}", "float", ids
    if f == "fit_under":
        a, b = objs
        if b.category != "table":
            raise QueryError("only tables have room underneath")
        clearance, room = 0.86 * b.height, 0.8 * b.width
        _clearly_different(a.height, clearance)
        return _yes(a.height < clearance and a.width < room), "yes/no", ids
    raise QueryError(f"unknown family {f!r}")


# ---------------------------------------------------------------- sampling


def _ref_options(obj: SceneObject, scene: Scene, with_color: bool = True) -> list[Ref]:
    """Every reference form that picks out ``obj`` uniquely."""
    out = []
    for color in (None, obj.color) if with_color else (None,):
        for sup in (None, *SUPERLATIVES):
            ref = Ref(obj.category, color, sup)
            try:
                if resolve(ref, scene).id == obj.id:
                    out.append(ref)
            except QueryError:
                continue
    return out


def random_ref(obj: SceneObject, scene: Scene, rng: np.random.Generator, with_color: bool = True) -> Ref | None:
    """A random unique reference to ``obj`` (None if it cannot be singled out)."""
    options = _ref_options(obj, scene, with_color)
    return options[int(rng.integers(len(options)))] if options else None


def _pick(rng: np.random.Generator, seq: tuple[str, ...] | list[str]) -> str:
    return seq[int(rng.integers(len(seq)))]


def propose_spec(family: str, scene: Scene, rng: np.random.Generator) -> QuerySpec | None:
    """A random spec of ``family`` whose references exist in the scene (validity checked later)."""
    objs = scene.objects
    if not objs:
        return None
    cats = sorted({o.category for o in objs})
    if family == "count":
        cat = _pick(rng, cats)
        color = _pick(rng, sorted({o.color for o in matches(scene, cat)})) if rng.random() < 0.3 else None
        return QuerySpec("count", category=cat, color=color)
    if family == "exist":
        cat = _pick(rng, list(CATEGORIES))
        color = _pick(rng, list(COLORS))
        if rng.random() < 0.5:
            present = objs[int(rng.integers(len(objs)))]
            cat, color = present.category, present.color
        return QuerySpec("exist", category=cat, color=color)
    n_refs = {"count_rel": 1, "color": 1, "color_yesno": 1, "superlative_choice": 3, "stack_compare": 3,
              "stack_height": 3}.get(family, 2)
    if len(objs) < n_refs:
        return None
    chosen = [objs[i] for i in rng.permutation(len(objs))[:n_refs]]
    if family == "fit_under":
        tables = [o for o in objs if o.category == "table"]
        others = [o for o in objs if o.category != "table"]
        if not tables or not others:
            return None
        chosen = [others[int(rng.integers(len(others)))], tables[int(rng.integers(len(tables)))]]
    if family in ("size_ratio", "size_ref"):  # ask about the bigger object relative to the smaller one
        attr = _pick(rng, SIZE_ATTRS)
        chosen = sorted(chosen, key=lambda o: -_size(o, attr))
        if family == "size_ref" and rng.random() < 0.5:
            chosen.reverse()
    refs = [random_ref(o, scene, rng, with_color=family not in ("color", "color_yesno")) for o in chosen]
    if any(r is None for r in refs):
        return None
    refs_t = tuple(r for r in refs if r is not None)
    if family not in ("size_ratio", "size_ref"):
        attr = _pick(rng, SIZE_ATTRS)
    if family == "count_rel":
        cat = _pick(rng, cats)
        return QuerySpec("count_rel", refs_t, relation=_pick(rng, ("left of", "right of")), category=cat)
    if family == "rel2d":
        return QuerySpec("rel2d", refs_t, relation=_pick(rng, REL2D))
    if family == "depth":
        return QuerySpec("depth", refs_t, relation=_pick(rng, RELDEPTH))
    if family in ("depth_choice", "size_choice", "superlative_choice"):
        return QuerySpec(family, refs_t, attribute=attr if family == "size_choice" else None,
                         options=tuple(r.noun() for r in refs_t))
    if family in ("size_compare", "size_ratio"):
        return QuerySpec(family, refs_t, attribute=attr)
    if family == "size_ref":
        return QuerySpec(family, refs_t, attribute=attr, value=round(_size(chosen[0], attr), 2))
    if family == "stack_height":
        return QuerySpec(family, refs_t, value=round(chosen[2].height, 2))
    if family == "color":
        return QuerySpec("color", refs_t)
    if family == "color_yesno":
        color = chosen[0].color if rng.random() < 0.5 else _pick(rng, list(COLORS))
        return QuerySpec("color_yesno", refs_t, color=color)
    if family in ("stack_compare", "fit_under"):
        return QuerySpec(family, refs_t)
    raise QueryError(f"unknown family {family!r}")


def sample_query(scene: Scene, rng: np.random.Generator, families: list[str] | tuple[str, ...],
                 tries: int = 40) -> Query | None:
    """A well-posed query from one of ``families`` with its true answer (None if none was found)."""
    for _ in range(tries):
        family = _pick(rng, families)
        spec = propose_spec(family, scene, rng)
        if spec is None:
            continue
        if spec.family == "size_ref" and spec.value is not None:
            spec = QuerySpec(**{**spec.__dict__, "value": float(spec.value)})
        try:
            answer, answer_type, ids = answer_query(spec, scene)
        except QueryError:
            continue
        return Query(query_text(spec), answer, answer_type, spec, ids)
    return None
