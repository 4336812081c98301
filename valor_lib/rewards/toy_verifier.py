"""The toy LLM verifier (``toy:verifier``): reads the real verifier prompts and judges them with rules.

It receives exactly the request a real verifier model would get, finds the head and the inputs in the prompt
text (:func:`~valor_lib.rewards.prompts.read_prompt`), and answers in the verdict format the prompts ask for.
It never sees answers or scenes: the query's requirements come from its text
(:mod:`valor_lib.rewards.toy_requirements`).

Rules, per head (words matched case-insensitively; plans follow the shared vocabulary: numbered steps, noun
phrases for objects, spatial words as in the query, "depth" and "3D" for real-world sizes):

- **spatial**: each relation of the query (left of, right of, above, below, in front of, behind, closer,
  farther, leftmost, rightmost, closest, farthest) is named in the plan outside quoted answer options;
  relations judged in depth also need the word "depth", and fail when distance is judged by box area.
- **attribute**: each colour that picks out an object is named (and no colour the query does not use), and checked with a yes/no question rather
  than an open "what color" one; a colour question is answered with a visual question; each real-world size
  is the right dimension (height for tall, width for wide) and the plan works in 3D ("depth" and "3D",
  "real" or "metric").
- **logic**: at least two numbered steps; every object category of the query is named and no other; objects are detected
  before anything is measured or compared; the last step produces the answer in the form asked (yes/no, one
  of the options, a number, a colour); the spatial and attribute rules hold (a plan that drops a relation or
  measures the wrong thing does not answer the question); and no step runs the wrong way: an x/y comparison
  opposite to the relation, a final answer picking the farther object for a "closer" question (or the
  reverse), the smaller object for a "which is bigger" question, a ratio divided the wrong way round, a stack
  whose heights are never added, a fit-under check with only one dimension, a visual question about the
  whole image instead of the object.
- **adherence**: the code sets ``final_answer``; it detects exactly the object categories the plan names, with
  the plan's colours; it calls ``depth`` if and only if the plan uses depth, ``vqa`` if and only if the plan
  asks a visual question, and asks the plan's quoted questions; it does not ask ``vqa`` about the whole image
  or compare box areas unless the plan says so; 3D sizes in the plan are scaled by depth in the code;
  superlatives in the plan appear as min/max/sorting by position or depth (not by detector score), position
  comparisons as ``<``/``>``, counts as len/sum, ratios as a division.

The rules read text only, so they miss what text does not show (a flipped comparison operator in otherwise
faithful code, a width used where the plan says height); the verifier error analysis (notebook 03) measures
how often they disagree with labels from what programs actually compute.

With ``error_rate`` > 0 a verdict is flipped with that probability, and with ``garble_rate`` > 0 the reply
omits the verdict line (an unparsable answer). Both draws are deterministic per request: a hash of the
seed, the sample index and the prompt text, so reruns reproduce and retries (new sample index) differ.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re

from valor_lib.clients import ChatRequest, register_toy_brain
from valor_lib.rewards.prompts import PromptReading, format_verdict, read_prompt
from valor_lib.rewards.toy_requirements import (
    RELATION_AXES,
    RELATION_WORDS,
    Requirements,
    categories_in,
    colors_in,
    requirements,
)

Verdict = tuple[bool, str]

_STEP = re.compile(r"^\s*(?:step\s*)?(\d+)\s*[.):]", re.IGNORECASE | re.MULTILINE)
_DETECT_WORDS = ("detect", "locate", "find", "gd_detect")
_MEASURE_WORDS = ("depth", "compare", "count", "measure", "height", "width", "ratio", "vqa", "ask")
_ANSWER_WORDS = ("answer", "return", "final", "report", "output")
_NUMBER_WORDS = ("count", "number", "ratio", "divide", "sum", "add", "meters", "metres", "height", "width",
                 "scale", "multiply", "how many")
_VQA_WORDS = ("vqa", "visual question", "ask whether", "ask if", "ask what", "ask the")
_SUPERLATIVE_WORDS = ("leftmost", "rightmost", "closest", "nearest", "farthest", "largest", "smallest", "tallest")
_REAL_WORDS = ("3d", "real", "metric", "meters", "metres")
_AREA = re.compile(r"\[2\]\s*-\s*\w+\[0\]\s*\)\s*\*\s*\(\s*\w+\[3\]|\[3\]\s*-\s*\w+\[1\]\s*\)\s*\*\s*\(\s*\w+\[2\]")
_SCALED = re.compile(r"\*\s*(depth\s*\(|d_\w+|dep\w*|z_?\w*)|(depth\s*\([^)]*\)|d_\w+)\s*\*")


def _has(text: str, *words: str) -> bool:
    return any(w in text for w in words)


def _steps(plan: str) -> list[str]:
    """The plan's numbered steps (the text of each), or its non-empty lines when it is not numbered."""
    marks = list(_STEP.finditer(plan))
    if not marks:
        return [line.strip() for line in plan.splitlines() if line.strip()]
    bounds = [m.start() for m in marks] + [len(plan)]
    return [plan[a:b].strip() for a, b in itertools.pairwise(bounds)]


