"""Response kinds: each template variant is recognised, anything else is 'other', non-toy questions are named."""

from __future__ import annotations

import pytest

from valor_lib.policy.diagnose import CORRECT, OTHER, UNKNOWN, kind_counts, kind_shares, response_kind
from valor_lib.policy.template_programmer import applicable_flaws, write_program
from valor_lib.toyworld.queries import parse_query

QUESTIONS = [
    "Is the leftmost chair to the right of the red table?",
    "If the black sofa is 0.85 meters tall, how tall is the closest lamp in meters?",
    "How many yellow boxes are there in the image?",
    "Which is closer to the camera, the cabinet or the green chair?",
]


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_variant_is_recognised(question: str) -> None:
    assert response_kind(question, write_program(question).text) == CORRECT
    for flaw in applicable_flaws(parse_query(question)):
        assert response_kind(question, write_program(question, flaw).text) == flaw


def test_whitespace_does_not_matter_but_a_wrong_noun_does() -> None:
    question = QUESTIONS[0]
    text = write_program(question).text
    assert response_kind(question, "\n\n" + text.replace("\n", "\n  ") + " ") == CORRECT
    assert response_kind(question, text.replace("table", "sofa")) == OTHER
    assert response_kind(question, None) == OTHER
    assert response_kind(question, "") == OTHER


def test_benchmark_decorations_are_read_like_the_template_programmer() -> None:
    question = QUESTIONS[3] + " Options: {cabinet, green chair}."
    assert response_kind(question, write_program(question).text) == CORRECT


def test_unknown_questions_are_named() -> None:
    assert response_kind("What is the meaning of this picture?", "<plan>\n1. x\n</plan>") == UNKNOWN


def test_shares_per_group() -> None:
    q = QUESTIONS[0]
    base = [{"question": q, "response": write_program(q, "logic_slip").text}] * 3 + [
        {"question": q, "response": write_program(q).text}]
    tuned = [{"question": q, "response": write_program(q).text}] * 3 + [{"question": q, "response": "garbage"}]
    assert kind_counts(base) == {"logic_slip": 3, CORRECT: 1}
    table = kind_shares({"base": base, "tuned": tuned})
    assert list(table.index) == ["base", "tuned"]
    assert table.columns[-1] == OTHER
    assert table.loc["base", "logic_slip"] == 75.0 and table.loc["tuned", CORRECT] == 75.0
    assert table.loc["tuned", "logic_slip"] == 0.0 and table.loc["tuned", OTHER] == 25.0
