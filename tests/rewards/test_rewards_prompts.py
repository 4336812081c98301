"""The verifier prompts: which inputs each head sees, the strict verdict format, and reading a prompt back."""

import pytest
from reward_cases import GOOD_CODE, GOOD_PLAN, QUERY, TOOL_API

from valor_lib.rewards import VERIFIER_HEADS, build_request, parse_verdict, render_prompt
from valor_lib.rewards.prompts import format_verdict, read_prompt


def _prompt(head):
    return render_prompt(head, question=QUERY, plan=GOOD_PLAN, program=GOOD_CODE, tools=TOOL_API)


def test_each_head_sees_what_the_paper_gives_it():
    logic, attribute, spatial, adherence = (_prompt(h) for h in VERIFIER_HEADS)
    assert QUERY in logic and TOOL_API in logic and GOOD_PLAN in logic and GOOD_CODE not in logic
    for text in (attribute, spatial):
        assert QUERY in text and GOOD_PLAN in text and GOOD_CODE not in text and TOOL_API not in text
    assert GOOD_PLAN in adherence and GOOD_CODE.strip() in adherence and QUERY not in adherence
    assert all("VERDICT: PASS" in _prompt(h) for h in VERIFIER_HEADS)


def test_prompts_read_back():
    for head in VERIFIER_HEADS:
        reading = read_prompt(_prompt(head))
        assert reading.head == head and reading.plan == GOOD_PLAN
        assert (reading.program == GOOD_CODE.strip()) == (head == "adherence")
        assert (reading.question == QUERY) == (head != "adherence")
    assert read_prompt("What is the capital of France?") is None


def test_missing_inputs_and_unknown_heads_are_errors():
    with pytest.raises(ValueError, match="non-empty plan"):
        render_prompt("logic", question=QUERY, plan=" ", tools=TOOL_API)
    with pytest.raises(ValueError, match="unknown verifier head"):
        render_prompt("syntax", question=QUERY, plan=GOOD_PLAN)


def test_requests_carry_the_sample_index():
    request = build_request("spatial", question=QUERY, plan=GOOD_PLAN, sample_index=2)
    assert request.sample_index == 2 and request.messages[-1].role == "user"


@pytest.mark.parametrize(("text", "verdict"), [
    ("The plan is fine.\nVERDICT: PASS", True),
    ("It misses 'leftmost'.\nVERDICT: FAIL", False),
    ("**Verdict:** **fail**", False),
    ("reasoning...\n  verdict = pass.", True),
    ("VERDICT: PASS\nmore text\nVERDICT: PASS", True),
    ("VERDICT: PASS\nVERDICT: FAIL", None),
    ("The plan passes.", None),
    ("My verdict: PASS", None),
    ("VERDICT: MAYBE", None),
    ("", None),
    (None, None),
])
def test_verdict_parsing_is_strict(text, verdict):
    assert parse_verdict(text) is verdict


def test_format_verdict_round_trips():
    assert parse_verdict(format_verdict(True, "ok")) is True
    assert parse_verdict(format_verdict(False, "no")) is False
