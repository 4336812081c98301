"""The program-generation prompt: layout, parameters, and worked examples that are right."""

from __future__ import annotations

import pytest
from policy_helpers import build_scene, scene_tools

from valor_lib.evaluation.metrics import mra
from valor_lib.policy import prompts
from valor_lib.programs import execute, parse_response
from valor_lib.rewards.toy_requirements import requirements
from valor_lib.rewards.toy_verifier import judge_adherence, judge_attribute, judge_logic, judge_spatial
from valor_lib.tools.api import tool_api_text
from valor_lib.toyworld.queries import answer_query, parse_query

# for each worked example: scenes (category, colour, size scale, x, depth) where its question is well posed
EXAMPLE_SCENES = {
    0: [[("sofa", "black", 0.5, -1.2, 5.0), ("lamp", "white", 0.3, 1.0, 6.5), ("chair", "red", 0.5, 0.2, 8.0)],
        [("sofa", "black", 0.2, 1.0, 4.0), ("lamp", "green", 0.9, -1.0, 7.0)]],
    1: [[("chair", "red", 0.5, -1.6, 4.5), ("chair", "blue", 0.5, 1.2, 7.0), ("table", "white", 0.5, 0.0, 6.0)],
        [("chair", "red", 0.5, -2.2, 8.5), ("chair", "blue", 0.5, 1.0, 4.0), ("table", "green", 0.5, 0.0, 5.5)]],
    2: [[("box", "yellow", 0.5, -1.5, 5.0), ("box", "yellow", 0.8, 0.5, 6.0), ("box", "red", 0.5, 1.8, 7.0)],
        [("box", "blue", 0.5, -1.0, 5.0), ("box", "yellow", 0.2, 1.0, 4.5), ("ball", "yellow", 0.5, 0.0, 8.0)]],
    3: [[("sofa", "white", 0.5, -1.0, 6.0), ("chair", "red", 0.9, 1.0, 4.0), ("chair", "blue", 0.1, 1.8, 8.0)],
        [("sofa", "green", 0.9, 0.8, 5.0), ("chair", "black", 0.2, -1.5, 7.0), ("chair", "purple", 0.7, -0.3, 3.5)]],
}


def test_messages_put_instructions_in_system_and_question_in_user():
    messages = prompts.build_messages("How many chairs are there in the image?")
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[1].text == "Question: How many chairs are there in the image?"
    system = messages[0].text
    assert tool_api_text() in system and "<plan>" in system and "final_answer" in system
    assert system.count("Question: ") == prompts.PAPER_EXAMPLES


@pytest.mark.parametrize("n", range(len(prompts.EXAMPLES) + 1))
def test_example_count_is_a_parameter(n):
    system = prompts.system_prompt(n)
    assert system.count("Question: ") == n
    assert all(e.question in system for e in prompts.EXAMPLES[:n])
    assert not any(e.question in system for e in prompts.EXAMPLES[n:])


@pytest.mark.parametrize("bad", [-1, 5, 1.0, True, "2"])
def test_bad_example_counts_are_refused(bad):
    with pytest.raises(ValueError):
        prompts.system_prompt(bad)


def test_empty_question_is_refused():
    with pytest.raises(ValueError):
        prompts.build_messages("  ")


def test_prompt_config_round_trip(tmp_path):
    assert prompts.prompt_config(None) == {"examples": 4}
    assert prompts.prompt_config(tmp_path) == {"examples": 4}
    prompts.save_prompt_config(tmp_path, 1)
    assert prompts.prompt_config(tmp_path) == {"examples": 1}


@pytest.mark.parametrize("index", range(len(prompts.EXAMPLES)))
def test_example_parses_runs_and_passes_every_verifier_rule(index):
    example = prompts.EXAMPLES[index]
    parsed = parse_response(example.response)
    assert parsed.format_ok, parsed.problems
    result = execute(parsed.code)
    assert result.ok, result.error
    req = requirements(example.question)
    for judge in (judge_logic, judge_attribute, judge_spatial):
        assert judge(req, parsed.plan)[0], judge.__name__
    assert judge_adherence(parsed.plan, parsed.code)[0]


@pytest.mark.parametrize("index", range(len(prompts.EXAMPLES)))
def test_example_answers_its_toy_scenes_with_the_toy_tools(index):
    example = prompts.EXAMPLES[index]
    spec = parse_query(example.question)
    assert spec is not None, "worked examples are toy-world questions"
    code = parse_response(example.response).code
    for seed, objects in enumerate(EXAMPLE_SCENES[index]):
        scene, image = build_scene(objects, seed)
        truth, answer_type, _ = answer_query(spec, scene)
        result = execute(code, tools=scene_tools(scene), image=image)
        assert result.ok, result.error
        if answer_type == "float":
            assert mra(result.answer, float(truth)) >= 0.9, (result.answer, truth)
        else:
            assert str(result.answer) == truth, (result.answer, truth)
