"""Scoring (contract): :func:`mra` and :func:`score` in two modes.

``mode="strict"`` (our default) checks that the prediction *is* the answer:

- numbers are read robustly (``3``, ``3.0``, ``"3"``, ``"three"``, ``"3 chairs"``); a text holding two
  different numbers is no answer; booleans are never numbers;
- ``int``: the number read must equal the integer ground truth;
- ``float``: MRA, the mean over thresholds t in {0.50, 0.45, ..., 0.05} of ``|pred - gt| / |gt| < t``
  (gt = 0 counts only an exact 0);
- ``yes/no``: ``True``/``False`` or a text that starts with yes/no/true/false (``"Yes."``, ``"no, it is not"``);
- ``choice``: the option text (case, articles and end punctuation aside), the option letter (``"B"``,
  ``"(b)"``), or for numeric options the number;
- ``str``: normalised exact match (lower case, no articles or end punctuation; numbers compared as numbers);
- GQA: a normalised exact match, or an equivalence verdict of the LLM judge (``judged=True``);
- ``None``, ``""`` and unparseable predictions are wrong.

``mode="paper"`` reproduces the rules of the authors' released ``eval/metrics.py`` (see
``notes/dataset_schemas.md`` §10), defects included: substring matching in both directions (so an empty answer
is right on every yes/no and choice question of Omni3D-Bench and RealWorldQA), ``int()`` truncation, a missing
TallyQA answer read as 0, anything that is not a yes on RoboSpatial read as "no", and any exception scored 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from numbers import Real
from typing import Any

from valor_lib.evaluation.records import ANSWER_TYPES, BENCHMARKS

MRA_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 - 0.05 * i, 2) for i in range(10))
MODES = ("strict", "paper")

_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
          "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
NUMBER_WORDS: dict[str, int] = {w: i for i, w in enumerate(_UNITS)}
NUMBER_WORDS.update({"no": 0, "none": 0, "a dozen": 12, "dozen": 12})
COMPASS = {"n": "north", "s": "south", "e": "east", "w": "west"}
_YES, _NO = ("yes", "true"), ("no", "false")
_NUMBER_TOKEN = re.compile(
    r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?(?![\d])|(?<![\w.])[-+]?\.\d+(?![\d])"
)
_WORD_TOKEN = re.compile(r"\b(" + "|".join(sorted((w for w in NUMBER_WORDS if w not in ("no", "none")),
                                                   key=len, reverse=True)) + r")\b")
_POLAR = re.compile(r"^(yes|no|true|false)(?:$|[\s]*[.,!;:])")
_LETTER = re.compile(r"^\(?([a-j])\)?[.:)]?$")
_EDGE_PUNCT = " \t\n\r.,;:!?\"'`"
_ARTICLE = re.compile(r"^(?:the|a|an)\s+")

# Default answer types of benchmarks with a single one (others must be given, or are inferred from gt).
BENCHMARK_ANSWER_TYPES = {"tallyqa": "int", "countbenchqa": "int", "robospatial": "yes/no", "vsr": "yes/no",
                          "blink": "choice"}


# ---------------------------------------------------------------- reading predictions


def normalize_text(value: Any) -> str:
    """Lower case, single spaces, no surrounding quotes or end punctuation, no leading article."""
    text = " ".join(str(value).lower().split()).strip(_EDGE_PUNCT)
    return _ARTICLE.sub("", text).strip(_EDGE_PUNCT)


def parse_number(value: Any) -> float | None:
    """The single number a prediction states, or None (booleans, lists, no number or several different ones)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if not isinstance(value, str):
        return None
    text = " ".join(value.lower().split()).strip(" \"'`").rstrip(_EDGE_PUNCT)
    if text in NUMBER_WORDS:
        return float(NUMBER_WORDS[text])
    found = {float(m.group(0).replace(",", "")) for m in _NUMBER_TOKEN.finditer(text)}
    found |= {float(NUMBER_WORDS[m.group(1)]) for m in _WORD_TOKEN.finditer(text)}
    if len(found) != 1:
        return None
    number = found.pop()
    return number if math.isfinite(number) else None


