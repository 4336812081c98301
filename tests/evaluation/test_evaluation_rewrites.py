import pytest

from valor_lib.evaluation.rewrites import (
    RewriteError,
    letter_index,
    listed_options,
    option_for_letter,
    split_lettered,
    vsr_question,
    with_options,
)
from valor_lib.toyworld.queries import parse_query


@pytest.mark.parametrize("caption, question", [
    ("The dog is on the surfboard.", "Is the dog on the surfboard?"),
    ("The potted plant is at the right side of the bench.", "Is the potted plant at the right side of the bench?"),
    ("The cats are beside the dog.", "Are the cats beside the dog?"),
    ("A man is touching the horse", "Is a man touching the horse?"),
    ("The bowl contains the banana.", "Is it true that the bowl contains the banana?"),
    ("  The  cow is ahead of   the person. ", "Is the cow ahead of the person?"),
    ("Bob is left of the car.", "Is Bob left of the car?"),
])
def test_vsr_statements_become_clean_questions(caption, question):
    assert vsr_question(caption) == question


def test_toy_vsr_questions_still_parse_as_toy_queries():
    spec = parse_query(vsr_question("The red chair is to the left of the table."))
    assert spec is not None and spec.family == "rel2d" and spec.relation == "left of"


def test_empty_caption_is_an_error():
    with pytest.raises(RewriteError):
        vsr_question(" . ")


def test_options_are_appended_keeping_the_question_mark():
    assert with_options("Is the car beneath the cat?", ["yes", "no"]) == "Is the car beneath the cat? Options: {yes, no}."
    assert listed_options("Which is closer, the tv or the tv stand? Options: {tv, tv stand}.") == ("tv", "tv stand")
    assert listed_options("What is it? Choose from lights, remote controls, same.") == ("lights", "remote controls", "same")
    assert listed_options("How many chairs?") == ()
    with pytest.raises(RewriteError):
        with_options("Why?", [])


@pytest.mark.parametrize("answer, index", [("A", 0), ("(B)", 1), ("c.", 2), (" (D) ", 3)])
def test_letters(answer, index):
    assert letter_index(answer) == index


def test_bad_letters():
    with pytest.raises(RewriteError):
        letter_index("left")
    with pytest.raises(RewriteError):
        option_for_letter("(C)", ["yes", "no"])


def test_realworldqa_blocks():
    block = ("Query: Which object is closer?\nA. the chair\nB) the table.\nC: the lamp\n"
             "Please answer directly with only the letter of the correct option and nothing else.")
    assert split_lettered(block) == ("Which object is closer?", ("the chair", "the table", "the lamp"))
    assert split_lettered("How many cars are there?\nPlease answer directly with a single word or number.") is None
    # a sentence starting with "A" is not an option line
    assert split_lettered("A dog sits here. Is it brown?\nA. yes\nB. no") == ("A dog sits here. Is it brown?", ("yes", "no"))
