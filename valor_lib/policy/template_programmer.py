"""The template programmer: writes a plan and a program for any toy query, correctly or with a realistic flaw.

It reads only the query text (through :func:`valor_lib.toyworld.queries.parse_query`), never a scene. Its
programs are the pretraining data of the toy base policy: a mix of correct programs and programs with the
flaws the paper attributes to pre-trained LLMs (Fig. 3a, A.6.2), so the base policy samples both and GRPO
with the verifier reward has something to fix.

Writing conventions (shared with the toy verifier, which judges plans and programs by rules): numbered plan
steps that name every object by its noun phrase; spatial words as the query writes them; 3D sizes computed as
pixel size x depth, with the plan saying "3D" and "depth"; colour checks through yes/no ``vqa`` questions;
``gd_detect`` prompts that hold only appearance words and nouns; the program sets ``final_answer``. Like the
worked examples of the policy prompt, a program that keeps one box per object first checks that every detection
came back non-empty and otherwise answers a fallback (``no``, 0, ...) instead of crashing on ``max`` of nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from valor_lib.toyworld.queries import QuerySpec, Ref, parse_query
from valor_lib.toyworld.vocab import plural

# name -> what goes wrong (and which reward head should notice)
FLAWS: dict[str, str] = {
    "ignore_superlative": "treats 'the leftmost/rightmost/closest/farthest X' as any X (spatial)",
    "drop_relation": "counts every X, ignoring 'to the left/right of the Y' (spatial)",
    "pixel_size": "uses 2D pixel size where the query asks about 3D size (attribute)",
    "wrong_dimension": "measures width where height is asked, or the reverse (attribute)",
    "drop_color": "ignores the colour the query asks about (attribute)",
    "open_vqa": "asks vqa an open question ('What color ...?') instead of a yes/no check (attribute)",
    "depth_from_2d": "judges distance to the camera by 2D box area instead of depth (spatial)",
    "code_deviates": "the plan is right but the code implements a flawed variant of it (adherence)",
    "logic_slip": "plan and code agree but a comparison or ratio is reversed or a term is dropped (logic)",
}
# the flaw whose code a deviating program carries, in order of preference
_DEVIATIONS = ("pixel_size", "drop_color", "open_vqa", "drop_relation", "depth_from_2d", "ignore_superlative",
               "wrong_dimension", "logic_slip")
_SIZE_FAMILIES = ("size_compare", "size_choice", "size_ref", "size_ratio")
_STACK_FAMILIES = ("stack_compare", "stack_height", "fit_under")
_LOGIC_FAMILIES = ("count_rel", "rel2d", "depth", "depth_choice", "superlative_choice", *_SIZE_FAMILIES,
                   *_STACK_FAMILIES, "color")
_SUPERLATIVE_RULE = {
    "leftmost": ("min", 'd["bbox"][0] + d["bbox"][2]', "smallest bounding box centre x"),
    "rightmost": ("max", 'd["bbox"][0] + d["bbox"][2]', "largest bounding box centre x"),
    "closest": ("min", 'depth(image, d["bbox"])', "smallest depth"),
    "farthest": ("max", 'depth(image, d["bbox"])', "largest depth"),
}
# 2D relation -> (box coordinates summed, comparison, what the plan says it means)
_REL2D_RULE = {
    "left of": ((0, 2), "<", "bounding box centre x is smaller"),
    "right of": ((0, 2), ">", "bounding box centre x is larger"),
    "above": ((1, 3), "<", "bounding box centre y is smaller (higher in the image)"),
    "below": ((1, 3), ">", "bounding box centre y is larger (lower in the image)"),
}
_OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
_CLOSER = ("in front of", "closer to the camera than")
_FLIP = {"<": ">", ">": "<", "min": "max", "max": "min"}


@dataclass(frozen=True)
class WrittenProgram:
    """A response of the template programmer: plan steps, program lines, and the flaw it carries (or None)."""

    question: str
    family: str
    flaw: str | None
    plan: tuple[str, ...]
    code: tuple[str, ...]

    @property
    def text(self) -> str:
        """The response as a policy writes it: a numbered ``<plan>`` and the program in ``<answer>``."""
        steps = "\n".join(f"{i}. {step}" for i, step in enumerate(self.plan, 1))
        return f"<plan>\n{steps}\n</plan>\n<answer>\n" + "\n".join(self.code) + "\n</answer>"


class UnknownQueryError(ValueError):
    """The question is not one the template programmer can read (not a toy-world query)."""


def _noun(ref: Ref) -> str:
    """The detector prompt of a reference: appearance words and the noun, no spatial words."""
    return f"{ref.color} {ref.category}" if ref.color else ref.category


def _name(ref: Ref, keep_superlative: bool = True) -> str:
    """How the plan names a referenced object ("the leftmost red chair")."""
    return (ref if keep_superlative else Ref(ref.category, ref.color)).text()


def _centre(var: str, axes: tuple[int, int]) -> str:
    """Twice a box's centre coordinate along one axis (the halving cancels in comparisons)."""
    return f"{var}[{axes[0]}] + {var}[{axes[1]}]"