def parse_yes_no(value: Any) -> str | None:
    """``"yes"``/``"no"`` from a bool or a text that starts with yes/no/true/false, else None."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, str):
        return None
    match = _POLAR.match(" ".join(value.lower().split()).strip(" \"'`"))
    if match is None:
        return None
    return "yes" if match.group(1) in _YES else "no"


def match_option(value: Any, options: Sequence[str]) -> int | None:
    """Index of the option a prediction names (text, letter, yes/no or number), else None."""
    if value is None or isinstance(value, list | dict | tuple):
        return None
    normalized = [normalize_text(o) for o in options]
    text = ("yes" if value else "no") if isinstance(value, bool) else normalize_text(value)
    if not text:
        return None
    if text in normalized:
        return normalized.index(text)
    polar = parse_yes_no(value)
    if polar is not None and polar in normalized:
        return normalized.index(polar)
    letter = _LETTER.match(" ".join(str(value).lower().split()))
    if letter and not isinstance(value, bool) and "abcdefghij".index(letter.group(1)) < len(options):
        return "abcdefghij".index(letter.group(1))
    number = parse_number(value)
    if number is not None:
        numeric = [parse_number(o) for o in options]
        hits = [i for i, n in enumerate(numeric) if n is not None and n == number]
        if len(hits) == 1:
            return hits[0]
    return None


# ---------------------------------------------------------------- scores


def mra(pred: Any, gt: Any) -> float:
    """Mean relative accuracy over :data:`MRA_THRESHOLDS`; 0 for unreadable predictions; gt = 0 needs pred = 0."""
    p, g = parse_number(pred), parse_number(gt)
    if p is None or g is None:
        return 0.0
    if g == 0:
        return 1.0 if p == 0 else 0.0
    error = abs(p - g) / abs(g)
    return sum(error < t for t in MRA_THRESHOLDS) / len(MRA_THRESHOLDS)


def infer_answer_type(benchmark: str, gt: Any) -> str:
    """The answer type of a ground truth when the caller did not give one."""
    if benchmark in BENCHMARK_ANSWER_TYPES:
        return BENCHMARK_ANSWER_TYPES[benchmark]
    if isinstance(gt, bool) or normalize_text(gt) in ("yes", "no"):
        return "yes/no"
    if isinstance(gt, int) or (isinstance(gt, str) and re.fullmatch(r"[-+]?\d+", gt.strip())):
        return "int"
    if isinstance(gt, float):
        return "float"
    return "str"


def _strict(benchmark: str, pred: Any, gt: Any, answer_type: str, options: Sequence[str],
            judged: bool | None) -> float:
    if pred is None or (isinstance(pred, str) and not pred.strip()):
        return 0.0
    if answer_type == "float":
        return mra(pred, gt)
    if answer_type == "int":
        number, target = parse_number(pred), parse_number(gt)
        return float(number is not None and target is not None and number == target and number == round(number))
    if answer_type == "yes/no":
        exact = parse_yes_no(pred) is not None and parse_yes_no(pred) == parse_yes_no(gt)
    elif answer_type == "choice" and options:
        index = match_option(pred, options)
        exact = index is not None and normalize_text(options[index]) == normalize_text(gt)
    else:
        exact = _same_text(pred, gt)
    if benchmark == "gqa":
        return float(exact or judged is True)
    return float(exact)


def _same_text(pred: Any, gt: Any) -> bool:
    if isinstance(pred, list | dict | tuple | bool):
        return False
    p, g = normalize_text(pred), normalize_text(gt)
    if not p:
        return False
    if g in COMPASS and p in (g, COMPASS[g]):
        return True
    pn, gn = parse_number(p), parse_number(g)
    if gn is not None and re.fullmatch(r"[-+]?[\d.,]+", g):
        return pn is not None and pn == gn
    return p == g


def _paper_omni3d(pred: Any, gt: Any, answer_type: str) -> float:
    """The authors' Omni3D-Bench rule for their answer types int / float / str."""
    if isinstance(pred, bool):
        pred = "yes" if pred else "no"
    if answer_type == "int":
        return float(int(pred) == int(gt))
    if answer_type == "float":
        hits = 0
        for threshold in MRA_THRESHOLDS:
            try:
                p, g = float(pred), float(gt)
            except (TypeError, ValueError):
                continue
            hits += abs(g - p) / g < threshold
        return hits / len(MRA_THRESHOLDS)
    gt = str(gt)
    if gt in ("S", "E", "N", "W"):
        return float(gt == pred[0])
    return float(gt in pred.lower() or pred.lower() in gt)


def _paper(benchmark: str, pred: Any, gt: Any, answer_type: str, judged: bool | None) -> float:
    if benchmark == "omni3d-bench":
        return _paper_omni3d(pred, gt, {"yes/no": "str", "choice": "str"}.get(answer_type, answer_type))
    if benchmark == "robospatial":
        said = "yes" if (isinstance(pred, bool) and pred) else "no"
        if isinstance(pred, str):
            said = "yes" if "yes" in pred.lower() or "true" in pred.lower() else "no"
        return float(said == str(gt).lower())
    if benchmark == "countbenchqa":
        return float(int(pred) == int(gt))
    if benchmark == "tallyqa":
        return float(int(pred or 0) == int(gt))
    if benchmark == "vsr":
        label = gt if isinstance(gt, int) else int(str(gt).lower() == "yes")  # their gt is the 0/1 label
        if isinstance(pred, bool):
            pred = int(pred)
        elif isinstance(pred, str):
            pred = int("yes" in pred.lower() or "true" in pred.lower())
        return float(pred == label)
    if benchmark == "realworldqa":
        return float(str(pred).rstrip(".,").lower() in str(gt).rstrip(".,").lower())
    if benchmark == "blink":
        try:
            said = str(int(pred)).lower()
        except (TypeError, ValueError, OverflowError):
            said = str(pred).lower()
        return float(said == gt)
    if benchmark == "gqa":
        if judged is not None:
            return float(judged)
        p, g = str(pred).strip().lower(), str(gt).strip().lower()  # the judge-less released version
        return float(bool(p) and bool(g) and p in g)
    raise ValueError(f"unknown benchmark {benchmark!r}")


def score(benchmark: str, pred: Any, gt: Any, answer_type: str | None = None, mode: str = "strict", *,
          options: Sequence[str] = (), judged: bool | None = None) -> float:
    """Score one prediction in [0, 1] (module docstring).

    ``options`` lists a multiple-choice question's options (letters map to them in strict mode); ``judged`` is
    the GQA judge's verdict for this prediction (True: equivalent, False: not, None: not judged or failed).
    """
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARKS}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    answer_type = answer_type or infer_answer_type(benchmark, gt)
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer type {answer_type!r}; expected one of {ANSWER_TYPES}")
    if mode == "strict":
        return _strict(benchmark, pred, gt, answer_type, options, judged)
    try:
        return _paper(benchmark, pred, gt, answer_type, judged)
    except Exception:  # the authors' harness scores any exception as wrong
        return 0.0
