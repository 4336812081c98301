"""Benchmark phrasings of toy queries: the forms the evaluated benchmarks use, read back to the same query."""

import numpy as np
import pytest

from valor_lib.evaluation.rewrites import listed_options
from valor_lib.policy.template_programmer import write_program
from valor_lib.toyworld.benchmarks import DIRECT_ANSWER, benchmark_phrasing
from valor_lib.toyworld.queries import Query, parse_query

CASES = [
    ("Is the red chair to the left of the table?", "yes", "yes/no"),
    ("Which is closer to the camera, the cabinet or the green chair?", "cabinet", "choice"),
    ("How many balls are there in the image?", "3", "int"),
    ("How many times taller is the lamp than the box in 3D?", "2.5", "float"),
    ("What color is the sofa?", "red", "str"),
]


def phrasings(text: str, answer: str, answer_type: str, draws: int = 200) -> set[str]:
    query = Query(text, answer, answer_type, parse_query(text), [])
    rng = np.random.default_rng(0)
    return {benchmark_phrasing(query, rng) for _ in range(draws)}


@pytest.mark.parametrize(("text", "answer", "answer_type"), CASES)
def test_each_answer_type_gets_its_benchmarks_forms(text, answer, answer_type):
    forms = phrasings(text, answer, answer_type)
    assert text in forms and f"{text}\n{DIRECT_ANSWER}" in forms
    expected = {"yes/no": 4, "choice": 3, "int": 3, "float": 2, "str": 2}[answer_type]
    optioned = [f for f in forms if "Options:" in f]
    if answer_type == "yes/no":
        assert f"{text} Answer yes or no." in forms and listed_options(optioned[0]) == ("yes", "no")
    if answer_type == "choice":
        assert listed_options(optioned[0]) == ("cabinet", "green chair")
    if answer_type == "int":  # BLINK-style count options, holding the true count
        assert all("3" in listed_options(f) for f in optioned)
        expected = 2 + len(optioned)
    assert len(forms) == expected


@pytest.mark.parametrize(("text", "answer", "answer_type"), CASES)
def test_every_phrasing_reads_as_the_same_query(text, answer, answer_type):
    program = write_program(text).text
    for form in phrasings(text, answer, answer_type, draws=40):
        assert parse_query(form) == parse_query(text)
        assert write_program(form).text == program