def _value(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "1.0"


class _Writer:
    """Plan and code of one query; ``plan_flaw`` shapes the plan and ``code_flaw`` the program."""

    def __init__(self, spec: QuerySpec, plan_flaw: str | None, code_flaw: str | None):
        self.spec, self.pf, self.cf = spec, plan_flaw, code_flaw
        self.plan: list[str] = []
        self.code: list[str] = []
        self.detections: dict[str, str] = {}  # box variable -> the gd_detect line of its candidates

    # ----- objects
    def name(self, ref: Ref) -> str:
        return _name(ref, self.pf != "ignore_superlative")

    def select(self, var: str, ref: Ref) -> None:
        """Detect a referenced object and keep one box (the superlative one when the query says so)."""
        noun = _noun(ref)
        sup = ref.superlative
        if sup and self.pf != "ignore_superlative":
            self.plan.append(f"Detect every {noun} with gd_detect and keep the {sup} one ({_SUPERLATIVE_RULE[sup][2]}).")
        else:
            self.plan.append(f"Detect the {noun} with gd_detect and keep the most confident bounding box.")
        self.detections[var] = f'det_{var} = gd_detect(image, "{noun}")'
        if sup and self.cf != "ignore_superlative":
            pick, key, _ = _SUPERLATIVE_RULE[sup]
            self.code.append(f'{var} = {pick}(det_{var}, key=lambda d: {key})["bbox"]')
        else:
            self.code.append(f'{var} = max(det_{var}, key=lambda d: d["score"])["bbox"]')

    def unselect(self, var: str) -> None:
        """Forget the last selected object (its detection and its box line)."""
        del self.detections[var]
        self.code.pop()

    def program(self, fallback: str) -> tuple[str, ...]:
        """The program lines: the detections, a guard answering ``fallback`` when one came back empty, the rest."""
        if not self.detections:
            return tuple(self.code)
        empty = " or ".join(f"not det_{var}" for var in self.detections)
        guard = [f"if {empty}:", f"    final_answer = {fallback}", "    return"]
        return (*self.detections.values(), *guard, *self.code)

    # ----- sizes
    def attribute(self) -> str:
        attr = self.spec.attribute or "tall"
        return {"tall": "wide", "wide": "tall"}[attr] if self.pf == "wrong_dimension" else attr

    def measure(self, vars_refs: list[tuple[str, Ref]], attr: str = "tall") -> list[str]:
        """Plan a size step for the objects and emit one code line each; returns the size variables."""
        plan_attr = {"tall": "wide", "wide": "tall"}[attr] if self.pf == "wrong_dimension" else attr
        code_attr = {"tall": "wide", "wide": "tall"}[attr] if self.cf == "wrong_dimension" else attr
        word = {"tall": "height", "wide": "width"}
        names = " and ".join(self.name(r) for _, r in vars_refs)
        if self.pf == "pixel_size":
            self.plan.append(f"Measure the pixel {word[plan_attr]} of {names}.")
        else:
            self.plan.append(f"Compute the 3D {word[plan_attr]} of {names} as pixel {word[plan_attr]} times depth.")
        lo, hi = (1, 3) if code_attr == "tall" else (0, 2)
        out = []
        for var, _ in vars_refs:
            size = f"({var}[{hi}] - {var}[{lo}])"
            expr = size[1:-1] if self.cf == "pixel_size" else f"{size} * depth(image, {var})"
            self.code.append(f"{word[code_attr][0]}_{var} = {expr}")
            out.append(f"{word[code_attr][0]}_{var}")
        return out

    def size_word(self) -> str:
        """'3D height' / 'pixel height' (etc.) as the plan calls the measured size."""
        word = {"tall": "height", "wide": "width"}[self.attribute()]
        return f"pixel {word}" if self.pf == "pixel_size" else f"3D {word}"

    # ----- distance to the camera
    def closeness(self, refs: list[tuple[str, Ref]]) -> list[str]:
        """Plan how closeness is judged; return one code expression per object (smaller = closer)."""
        if self.pf == "depth_from_2d":
            self.plan.append("Compare bounding box areas: the larger one is closer to the camera.")
        else:
            self.plan.append("Estimate the depth of each bounding box with depth.")
        if self.cf == "depth_from_2d":
            return [f"-({v}[2] - {v}[0]) * ({v}[3] - {v}[1])" for v, _ in refs]
        return [f"depth(image, {v})" for v, _ in refs]


# ----------------------------------------------------------------------- one writer per query family


def _count(w: _Writer) -> None:
    s = w.spec
    cat, color = s.category or "object", s.color
    if color is None or w.pf == "drop_color":
        w.plan += [f"Detect every {cat} with gd_detect.", f"Answer with the number of detected {plural(cat)}."]
    elif w.pf == "open_vqa":
        w.plan += [f"Detect every {cat} with gd_detect.", f'Ask vqa "What color is the {cat}?" about each bounding box.',
                   f"Answer with the number of bounding boxes where the answer is {color}."]
    else:
        w.plan += [f"Detect every {cat} with gd_detect.",
                   f'Ask vqa the yes/no question "Is the {cat} {color}?" about each bounding box.',
                   "Answer with the number of bounding boxes where vqa says yes."]
    if color is None or w.cf == "drop_color":
        w.code.append(f'final_answer = len(gd_detect(image, "{cat}"))')
        return
    w.code.append(f'boxes = [d["bbox"] for d in gd_detect(image, "{cat}")]')
    if w.cf == "open_vqa":
        w.code.append(f'final_answer = sum(vqa(image, b, "What color is the {cat}?") == "{color}" for b in boxes)')
    else:
        w.code.append(f'final_answer = sum(vqa(image, b, "Is the {cat} {color}?") == "yes" for b in boxes)')


def _count_rel(w: _Writer) -> None:
    s = w.spec
    anchor = s.refs[0]
    noun = f"{s.color} {s.category}" if s.color else (s.category or "object")
    things = f"{s.color} {plural(s.category or 'object')}" if s.color else plural(s.category or "object")
    rel = s.relation or "left of"
    coords, op, meaning = _REL2D_RULE[rel]
    if w.pf == "drop_relation":
        w.plan += [f"Detect every {noun} with gd_detect.", f"Answer with the number of detected {things}."]
    else:
        w.select("a", anchor)
        if w.pf == "logic_slip":
            meaning = _REL2D_RULE[_OPPOSITE[rel]][2]
        w.plan += [f"Detect every {noun} with gd_detect.",
                   f"Answer with the number of {things} {rel} {w.name(anchor)}: those whose {meaning} than its."]
    if w.cf == "drop_relation":
        if w.pf != "drop_relation":
            w.unselect("a")  # a deviating program never uses the anchor it was told to find
        w.code.append(f'final_answer = len(gd_detect(image, "{noun}"))')
        return
    op = _FLIP[op] if w.cf == "logic_slip" else op
    w.code.append(f'boxes = [d["bbox"] for d in gd_detect(image, "{noun}")]')
    w.code.append(f"final_answer = sum({_centre('b', coords)} {op} {_centre('a', coords)} for b in boxes)")


def _exist(w: _Writer) -> None:
    s = w.spec
    cat, color = s.category or "object", s.color or ""
    if w.pf == "drop_color":
        w.plan += [f"Detect every {cat} with gd_detect.", f"Answer yes if any {cat} is found, otherwise no."]
    elif w.pf == "open_vqa":
        w.plan += [f"Detect every {cat} with gd_detect.", f'Ask vqa "What color is the {cat}?" about each bounding box.',
                   f"Answer yes if any answer is {color}, otherwise no."]
    else:
        w.plan += [f"Detect every {cat} with gd_detect.",
                   f'Ask vqa the yes/no question "Is the {cat} {color}?" about each bounding box.',
                   "Answer yes if any bounding box gets yes, otherwise no."]
    w.code.append(f'boxes = [d["bbox"] for d in gd_detect(image, "{cat}")]')
    if w.cf == "drop_color":
        w.code.append('final_answer = "yes" if boxes else "no"')
    elif w.cf == "open_vqa":
        w.code.append(f'found = any(vqa(image, b, "What color is the {cat}?") == "{color}" for b in boxes)')
        w.code.append('final_answer = "yes" if found else "no"')
    else:
        w.code.append(f'found = any(vqa(image, b, "Is the {cat} {color}?") == "yes" for b in boxes)')
        w.code.append('final_answer = "yes" if found else "no"')


def _rel2d(w: _Writer) -> None:
    s = w.spec
    a, b = s.refs[:2]
    rel = s.relation or "left of"
    w.select("a", a)
    w.select("b", b)
    coords, op, meaning = _REL2D_RULE[rel]
    if w.pf == "logic_slip":
        meaning = _REL2D_RULE[_OPPOSITE[rel]][2]
    w.plan.append(f"Answer yes if {w.name(a)} is {rel} {w.name(b)}, i.e. its {meaning}, otherwise no.")
    op = _FLIP[op] if w.cf == "logic_slip" else op
    w.code.append(f'final_answer = "yes" if {_centre("a", coords)} {op} {_centre("b", coords)} else "no"')


def _depth(w: _Writer) -> None:
    s = w.spec
    a, b = s.refs[:2]
    rel = s.relation or "in front of"
    w.select("a", a)
    w.select("b", b)
    da, db = w.closeness([("a", a), ("b", b)])
    closer = rel in _CLOSER
    if w.pf == "logic_slip":
        closer = not closer
    how = "closer to the camera" if closer else "farther from the camera"
    w.plan.append(f"Answer yes if {w.name(a)} is {rel} {w.name(b)} ({how}), otherwise no.")
    op = "<" if rel in _CLOSER else ">"
    op = _FLIP[op] if w.cf == "logic_slip" else op
    w.code.append(f'final_answer = "yes" if {da} {op} {db} else "no"')


def _depth_choice(w: _Writer) -> None:
    a, b = w.spec.refs[:2]
    w.select("a", a)
    w.select("b", b)
    da, db = w.closeness([("a", a), ("b", b)])
    which = "farther" if w.pf == "logic_slip" else "closer"
    w.plan.append(f'Answer "{a.noun()}" if it is {which} to the camera than {w.name(b)}, otherwise "{b.noun()}".')
    op = ">" if w.cf == "logic_slip" else "<"
    w.code.append(f'final_answer = "{a.noun()}" if {da} {op} {db} else "{b.noun()}"')


def _superlative_choice(w: _Writer) -> None:
    refs = list(zip("abc", w.spec.refs[:3], strict=False))
    for var, ref in refs:
        w.select(var, ref)
    exprs = w.closeness(refs)
    which = "farthest" if w.pf == "logic_slip" else "closest"
    w.plan.append(f"Answer with the {which} of the three objects.")
    pick = "max" if w.cf == "logic_slip" else "min"
    items = ", ".join(f'"{ref.noun()}": {e}' for (_, ref), e in zip(refs, exprs, strict=True))
    w.code.append(f"dist = {{{items}}}")
    w.code.append(f"final_answer = {pick}(dist, key=dist.get)")


def _size_pair(w: _Writer) -> tuple[Ref, Ref, str, str]:
    a, b = w.spec.refs[:2]
    w.select("a", a)
    w.select("b", b)
    attr = w.spec.attribute or "tall"
    ha, hb = w.measure([("a", a), ("b", b)], attr)
    return a, b, ha, hb


def _size_compare(w: _Writer) -> None:
    a, b, ha, hb = _size_pair(w)
    bigger = "smaller" if w.pf == "logic_slip" else "larger"
    w.plan.append(f"Answer yes if the {w.size_word()} of {w.name(a)} is {bigger} than that of {w.name(b)}, "
                  "otherwise no.")
    op = "<" if w.cf == "logic_slip" else ">"
    w.code.append(f'final_answer = "yes" if {ha} {op} {hb} else "no"')


def _size_choice(w: _Writer) -> None:
    a, b, ha, hb = _size_pair(w)
    bigger = "smaller" if w.pf == "logic_slip" else "larger"
    w.plan.append(f'Answer "{a.noun()}" if its {w.size_word()} is {bigger} than that of {w.name(b)}, '
                  f'otherwise "{b.noun()}".')
    op = "<" if w.cf == "logic_slip" else ">"
    w.code.append(f'final_answer = "{a.noun()}" if {ha} {op} {hb} else "{b.noun()}"')


def _size_ref(w: _Writer) -> None:
    a, b, ha, hb = _size_pair(w)
    v = _value(w.spec.value)
    num, den = (a, b) if w.pf == "logic_slip" else (b, a)
    w.plan.append(f"Answer with the scaled size: {w.name(b)} measures {v} m times the {w.size_word()} of {w.name(num)} "
                  f"divided by the {w.size_word()} of {w.name(den)}.")
    expr = f"{ha} / {hb}" if w.cf == "logic_slip" else f"{hb} / {ha}"
    w.code.append(f"final_answer = {v} * {expr}")


def _size_ratio(w: _Writer) -> None:
    a, b, ha, hb = _size_pair(w)
    num, den = (b, a) if w.pf == "logic_slip" else (a, b)
    w.plan.append(f"Answer with the {w.size_word()} of {w.name(num)} divided by the {w.size_word()} of "
                  f"{w.name(den)}.")
    w.code.append(f"final_answer = {hb} / {ha}" if w.cf == "logic_slip" else f"final_answer = {ha} / {hb}")


def _color(w: _Writer) -> None:
    a = w.spec.refs[0]
    w.select("a", a)
    question = f"What color is the {a.category}?"
    where = "the whole image" if w.pf == "logic_slip" else "its bounding box"
    w.plan += [f'Ask vqa "{question}" about {where}.', "Answer with the colour vqa returns."]
    box = "None" if w.cf == "logic_slip" else "a"
    w.code.append(f'final_answer = vqa(image, {box}, "{question}")')


def _color_yesno(w: _Writer) -> None:
    a = w.spec.refs[0]
    color = w.spec.color or ""
    w.select("a", a)
    if w.pf == "open_vqa":
        w.plan += [f'Ask vqa "What color is the {a.category}?" about its bounding box.',
                   f"Answer yes if the answer is {color}, otherwise no."]
    else:
        w.plan += [f'Ask vqa the yes/no question "Is the {a.category} {color}?" about its bounding box.',
                   "Answer with the yes or no that vqa returns."]
    if w.cf == "open_vqa":
        w.code.append(f'found = vqa(image, a, "What color is the {a.category}?") == "{color}"')
        w.code.append('final_answer = "yes" if found else "no"')
    else:
        w.code.append(f'final_answer = vqa(image, a, "Is the {a.category} {color}?")')


def _stack(w: _Writer) -> tuple[Ref, Ref, Ref, list[str]]:
    refs = list(zip("abc", w.spec.refs[:3], strict=False))
    for var, ref in refs:
        w.select(var, ref)
    sizes = w.measure(refs, "tall")
    return refs[0][1], refs[1][1], refs[2][1], sizes


def _stack_compare(w: _Writer) -> None:
    a, b, c, (ha, hb, hc) = _stack(w)
    word = w.size_word()
    if w.pf == "logic_slip":
        w.plan.append(f"Answer yes if the {word} of {w.name(a)} is larger than that of {w.name(c)}, otherwise no.")
    else:
        w.plan.append(f"Stack {w.name(a)} on {w.name(b)}: add their {word}s; answer yes if the sum is larger than "
                      f"the {word} of {w.name(c)}, otherwise no.")
    stack = ha if w.cf == "logic_slip" else f"{ha} + {hb}"
    w.code.append(f'final_answer = "yes" if {stack} > {hc} else "no"')


def _stack_height(w: _Writer) -> None:
    a, b, c, (ha, hb, hc) = _stack(w)
    word, v = w.size_word(), _value(w.spec.value)
    if w.pf == "logic_slip":
        w.plan.append(f"Answer with the scaled height: the stack measures {v} m times the {word} of {w.name(a)} divided "
                      f"by the {word} of {w.name(c)}.")
    else:
        w.plan.append(f"Stack {w.name(a)} on {w.name(b)}: add their {word}s; answer with that sum times "
                      f"{v} m divided by the {word} of {w.name(c)}.")
    stack = ha if w.cf == "logic_slip" else f"({ha} + {hb})"
    w.code.append(f"final_answer = {v} * {stack} / {hc}")


def _fit_under(w: _Writer) -> None:
    a, b = w.spec.refs[:2]
    w.select("a", a)
    w.select("b", b)
    if w.pf == "pixel_size":
        w.plan.append(f"Measure the pixel height and pixel width of {w.name(a)} and {w.name(b)}.")
    else:
        w.plan.append(f"Compute the 3D height and 3D width of {w.name(a)} and {w.name(b)} as pixel size times depth.")
    if w.pf == "logic_slip":
        w.plan.append(f"The space under {w.name(b)} is about 85% of its height; answer yes if {w.name(a)} is lower "
                      "than that, otherwise no.")
    else:
        w.plan.append(f"The space under {w.name(b)} is about 85% of its height and 80% of its width; answer yes if "
                      f"{w.name(a)} is lower and narrower than that, otherwise no.")
    if w.cf == "pixel_size":
        w.code.append("d_a, d_b = 1.0, 1.0")
    else:
        w.code.append("d_a, d_b = depth(image, a), depth(image, b)")
    w.code.append("low = (a[3] - a[1]) * d_a < 0.85 * (b[3] - b[1]) * d_b")
    if w.cf == "logic_slip":
        w.code.append('final_answer = "yes" if low else "no"')
    else:
        w.code.append("narrow = (a[2] - a[0]) * d_a < 0.8 * (b[2] - b[0]) * d_b")
        w.code.append('final_answer = "yes" if low and narrow else "no"')


_FAMILY_WRITERS = {
    "count": _count, "count_rel": _count_rel, "exist": _exist, "rel2d": _rel2d, "depth": _depth,
    "depth_choice": _depth_choice, "superlative_choice": _superlative_choice, "size_compare": _size_compare,
    "size_choice": _size_choice, "size_ref": _size_ref, "size_ratio": _size_ratio, "color": _color,
    "color_yesno": _color_yesno, "stack_compare": _stack_compare, "stack_height": _stack_height,
    "fit_under": _fit_under,
}


def _fallback(spec: QuerySpec) -> str:
    """The answer (a Python literal) of a program that found none of an object it needs."""
    f = spec.family
    if f in ("depth_choice", "size_choice"):
        return f'"{spec.refs[1].noun()}"'
    if f == "superlative_choice":
        return f'"{spec.refs[0].noun()}"'
    if f in ("size_ref", "stack_height"):
        return _value(spec.value)
    return {"count_rel": "0", "size_ratio": "1.0", "color": '"unknown"'}.get(f, '"no"')


def applicable_flaws(spec: QuerySpec) -> list[str]:
    """The flaws a program for this query can carry, in a fixed order."""
    f = spec.family
    flaws = []
    if any(r.superlative for r in spec.refs):
        flaws.append("ignore_superlative")
    if f == "count_rel":
        flaws.append("drop_relation")
    if f in _SIZE_FAMILIES or f in _STACK_FAMILIES:
        flaws.append("pixel_size")
    if f in _SIZE_FAMILIES:
        flaws.append("wrong_dimension")
    if (f == "count" and spec.color) or f == "exist":
        flaws.append("drop_color")
    if (f == "count" and spec.color) or f in ("exist", "color_yesno"):
        flaws.append("open_vqa")
    if f in ("depth", "depth_choice", "superlative_choice"):
        flaws.append("depth_from_2d")
    if f in _LOGIC_FAMILIES:
        flaws.append("logic_slip")
    if flaws:
        flaws.append("code_deviates")
    return flaws


def write_program(question: str, flaw: str | None = None) -> WrittenProgram:
    """The plan and program for ``question``, correct (``flaw=None``) or with the named flaw."""
    spec = parse_query(question)
    if spec is None:
        raise UnknownQueryError(f"not a toy-world query: {question!r}")
    if flaw is not None and flaw not in applicable_flaws(spec):
        raise ValueError(f"flaw {flaw!r} does not apply to a {spec.family} query; "
                         f"applicable: {applicable_flaws(spec)}")
    plan_flaw, code_flaw = flaw, flaw
    if flaw == "code_deviates":
        plan_flaw = None
        code_flaw = next(f for f in _DEVIATIONS if f in applicable_flaws(spec))
    writer = _Writer(spec, plan_flaw, code_flaw)
    _FAMILY_WRITERS[spec.family](writer)
    return WrittenProgram(question, spec.family, flaw, tuple(writer.plan), writer.program(_fallback(spec)))


class TemplateProgrammer:
    """Samples programs: correct with probability ``1 - flaw_rate``, else one applicable flaw drawn by weight.

    ``flaw_weights`` gives each flaw's relative weight (missing flaws weigh 1; weight 0 disables one).
    Queries with no applicable flaw always get a correct program.
    """

    def __init__(self, flaw_rate: float, flaw_weights: Mapping[str, float] | None = None):
        if not 0 <= flaw_rate <= 1:
            raise ValueError(f"flaw_rate must be in [0, 1], got {flaw_rate}")
        unknown = set(flaw_weights or {}) - set(FLAWS)
        if unknown:
            raise ValueError(f"unknown flaws {sorted(unknown)}; known: {sorted(FLAWS)}")
        self.flaw_rate = flaw_rate
        self.weights = {name: float((flaw_weights or {}).get(name, 1.0)) for name in FLAWS}

    def choose_flaw(self, question: str, rng: np.random.Generator) -> str | None:
        spec = parse_query(question)
        if spec is None:
            raise UnknownQueryError(f"not a toy-world query: {question!r}")
        options = [f for f in applicable_flaws(spec) if self.weights[f] > 0]
        if not options or rng.random() >= self.flaw_rate:
            return None
        p = np.array([self.weights[f] for f in options])
        return options[int(rng.choice(len(options), p=p / p.sum()))]

    def sample(self, question: str, rng: np.random.Generator) -> WrittenProgram:
        """One program for ``question`` with a flaw drawn from ``rng``."""
        return write_program(question, self.choose_flaw(question, rng))


WRITER_MODES = ("correct", "flawed", "mixed")


class TemplateWriter:
    """The template programmer as a program writer for the evaluation harness (``ProgramWriter``'s interface).

    ``mode``: ``correct`` (the oracle programmer), ``flawed`` (a flaw drawn by weight whenever one applies) or
    ``mixed`` (the pretraining mix, ``flaw_rate``). Questions it cannot read get a program that answers
    "unknown". Sample ``j`` of a call with ``seed`` draws from ``seed + j``.
    """

    def __init__(self, mode: str, flaw_rate: float = 0.5, flaw_weights: Mapping[str, float] | None = None):
        if mode not in WRITER_MODES:
            raise ValueError(f"mode must be one of {WRITER_MODES}, got {mode!r}")
        rate = {"correct": 0.0, "flawed": 1.0, "mixed": flaw_rate}[mode]
        self.mode, self.programmer = mode, TemplateProgrammer(rate, flaw_weights)

    def _one(self, question: str, rng: np.random.Generator) -> str:
        try:
            return self.programmer.sample(question, rng).text
        except UnknownQueryError:
            return ('<plan>\n1. The question is not one I can decompose; answer unknown.\n</plan>\n'
                    '<answer>\nfinal_answer = "unknown"\n</answer>')

    def write(self, questions: list[str], n: int = 1, seed: int | None = None) -> list[list[str]]:
        rngs = [np.random.default_rng([seed or 0, j]) for j in range(n)]
        return [[self._one(q, rng) for rng in rngs] for q in questions]

    def identity(self) -> dict[str, object]:
        """Names the writer in prediction-cache keys, by the content of the code that writes its programs."""
        from valor_lib.evaluation.fingerprint import module_digest

        code = [module_digest(module) for module in (__name__, "valor_lib.toyworld.queries")]
        return {"writer": "template-programmer", "code": code, "mode": self.mode,
                "flaw_rate": self.programmer.flaw_rate, "weights": self.programmer.weights}
