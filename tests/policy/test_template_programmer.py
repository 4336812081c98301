"""The template programmer: correct programs are right and fully rewarded; flaws are realistic and noticed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from policy_helpers import build_scene, scene_tools

from valor_lib.evaluation.metrics import mra
from valor_lib.policy.template_programmer import (
    FLAWS,
    TemplateProgrammer,
    UnknownQueryError,
    applicable_flaws,
    write_program,
)
from valor_lib.programs import execute, execute_many, parse_response
from valor_lib.rewards.toy_requirements import requirements
from valor_lib.rewards.toy_verifier import judge_adherence, judge_attribute, judge_logic, judge_spatial
from valor_lib.toyworld.queries import FAMILIES, answer_query, parse_query

# one question per family, and a scene where it is well posed (category, colour, size scale, x, depth)
CASES = {
    "count": ("How many red chairs are there in the image?",
              [("chair", "red", 0.5, -1.5, 5.0), ("chair", "red", 0.5, 1.4, 6.0), ("chair", "blue", 0.5, 0.0, 8.0)]),
    "count_rel": ("How many balls are to the left of the rightmost table?",
                  [("table", "white", 0.5, 1.5, 6.0), ("table", "red", 0.5, -2.0, 8.5), ("ball", "green", 0.5, -1.0, 4.5),
                   ("ball", "blue", 0.5, 2.4, 5.0)]),
    "exist": ("Is there a green vase in the image?",
              [("vase", "green", 0.5, -1.0, 4.0), ("vase", "red", 0.5, 1.0, 5.0)]),
    "rel2d": ("Is the lamp to the right of the closest box?",
              [("lamp", "white", 0.5, 1.5, 6.0), ("box", "blue", 0.5, 2.4, 8.0), ("box", "red", 0.5, -1.0, 4.0)]),
    "depth": ("Is the sofa behind the yellow ball?",
              [("sofa", "black", 0.5, -1.0, 7.0), ("ball", "yellow", 0.5, 1.0, 4.0)]),
    "depth_choice": ("Which is closer to the camera, the cabinet or the green chair?",
                     [("cabinet", "white", 0.9, -1.5, 6.0), ("chair", "green", 0.2, 1.0, 4.5)]),
    "superlative_choice": ("Which object is closest to the camera: the lamp, the red box, or the table?",
                           [("lamp", "white", 0.5, -2.0, 6.0), ("box", "red", 0.5, 0.0, 3.5),
                            ("table", "green", 0.5, 1.8, 8.0)]),
    "size_compare": ("Is the farthest chair taller than the vase in 3D?",
                     [("chair", "red", 0.5, -1.0, 8.0), ("chair", "blue", 0.5, 1.5, 4.0), ("vase", "white", 0.5, 0.0, 3.2)]),
    "size_choice": ("Which is wider in 3D, the table or the red lamp?",
                    [("table", "white", 0.5, -1.0, 8.0), ("lamp", "red", 0.5, 1.0, 3.5)]),
    "size_ref": ("If the chair is 0.90 meters tall, how tall is the cabinet in meters?",
                 [("chair", "red", 0.5, -1.2, 4.0), ("cabinet", "white", 0.6, 1.2, 8.0)]),
    "size_ratio": ("How many times taller is the lamp than the box in 3D?",
                   [("lamp", "red", 0.5, -1.0, 8.0), ("box", "green", 0.5, 1.0, 3.5)]),
    "color": ("What color is the leftmost ball?",
              [("ball", "purple", 0.9, -1.5, 4.0), ("ball", "yellow", 0.9, 1.5, 5.0)]),
    "color_yesno": ("Is the vase orange?", [("vase", "orange", 0.9, 0.0, 3.5)]),
    "stack_compare": ("If the box were stacked on top of the table, would the stack be taller than the cabinet?",
                      [("box", "red", 0.9, -1.6, 4.0), ("table", "white", 0.9, 0.0, 6.0), ("cabinet", "blue", 1.0, 2.0, 9.0)]),
    "stack_height": ("If the ball were stacked on top of the chair, how tall would the stack be in meters, given "
                     "that the sofa is 0.85 meters tall?",
                     [("ball", "red", 0.5, -1.5, 4.0), ("chair", "blue", 0.5, 0.0, 8.0), ("sofa", "green", 0.5, 1.8, 6.0)]),
    "fit_under": ("Could the ball fit under the table?", [("ball", "red", 0.2, -1.2, 4.0), ("table", "white", 0.9, 1.0, 6.0)]),
}


def _heads(program) -> dict[str, bool]:
    plan, code = parse_response(program.text).plan, parse_response(program.text).code
    req = requirements(program.question)
    return {"logic": judge_logic(req, plan)[0], "attribute": judge_attribute(req, plan)[0],
            "spatial": judge_spatial(req, plan)[0], "adherence": judge_adherence(plan, code)[0]}


def _correct(result, truth: str, answer_type: str) -> bool:
    if answer_type == "float":
        return mra(result.answer, float(truth)) >= 0.9
    return str(result.answer) == truth


def test_cases_cover_every_family():
    assert set(CASES) == set(FAMILIES)
    assert all(parse_query(q).family == f for f, (q, _) in CASES.items())


def test_every_flawed_variant_parses_and_runs_with_dummy_tools():
    programs = [write_program(q, f) for q, _ in CASES.values() for f in [None, *applicable_flaws(parse_query(q))]]
    parsed = [parse_response(p.text) for p in programs]
    assert all(p.format_ok for p in parsed)
    results = execute_many([p.code for p in parsed], workers=2)
    failed = [(prog.family, prog.flaw, r.error) for prog, r in zip(programs, results, strict=True) if not r.ok]
    assert not failed


def test_programs_answer_a_fallback_when_a_detection_comes_back_empty():
    scene, image = build_scene([], seed=3)
    programs = [write_program(q, f) for q, _ in CASES.values() for f in [None, *applicable_flaws(parse_query(q))]]
    results = [execute(parse_response(p.text).code, tools=scene_tools(scene), image=image) for p in programs]
    crashed = [(prog.family, prog.flaw, r.error) for prog, r in zip(programs, results, strict=True) if not r.ok]
    assert not crashed
    answers = {prog.family: r.answer for prog, r in zip(programs, results, strict=True) if prog.flaw is None}
    assert answers["rel2d"] == answers["fit_under"] == answers["exist"] == "no"
    assert answers["count"] == answers["count_rel"] == 0
    assert answers["depth_choice"] == "green chair" and answers["size_ref"] == 0.9
    code = write_program(CASES["depth"][0]).text
    assert code.index("if not det_a or not det_b:") < code.index("a = max(det_a")


@pytest.mark.parametrize("family", sorted(CASES))
def test_correct_program_passes_every_verifier_rule_and_answers_right(family):
    question, objects = CASES[family]
    program = write_program(question)
    assert program.flaw is None and program.family == family
    assert all(_heads(program).values()), _heads(program)
    scene, image = build_scene(objects, seed=3)
    truth, answer_type, _ = answer_query(parse_query(question), scene)
    result = execute(parse_response(program.text).code, tools=scene_tools(scene), image=image)
    assert result.ok, result.error
    assert _correct(result, truth, answer_type), (result.answer, truth)


@pytest.mark.parametrize(("family", "flaw", "head"), [
    ("count_rel", "drop_relation", "spatial"), ("rel2d", "ignore_superlative", "spatial"),
    ("size_ratio", "pixel_size", "attribute"), ("size_ref", "wrong_dimension", "attribute"),
    ("count", "drop_color", "attribute"), ("depth", "depth_from_2d", "spatial"),
    ("size_compare", "code_deviates", "adherence"),
])
def test_keyword_flaws_fail_the_head_that_should_catch_them(family, flaw, head):
    program = write_program(CASES[family][0], flaw)
    assert not _heads(program)[head]


@pytest.mark.parametrize(("family", "flaw"), [
    ("size_ratio", "pixel_size"), ("count_rel", "drop_relation"), ("rel2d", "ignore_superlative"),
    ("depth_choice", "depth_from_2d"), ("size_ref", "logic_slip"), ("stack_height", "logic_slip"),
    ("count", "drop_color"), ("size_compare", "code_deviates"),
])
def test_flaws_give_wrong_answers_where_they_matter(family, flaw):
    question, objects = CASES[family]
    scene, image = build_scene(objects, seed=3)
    truth, answer_type, _ = answer_query(parse_query(question), scene)
    result = execute(parse_response(write_program(question, flaw).text).code, tools=scene_tools(scene), image=image)
    assert not (result.ok and _correct(result, truth, answer_type))


def test_flaws_apply_only_where_they_make_sense():
    assert applicable_flaws(parse_query("How many chairs are there in the image?")) == []
    assert "drop_relation" in applicable_flaws(parse_query(CASES["count_rel"][0]))
    assert "pixel_size" not in applicable_flaws(parse_query(CASES["depth"][0]))
    with pytest.raises(ValueError):
        write_program(CASES["depth"][0], "pixel_size")
    assert set(f for q, _ in CASES.values() for f in applicable_flaws(parse_query(q))) == set(FLAWS)


def test_sampling_rate_and_weights():
    rng = np.random.default_rng(0)
    questions = [q for q, _ in CASES.values() if applicable_flaws(parse_query(q))] * 40
    flaws = Counter(TemplateProgrammer(0.6).sample(q, rng).flaw for q in questions)
    assert 0.52 < 1 - flaws[None] / len(questions) < 0.68
    never = Counter(TemplateProgrammer(0.6, {"logic_slip": 0.0}).sample(q, rng).flaw for q in questions)
    assert never["logic_slip"] == 0
    assert set(Counter(TemplateProgrammer(0.0).sample(q, rng).flaw for q in questions)) == {None}


def test_bad_inputs():
    with pytest.raises(UnknownQueryError):
        write_program("What is the meaning of life?")
    with pytest.raises(ValueError):
        TemplateProgrammer(1.5)
    with pytest.raises(ValueError):
        TemplateProgrammer(0.5, {"no_such_flaw": 1.0})
