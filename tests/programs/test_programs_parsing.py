"""parse_response: extraction of plan and program, and the paper's format gate."""

import time

import pytest

from valor_lib.programs import parse_response
from valor_lib.programs.parsing import strip_code_fences

GOOD = "<plan>\nFind the cups, count them.\n</plan>\n<answer>\nfinal_answer = len(gd_detect(image, 'cup'))\n</answer>\n"


def test_well_formed_response_passes_the_gate():
    parsed = parse_response(GOOD)
    assert parsed.format_ok
    assert parsed.problems == []
    assert parsed.plan == "Find the cups, count them."
    assert parsed.code == "final_answer = len(gd_detect(image, 'cup'))"


def test_answer_before_plan_still_passes():
    parsed = parse_response("<answer>x = 1</answer>\n<plan>p</plan>")
    assert parsed.format_ok and parsed.plan == "p" and parsed.code == "x = 1"


@pytest.mark.parametrize(
    ("fence", "body"),
    [
        ("```python\nx = 1\ny = 2\n```", "x = 1\ny = 2"),
        ("```py\nx = 1\n```", "x = 1"),
        ("```\nx = 1\n```", "x = 1"),
        ("Here is the program:\n```python\nx = 1\n```\nDone.", "x = 1"),
        ("    x = 1\n    if x:\n        y = 2", "x = 1\nif x:\n    y = 2"),
        ("```python\nx = 1", "x = 1"),  # unclosed fence: up to the end
        ("x = '''\n  keep\n'''", "x = '''\n  keep\n'''"),
    ],
)
def test_code_fences_are_unwrapped_and_code_dedented(fence, body):
    assert strip_code_fences(fence) == body
    parsed = parse_response(f"<plan>p</plan><answer>{fence}</answer>")
    assert parsed.format_ok and parsed.code == body


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no <plan> block"),
        ("<plan>p</plan>", "no <answer> block"),
        ("<plan>  </plan><answer>x</answer>", "empty <plan> block"),
        ("<plan>p</plan><answer>\n</answer>", "empty <answer> block"),
        ("<plan>p</plan><plan>q</plan><answer>x</answer>", "2 <plan> blocks"),
        ("<plan>p</plan><answer>x</answer><answer>y</answer>", "2 <answer> blocks"),
        ("Sure! <plan>p</plan><answer>x</answer>", "text outside the blocks"),
        ("<plan>p</plan><answer>x</answer> thanks", "text outside the blocks"),
        ("<think>hmm</think><plan>p</plan><answer>x</answer>", "text outside the blocks"),
        ("<plan>p</plan></plan><answer>x</answer>", "stray </plan>"),
        ("<plan>p<answer>x</answer></plan>", "tags nested inside <plan>"),
        ("<plan>p</plan><answer>x", "<answer> is never closed"),
        ("<PLAN>p</PLAN><answer>x</answer>", "no <plan> block"),
    ],
)
def test_malformed_responses_fail_the_gate_with_a_reason(text, problem):
    parsed = parse_response(text)
    assert not parsed.format_ok
    assert any(problem in p for p in parsed.problems), parsed.problems


def test_best_effort_extraction_from_malformed_responses():
    truncated = parse_response("<plan>count cups</plan>\n<answer>\n```python\nfinal_answer = 3\n")
    assert not truncated.format_ok
    assert (truncated.plan, truncated.code) == ("count cups", "final_answer = 3")
    unclosed_plan = parse_response("<plan>count cups\n<answer>final_answer = 3</answer>")
    assert (unclosed_plan.plan, unclosed_plan.code) == ("count cups", "final_answer = 3")
    first_non_empty = parse_response("<plan></plan><plan>p2</plan><answer>a</answer><answer>b</answer>")
    assert (first_non_empty.plan, first_non_empty.code) == ("p2", "a")
    chatty = parse_response("Sure!\n<plan>p</plan>\n<answer>x = 1</answer>\nHope this helps.")
    assert (chatty.plan, chatty.code) == ("p", "x = 1")


def test_unicode_is_preserved():
    parsed = parse_response("<plan>zähle die Tassen ☕</plan><answer>final_answer = '杯子'</answer>")
    assert (
        parsed.format_ok and parsed.plan == "zähle die Tassen ☕" and parsed.code == "final_answer = '杯子'"
    )


def test_rejects_non_strings():
    with pytest.raises(TypeError):
        parse_response(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "<plan>" * 1_000_000,
        "</answer>" * 1_000_000,
        "<plan>a</plan>" * 500_000,
        "<plan>" + "</answer>" * 1_000_000,
        "<answer>" + "```\n" * 1_000_000,
        "<" * 5_000_000,
        "<pla" * 2_000_000,
        "<plan>p</plan><answer>" + "x = 1\n" * 1_000_000 + "</answer>",
    ],
    ids=[
        "opens",
        "stray-closes",
        "many-blocks",
        "nested-closes",
        "fences",
        "brackets",
        "near-tags",
        "long-code",
    ],
)
def test_multi_megabyte_inputs_parse_in_linear_time(text):
    start = time.perf_counter()
    parse_response(text)
    assert time.perf_counter() - start < 5.0  # quadratic behaviour would take minutes here
