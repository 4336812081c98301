"""The toy verifier: its rules per head, its reproducible error and garble rates, and how well its rules catch
the template programmer's flaws."""

import json
from collections import Counter

import pytest
from reward_cases import DEVIATING_CODE, GOOD_CODE, GOOD_PLAN, NO_SPATIAL_PLAN, PIXEL_PLAN, QUERY, TOOL_API

from valor_lib.clients import ChatClient, ChatRequest, user
from valor_lib.programs import parse_response
from valor_lib.rewards import VERIFIER_HEADS, build_request, parse_verdict
from valor_lib.rewards.toy_requirements import categories_in, requirements
from valor_lib.rewards.toy_verifier import ToyVerifier

RULES = ToyVerifier(error_rate=0.0)


def verdict(head, plan, code=GOOD_CODE, question=QUERY, brain=RULES, sample_index=0):
    request = build_request(head, question=question, plan=plan, program=code, tools=TOOL_API,
                            sample_index=sample_index)
    return parse_verdict(brain(request))


def test_requirements_of_a_toy_query():
    req = requirements(QUERY)
    assert req.categories == ("chair", "lamp") and req.colors == ("red",) and req.relations == ("leftmost",)
    assert req.sizes == ("height",) and req.answer_kind == "yes/no" and req.needs_depth
    assert requirements("How many chairs are to the left of the blue sofa?").relations == ("left of",)
    free = requirements("Is the mug closer to the camera than the laptop? Answer yes or no.")
    assert free.relations == ("closer",) and free.answer_kind == "yes/no"


def test_box_is_a_category_only_where_it_names_an_object():
    assert categories_in("Detect the red box and keep the most confident bounding box of the lamp.") == ["box", "lamp"]
    assert categories_in("Estimate the depth of each box; compare box areas of the chairs.") == ["chair"]


@pytest.mark.parametrize(("plan", "expected"), [
    (GOOD_PLAN, {"logic": True, "attribute": True, "spatial": True}),
    (NO_SPATIAL_PLAN, {"logic": False, "attribute": True, "spatial": False}),
    (PIXEL_PLAN, {"logic": False, "attribute": False, "spatial": True}),
    (GOOD_PLAN.replace("red lamp", "lamp"), {"logic": False, "attribute": False, "spatial": True}),
    (GOOD_PLAN.replace("is larger than", "is smaller than"), {"logic": False, "attribute": True, "spatial": True}),
    ("Detect the chair and the lamp and answer.", {"logic": False, "attribute": False, "spatial": False}),
    (GOOD_PLAN.replace("red lamp", "red lamp and the sofa"), {"logic": False, "attribute": True, "spatial": True}),
    (GOOD_PLAN.replace("red lamp", "red lamp and the green lamp"),
     {"logic": False, "attribute": False, "spatial": True}),
], ids=["good", "no-leftmost", "pixel-size", "no-colour", "reversed", "one-line", "extra-object", "extra-colour"])
def test_plan_heads(plan, expected):
    assert {h: verdict(h, plan) for h in expected} == expected


def test_adherence_head():
    assert verdict("adherence", GOOD_PLAN, GOOD_CODE)
    assert not verdict("adherence", GOOD_PLAN, DEVIATING_CODE)  # no depth scaling
    assert not verdict("adherence", GOOD_PLAN, GOOD_CODE.replace('"red lamp"', '"lamp"'))  # colour dropped
    assert not verdict("adherence", GOOD_PLAN, GOOD_CODE.replace("final_answer =", "answer ="))
    assert not verdict("adherence", GOOD_PLAN, GOOD_CODE + 'n = vqa(image, a, "Is it wooden?")\n')


def test_spatial_passes_when_the_question_has_no_relation():
    assert verdict("spatial", "1. Detect every chair.\n2. Answer with the number of chairs.",
                   question="How many chairs are there in the image?")


def test_errors_and_garbles_are_reproducible_per_request():
    noisy = ToyVerifier(error_rate=0.3, seed=1)
    outcomes = [verdict("logic", GOOD_PLAN, brain=noisy, sample_index=i) for i in range(200)]
    assert outcomes == [verdict("logic", GOOD_PLAN, brain=noisy, sample_index=i) for i in range(200)]
    assert 0.2 < outcomes.count(False) / 200 < 0.4
    assert all(verdict(h, GOOD_PLAN, brain=ToyVerifier(error_rate=1.0)) is False for h in VERIFIER_HEADS)
    garbled = ToyVerifier(error_rate=0.0, garble_rate=1.0)
    assert verdict("spatial", GOOD_PLAN, brain=garbled) is None
    with pytest.raises(ValueError, match="error_rate"):
        ToyVerifier(error_rate=1.5)


def test_the_toy_role_answers_through_the_client():
    with ChatClient("toy:verifier", brain_options={"error_rate": 0.0}) as client:
        result = client.complete(build_request("spatial", question=QUERY, plan=GOOD_PLAN))
    assert result.ok and parse_verdict(result.text) is True
    assert parse_verdict(RULES(ChatRequest((user("Hello, what can you do?"),)))) is None


# which heads each template-programmer flaw should fail (logic also fails whenever the plan is wrong)
EXPECTED_FAILURES = {
    None: set(), "ignore_superlative": {"spatial", "logic"}, "drop_relation": {"spatial", "logic"},
    "pixel_size": {"attribute", "logic"}, "wrong_dimension": {"attribute", "logic"},
    "drop_color": {"attribute", "logic"}, "open_vqa": {"attribute", "logic"},
    "depth_from_2d": {"spatial", "logic"}, "code_deviates": {"adherence"}, "logic_slip": {"logic"},
}


def test_rules_catch_the_template_programmers_flaws(small_world):
    from valor_lib.policy import template_programmer as programmer

    path = small_world / "pretrain_queries.jsonl"
    questions = [json.loads(line)["question"] for line in path.open()][:150]
    caught, total = Counter(), Counter()
    for question in questions:
        spec = programmer.parse_query(question)
        for flaw in [None, *programmer.applicable_flaws(spec)]:
            parsed = parse_response(programmer.write_program(question, flaw).text)
            failed = {h for h in VERIFIER_HEADS if not verdict(h, parsed.plan, parsed.code, question)}
            total[flaw] += 1
            caught[flaw] += EXPECTED_FAILURES[flaw] <= failed and (flaw is not None or not failed)
    assert caught[None] == total[None]
    rate = sum(caught[f] for f in total if f) / sum(total[f] for f in total if f)
    assert rate > 0.9, {f: f"{caught[f]}/{total[f]}" for f in total}
