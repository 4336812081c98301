"""Scoring rules, pinned by tables of cases: our strict mode, the authors' released rules (paper mode), and the
cases where the two differ because of a defect in the authors' rules."""

import math

import pytest

from valor_lib.evaluation.metrics import (
    MRA_THRESHOLDS,
    match_option,
    mra,
    parse_number,
    parse_yes_no,
    score,
)

COUNT_OPTIONS = ("1", "2", "3", "4")
YES_NO = ("yes", "no")
SIDES = ("left", "right")


def test_mra_thresholds_are_the_papers():
    assert MRA_THRESHOLDS == (0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05)


@pytest.mark.parametrize("pred, gt, expected", [
    (1.0, 1.0, 1.0),
    (1.04, 1.0, 1.0),          # within every threshold
    (1.2, 1.0, 0.7),           # error 0.2: below 0.5 ... 0.2
    (0.8, 1.0, 0.7),
    (1.3, 1.0, 0.4),           # error 0.3 is not < 0.3
    (1.5, 1.0, 0.0),           # error 0.5 is not < 0.5
    ("1.2 meters", 1.0, 0.7),  # units after the number are fine
    (-1.1, -1.0, 0.8),         # negative ground truth: relative to |gt|
    (0, 0, 1.0),               # gt = 0 is guarded: only an exact 0 counts
    (0.01, 0, 0.0),
    (None, 1.0, 0.0),
    ("about one or two", 1.0, 0.0),
    (True, 1.0, 0.0),          # a boolean is not a measurement
    (math.nan, 1.0, 0.0),
    (math.inf, 1.0, 0.0),
])
def test_mra(pred, gt, expected):
    assert mra(pred, gt) == pytest.approx(expected)


@pytest.mark.parametrize("value, expected", [
    (3, 3.0), (3.0, 3.0), ("3", 3.0), ("3.0", 3.0), (" 3. ", 3.0), ("three", 3.0), ("Three.", 3.0),
    ("3 chairs", 3.0), ("There are three chairs.", 3.0), ("1,000", 1000.0), ("-0.5", -0.5), (".5 m", 0.5),
    ("1.5m", 1.5), ("3 or 4", None), ("three (3)", 3.0), ("", None), ("none", 0.0), (True, None),
    ([3], None), (None, None), ("a lot", None),
])
def test_parse_number(value, expected):
    assert parse_number(value) == expected


@pytest.mark.parametrize("value, expected", [
    (True, "yes"), (False, "no"), ("yes", "yes"), ("Yes.", "yes"), ("NO", "no"), ("True", "yes"),
    ("false", "no"), ("No, it is not.", "no"), ("yes and no", None), ("maybe", None), ("not true", None),
    (1, None), ("", None), (None, None),
])
def test_parse_yes_no(value, expected):
    assert parse_yes_no(value) == expected


@pytest.mark.parametrize("value, options, expected", [
    ("red chair", ("red chair", "box"), 0), ("The red chair.", ("red chair", "box"), 0), ("B", ("red chair", "box"), 1),
    ("(b)", ("red chair", "box"), 1), ("b.", ("red chair", "box"), 1), ("C", ("red chair", "box"), None),
    (2, COUNT_OPTIONS, 1), ("two", COUNT_OPTIONS, 1), (True, YES_NO, 0), ("No, it is not", YES_NO, 1),
    ("chair", ("red chair", "box"), None), ("", ("a", "b"), None), (None, ("a", "b"), None),
])
def test_match_option(value, options, expected):
    assert match_option(value, options) == expected