# ---------------------------------------------------------------- head rules


def judge_spatial(req: Requirements, plan: str) -> Verdict:
    text = re.sub(r'"[^"]*"', " ", plan.lower())  # an answer option naming "the leftmost chair" handles nothing
    missing = [r for r in req.relations if not _has(text, *RELATION_WORDS[r])]
    if missing:
        return False, f"The plan never addresses the relation '{missing[0]}' from the question."
    no_depth = [r for r in req.relations if RELATION_AXES[r] == "depth" and "depth" not in text]
    if no_depth:
        return False, f"The relation '{no_depth[0]}' is about distance from the camera, but the plan never uses depth."
    if any(RELATION_AXES[r] == "depth" for r in req.relations) and _has(text, " area", "bigger box", "larger box"):
        return False, "The plan judges distance from the camera by box size instead of depth."
    if not req.relations:
        return True, "The question has no spatial relation to handle."
    return True, f"The plan handles {', '.join(repr(r) for r in req.relations)} with the right comparisons."


def judge_attribute(req: Requirements, plan: str) -> Verdict:
    text = plan.lower()
    missing = [c for c in req.colors if c not in colors_in(text)]
    if missing:
        return False, f"The plan ignores the colour '{missing[0]}' that the question uses to pick out an object."
    if not req.asks_color:
        allowed = set(req.colors) | set(colors_in(" ".join(req.options).lower()))
        extra = [c for c in colors_in(text) if c not in allowed]
        if extra:
            return False, f"The plan looks for a {extra[0]} object, but the question names no such colour."
    if req.asks_color and not (_has(text, "color", "colour") and _has(text, *_VQA_WORDS)):
        return False, "The question asks for a colour, but the plan never asks a visual question about it."
    if req.colors and not req.asks_color and _has(text, "what color", "what colour"):
        return False, "The plan checks a colour with an open question instead of a yes/no check."
    for dim in req.sizes:
        words = ("height", "tall") if dim == "height" else ("width", "wide")
        if not _has(text, *words):
            return False, f"The question is about {dim}, but the plan measures another dimension."
    if req.sizes and not ("depth" in text and _has(text, *_REAL_WORDS)):
        return False, "The question asks for a real-world size, but the plan uses pixel sizes without depth."
    if not (req.colors or req.asks_color or req.sizes):
        return True, "The answer depends on no object property beyond the objects themselves."
    return True, "Every property in the question is identified and obtained correctly."


def _answer_form_ok(req: Requirements, text: str) -> bool:
    if req.answer_kind == "yes/no":
        return _has(text, "yes", "no", "true", "false")
    if req.answer_kind == "choice":
        return _has(text, "option", "which", *(o.lower().split()[-1] for o in req.options))
    if req.answer_kind == "number":
        return _has(text, *_NUMBER_WORDS)
    return _has(text, "color", "colour")


def judge_logic(req: Requirements, plan: str) -> Verdict:
    steps = [s.lower() for s in _steps(plan)]
    text = plan.lower()
    if len(steps) < 2:
        return False, "The plan is not broken into steps."
    named = set(categories_in(text))
    missing = [c for c in req.categories if c not in named]
    if missing:
        return False, f"The plan never finds the {missing[0]} that the question refers to."
    extra = [c for c in named if c not in req.categories]
    if extra and req.categories:
        return False, f"The plan reasons about a {extra[0]}, which the question never mentions."
    detect_at = next((i for i, s in enumerate(steps) if _has(s, *_DETECT_WORDS)), None)
    if detect_at is None:
        return False, "The plan never locates the objects it reasons about."
    measure_at = next((i for i, s in enumerate(steps) if _has(s, *_MEASURE_WORDS)), None)
    if measure_at is not None and measure_at < detect_at:
        return False, "The plan measures or compares objects before it has located them."
    if not _has(steps[-1], *_ANSWER_WORDS):
        return False, "The plan does not end by producing the answer."
    if not _answer_form_ok(req, text):
        return False, f"The plan does not produce an answer of the kind asked ({req.answer_kind})."
    for judge in (judge_spatial, judge_attribute):
        passed, reason = judge(req, plan)
        if not passed:
            return False, f"The decomposition does not answer this question: {reason[0].lower()}{reason[1:]}"
    slip = _reasoning_slip(req, steps)
    if slip:
        return False, slip
    return True, "The steps locate the objects, measure what is needed in order, and produce the answer."