# (benchmark, prediction, ground truth as our loaders give it, answer type, options, strict, paper)
# For paper mode the ground truth is what the authors' harness passed (see benchmarks.paper_answer):
# Omni3D-Bench answers are strings; VSR passes the 0/1 label.
CASES = [
    # counting: numbers read robustly in strict mode; the authors cast with int()
    ("tallyqa", 3, 3, "int", (), 1, 1),
    ("tallyqa", "3", 3, "int", (), 1, 1),
    ("tallyqa", "3.0", 3, "int", (), 1, 0),          # int("3.0") raises
    ("tallyqa", 3.0, 3, "int", (), 1, 1),
    ("tallyqa", "three", 3, "int", (), 1, 0),
    ("tallyqa", "3 chairs", 3, "int", (), 1, 0),
    ("tallyqa", "3 or 4", 3, "int", (), 0, 0),
    ("tallyqa", 3.7, 3, "int", (), 0, 1),            # DEFECT: int() truncates 3.7 to 3
    ("tallyqa", True, 1, "int", (), 0, 1),           # DEFECT: True == 1
    ("tallyqa", None, 0, "int", (), 0, 1),           # DEFECT: a missing answer counts as 0
    ("tallyqa", "", 0, "int", (), 0, 1),             # DEFECT: so does an empty one
    ("countbenchqa", 7, 7, "int", (), 1, 1),
    ("countbenchqa", "seven", 7, "int", (), 1, 0),
    ("countbenchqa", 7.9, 7, "int", (), 0, 1),       # DEFECT: truncation
    # yes/no
    ("vsr", True, 1, "yes/no", (), 1, 1),
    ("vsr", "Yes.", 1, "yes/no", (), 1, 1),
    ("vsr", "No, it is not.", 0, "yes/no", (), 1, 1),
    ("vsr", "not true", 0, "yes/no", (), 0, 0),      # DEFECT: "true" inside counts as yes (wrong here, gt no)
    ("vsr", "not true", 1, "yes/no", (), 0, 1),      # DEFECT: ... and right when the label is 1
    ("vsr", 1, 1, "yes/no", (), 0, 1),               # an integer is not a yes/no answer in strict mode
    ("vsr", None, 0, "yes/no", (), 0, 0),
    ("robospatial", "Yes", "yes", "yes/no", (), 1, 1),
    ("robospatial", "False", "no", "yes/no", (), 1, 1),
    ("robospatial", None, "no", "yes/no", (), 0, 1),     # DEFECT: anything that is not a yes counts as no
    ("robospatial", "maybe", "no", "yes/no", (), 0, 1),  # DEFECT
    ("robospatial", "", "no", "yes/no", (), 0, 1),       # DEFECT
    # multiple choice: the ground truth is the option text
    ("blink", "2", "2", "choice", COUNT_OPTIONS, 1, 1),
    ("blink", 2, "2", "choice", COUNT_OPTIONS, 1, 1),
    ("blink", "B", "2", "choice", COUNT_OPTIONS, 1, 0),   # letters are not read by the authors
    ("blink", "(b)", "2", "choice", COUNT_OPTIONS, 1, 0),
    ("blink", 2.6, "2", "choice", COUNT_OPTIONS, 0, 1),   # DEFECT: truncation
    ("blink", True, "yes", "choice", YES_NO, 1, 0),       # the authors turn True into "1"
    ("blink", "Yes", "yes", "choice", YES_NO, 1, 1),
    ("blink", "", "yes", "choice", YES_NO, 0, 0),
    ("realworldqa", "left", "left", "choice", SIDES, 1, 1),
    ("realworldqa", "A", "left", "choice", SIDES, 1, 0),
    ("realworldqa", "", "left", "choice", SIDES, 0, 1),          # DEFECT: "" is a substring of everything
    ("realworldqa", "ef", "left", "choice", SIDES, 0, 1),        # DEFECT: substring
    ("realworldqa", "3", 13, "int", (), 0, 1),                   # DEFECT: "3" in "13"
    ("realworldqa", "No.", "no", "yes/no", (), 1, 1),
    # Omni3D-Bench, by the authors' answer types int / float / str
    ("omni3d-bench", 2, "2", "int", (), 1, 1),
    ("omni3d-bench", "2.0", "2", "int", (), 1, 0),
    ("omni3d-bench", 2.9, "2", "int", (), 0, 1),                 # DEFECT: truncation
    ("omni3d-bench", 1.2, "1.0", "float", (), 0.7, 0.7),
    ("omni3d-bench", "1.2 m", "1.0", "float", (), 0.7, 0),       # float("1.2 m") raises
    ("omni3d-bench", 0.0, "0", "float", (), 1, 0),               # gt = 0: division by zero in theirs
    ("omni3d-bench", "yes", "yes", "yes/no", (), 1, 1),
    ("omni3d-bench", "", "yes", "yes/no", (), 0, 1),             # DEFECT: empty answer is right
    ("omni3d-bench", "yes and no", "no", "yes/no", (), 0, 1),    # DEFECT: substring
    ("omni3d-bench", True, "yes", "yes/no", (), 1, 1),
    ("omni3d-bench", "tv stand", "tv", "str", (), 0, 1),         # DEFECT: "tv" in "tv stand"
    ("omni3d-bench", "", "tv", "str", (), 0, 1),                 # DEFECT
    ("omni3d-bench", "The TV.", "tv", "str", (), 1, 1),
    ("omni3d-bench", "tv", "tv", "choice", ("tv", "tv stand"), 1, 1),
    ("omni3d-bench", "B", "tv stand", "choice", ("tv", "tv stand"), 1, 0),
    ("omni3d-bench", "South", "S", "str", (), 1, 1),             # compass answers: first letter in theirs
    ("omni3d-bench", "s", "S", "str", (), 1, 0),
    ("omni3d-bench", None, "S", "str", (), 0, 0),
]


@pytest.mark.parametrize("bench, pred, gt, answer_type, options, strict, paper", CASES)
def test_score_table(bench, pred, gt, answer_type, options, strict, paper):
    strict_gt = ("yes" if gt == 1 else "no") if bench == "vsr" else gt
    assert score(bench, pred, strict_gt, answer_type, "strict", options=options) == pytest.approx(strict)
    assert score(bench, pred, gt, answer_type, "paper", options=options) == pytest.approx(paper)


def test_every_defect_case_is_wrong_in_strict_mode_and_right_in_paper_mode():
    """The authors' defects over-credit: wherever the modes disagree on a wrong answer, paper mode is higher."""
    lenient = [c for c in CASES if c[6] > c[5]]
    assert len(lenient) >= 15
    assert all(c[5] == 0 for c in lenient)


@pytest.mark.parametrize("pred, gt, judged, strict, paper", [
    ("couch", "sofa", True, 1, 1),       # the judge accepts synonyms
    ("couch", "sofa", False, 0, 0),
    ("couch", "sofa", None, 0, 0),       # not judged: strict needs an exact match; paper falls back to substring
    ("Sofa.", "sofa", None, 1, 0),       # exact after normalisation
    ("so", "sofa", None, 0, 1),          # DEFECT of the judge-less released version: substring
    ("", "sofa", None, 0, 0),
    (None, "sofa", True, 0, 1),          # strict never credits a missing answer
])
def test_gqa(pred, gt, judged, strict, paper):
    assert score("gqa", pred, gt, "str", "strict", judged=judged) == strict
    assert score("gqa", pred, gt, "str", "paper", judged=judged) == paper


def test_answer_type_is_inferred_per_benchmark():
    assert score("tallyqa", "3", 3) == 1.0
    assert score("vsr", "yes", "yes") == 1.0
    assert score("blink", "B", "2", options=COUNT_OPTIONS) == 1.0
    assert score("realworldqa", "no", "No") == 1.0
    assert score("gqa", "blue", "blue") == 1.0


@pytest.mark.parametrize("call, message", [
    (lambda: score("coco", 1, 1), "unknown benchmark"),
    (lambda: score("tallyqa", 1, 1, mode="lenient"), "mode must be"),
    (lambda: score("tallyqa", 1, 1, answer_type="count"), "unknown answer type"),
])
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()