_AXIS_DIRECTION = {"left of": ("x", "smaller"), "right of": ("x", "larger"), "above": ("y", "smaller"),
                   "below": ("y", "larger")}
_AXIS_PHRASE = re.compile(r"\b([xy])\b[^.;,]*?\b(smaller|larger|less|greater|lower|higher)\b")
_CLOSE_WORDS, _FAR_WORDS = ("closer", "closest", "nearest", "in front"), ("farther", "farthest", "behind")


def _ref_order(step: str, refs: tuple[str, ...]) -> tuple[int, int] | None:
    """(numerator, denominator) ref indices of an "X divided by Y" step, or None when unclear."""
    if len(set(refs)) != len(refs) or "divided by" not in step:
        return None
    before, after = step.rsplit("divided by", 1)
    last = max(range(len(refs)), key=lambda i: before.rfind(refs[i]))
    first = min(range(len(refs)), key=lambda i: after.find(refs[i]) if refs[i] in after else len(after) + 1)
    if refs[last] not in before or refs[first] not in after:
        return None
    return last, first


def _without_names(text: str, req: Requirements) -> str:
    """A plan step without quoted strings and object names (so "the farthest ball" is no comparison)."""
    text = re.sub(r'"[^"]*"', " ", text)
    for name in sorted(req.refs, key=len, reverse=True):
        text = text.replace(name, " ")
    return text


def _reasoning_slip(req: Requirements, steps: list[str]) -> str | None:
    """A comparison, ratio or combination in the plan that runs the wrong way for this question."""
    text, final = " ".join(steps), steps[-1]
    if req.main_relation in _AXIS_DIRECTION:
        axis, expected = _AXIS_DIRECTION[req.main_relation]
        for found_axis, word in _AXIS_PHRASE.findall(_without_names(text, req)):
            got = "smaller" if word in ("smaller", "less", "lower") else "larger"
            if found_axis == axis and got != expected:
                return (f"For '{req.main_relation}' the {axis} coordinate should be {expected}, but the plan "
                        f"wants it {got}.")
    main = req.main_relation
    if main is not None and RELATION_AXES[main] == "depth":
        answer = _without_names(final, req)
        wrong = _FAR_WORDS if _has(main, *_CLOSE_WORDS) else _CLOSE_WORDS
        if _has(answer, *wrong):
            return f"The question asks about '{main}', but the plan's answer goes the opposite way."
    if req.family in ("size_compare", "size_choice") and _has(final, "smaller", "shorter", "narrower"):
        return "The question asks which is bigger, but the plan answers with the smaller one."
    expected_ratio = {"size_ratio": (0, 1), "size_ref": (1, 0)}.get(req.family or "")
    if expected_ratio and (order := _ref_order(final, req.refs)) is not None and order != expected_ratio:
        return "The plan divides the sizes the wrong way round."
    if req.family in ("stack_compare", "stack_height") and not _has(text, "add", "sum", "plus", "combined"):
        return "The plan never adds up the heights of the stacked objects."
    if req.family == "fit_under" and not (_has(final, "lower", "height") and _has(final, "narrower", "width")):
        return "Fitting underneath needs both the height and the width compared, but the plan checks only one."
    if req.refs and _has(text, "whole image"):
        return "The plan asks about the whole image instead of the object the question is about."
    return None


def _code_literals(code: str) -> list[str]:
    """The string literals of a program (detection prompts, visual questions, dictionary keys)."""
    return [m.group(2) for m in re.finditer(r"([\"'])(.*?)(?<!\\)\1", code)]


def _strip_comments(code: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in code.splitlines())


def judge_adherence(plan: str, code: str) -> Verdict:
    text, body = plan.lower(), _strip_comments(code)
    literals = " ".join(_code_literals(body)).lower()
    if not re.search(r"\bfinal_answer\s*=", body):
        return False, "The program never sets final_answer, so it does not carry out the plan's last step."
    plan_cats = set(categories_in(text))
    code_cats = {c for lit in _code_literals(body) for c in categories_in(lit, prose=False)}
    if plan_cats - code_cats:
        return False, f"The plan finds the {sorted(plan_cats - code_cats)[0]}, but the program never detects it."
    if code_cats - plan_cats:
        return False, f"The program detects a {sorted(code_cats - plan_cats)[0]}, which the plan never mentions."
    missing_colors = set(colors_in(text)) - set(colors_in(literals))
    if missing_colors:
        return False, f"The plan relies on the colour {sorted(missing_colors)[0]}, but the program never checks it."
    calls_depth = re.search(r"\bdepth\s*\(", body) is not None
    if ("depth" in text) != calls_depth:
        return False, ("The plan uses depth but the program never calls depth()." if not calls_depth
                       else "The program calls depth(), which the plan never asks for.")
    calls_vqa = re.search(r"\bvqa\s*\(", body) is not None
    if _has(text, *_VQA_WORDS) != calls_vqa:
        return False, ("The plan asks a visual question but the program never calls vqa()." if not calls_vqa
                       else "The program asks vqa() questions the plan never mentions.")
    asked = [q for q in re.findall(r'"([^"]*\?)"', plan) if q.strip()]
    unasked = [q for q in asked if q.lower() not in literals]
    if calls_vqa and unasked:
        return False, f"The plan asks vqa {unasked[0]!r}, but the program asks something else."
    extreme = [line for line in body.splitlines()
               if re.search(r"\b(min|max|sorted)\s*\(|\.sort\(|argm(in|ax)", line) and "score" not in line]
    if _has(re.sub(r'"[^"]*"', " ", text), *_SUPERLATIVE_WORDS) and not extreme:
        return False, "The plan picks an extreme object, but the program never selects by position or depth."
    if re.search(r"\bvqa\s*\(\s*image\s*,\s*None\b", body) and "whole image" not in text:
        return False, "The plan asks about an object's box, but the program asks vqa about the whole image."
    if _AREA.search(body) and "area" not in text:
        return False, "The program compares box areas, which the plan never mentions."
    if _has(text, "times depth", "3d") and _has(text, "height", "width") and not _SCALED.search(body):
        return False, "The plan computes real-world sizes from depth, but the program never scales by depth."
    if _AXIS_PHRASE.search(text) and not re.search(r"[<>]", body):
        return False, "The plan compares box positions, but the program never compares coordinates."
    if _has(text, "count", "how many", "number of") and not re.search(r"\b(len|sum)\s*\(|\+=\s*1", body):
        return False, "The plan counts objects, but the program never counts."
    if _has(text, "ratio", "divide", "how many times") and "/" not in body:
        return False, "The plan takes a ratio, but the program never divides."
    return True, "The program carries out each step of the plan with the same objects and tools."


def judge(reading: PromptReading) -> Verdict:
    """The rule verdict of one verifier prompt (without injected errors)."""
    if reading.head == "adherence":
        return judge_adherence(reading.plan or "", reading.program or "")
    req = requirements(reading.question or "")
    rule = {"logic": judge_logic, "attribute": judge_attribute, "spatial": judge_spatial}[reading.head]
    return rule(req, reading.plan or "")


# ---------------------------------------------------------------- the brain


class ToyVerifier:
    """Rule-based stand-in for the LLM verifier, with a configurable, reproducible error rate."""

    def __init__(self, error_rate: float = 0.1, garble_rate: float = 0.0, seed: int = 0):
        for label, value in (("error_rate", error_rate), ("garble_rate", garble_rate)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{label} must be in [0, 1], got {value}")
        self.error_rate, self.garble_rate, self.seed = float(error_rate), float(garble_rate), int(seed)
        self.name = f"toy-llm-verifier-v1(error={self.error_rate:g},garble={self.garble_rate:g},seed={self.seed})"

    def _draws(self, request: ChatRequest, text: str) -> tuple[float, float]:
        digest = hashlib.sha256(f"{self.seed}|{request.sample_index or 0}|{text}".encode()).hexdigest()
        rng = random.Random(int(digest[:16], 16))
        return rng.random(), rng.random()

    def __call__(self, request: ChatRequest) -> str:
        text = "\n".join(m.text for m in request.messages)
        reading = read_prompt(text)
        if reading is None:
            return "I could not find a plan or program to review in this message."
        passed, reason = judge(reading)
        flip, garble = self._draws(request, text)
        if garble < self.garble_rate:
            return f"{reason} Overall this looks {'acceptable' if passed else 'problematic'} to me."
        if flip < self.error_rate:
            passed = not passed
            reason = "On balance the work meets the requirement." if passed else "Something here does not hold up."
        return format_verdict(passed, reason)


register_toy_brain("verifier", ToyVerifier)
