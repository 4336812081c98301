"""Grounding queries parsed from generated programs with ``ast`` (never run)."""

import pytest

from valor_lib.grounding.queries import extract_grounding_queries, normalize_label, singular, split_nouns


@pytest.mark.parametrize(("code", "prompts"), [
    ('boxes = gd_detect(image, "chair")', ["chair"]),
    ('a = gd_detect(image, "red " + "chairs")', ["red chairs"]),
    ('a = gd_detect(image, f"{\'red\'} chair")', ["red chair"]),
    ('a = gd_detect(image, ", ".join(["table", "lamp"]))', ["table, lamp"]),
    ('noun = "sofa"\na = gd_detect(image, noun)', ["sofa"]),
    ('base = "box"\nnoun = "green " + base\na = gd_detect(image, noun)', ["green box"]),
    ('a = gd_detect(image, prompt="vase")', ["vase"]),
    ('a = tools.gd_detect(image, "ball")', ["ball"]),
    ('a = gd_detect(image, "chair")\nb = gd_detect(image, "chair")\nc = gd_detect(image, "table")', ["chair", "table"]),
    ('def f(img):\n    return gd_detect(img, "lamp")\nx = f(image)', ["lamp"]),
])
def test_constant_prompts_resolve(code, prompts):
    q = extract_grounding_queries(code)
    assert q.prompts == prompts and not q.unresolved and q.error is None


@pytest.mark.parametrize(("code", "unresolved"), [
    ('for n in ["chair", "table"]:\n    gd_detect(image, n)', ["n"]),
    ('def f(noun):\n    return gd_detect(image, noun)', ["noun"]),
    ('x = "a"\nx = "b"\ngd_detect(image, x)', ["x"]),
    ('gd_detect(image, vqa(image, None, "what is it?"))', ["vqa(image, None, 'what is it?')"]),
    ('gd_detect(image)', ["gd_detect(image)"]),
    ('gd_detect(image, f"{name:>3}")', ["f'{name:>3}'"]),
    ('x = "a"\nx += "b"\ngd_detect(image, x)', ["x"]),
])
def test_non_constant_prompts_are_reported(code, unresolved):
    q = extract_grounding_queries(code)
    assert q.prompts == [] and q.unresolved == unresolved and q.calls == 1


def test_mixed_program_keeps_what_resolves_and_splits_nouns():
    code = 'a = gd_detect(image, "The red chairs, tables")\nfor n in names:\n    gd_detect(image, n)'
    q = extract_grounding_queries(code)
    assert q.prompts == ["The red chairs, tables"] and q.phrases == ["red chair", "table"]
    assert q.unresolved == ["n"] and q.calls == 2


def test_syntax_errors_and_bad_input():
    assert extract_grounding_queries("final_answer = (").error.startswith("SyntaxError")
    assert extract_grounding_queries("x = 1").calls == 0
    with pytest.raises(TypeError):
        extract_grounding_queries(None)


def test_self_referencing_names_do_not_loop():
    q = extract_grounding_queries('x = x + "a"\ngd_detect(image, x)')
    assert q.unresolved == ["x"]


@pytest.mark.parametrize(("word", "expected"), [
    ("chairs", "chair"), ("boxes", "box"), ("vases", "vase"), ("benches", "bench"), ("berries", "berry"),
    ("glass", "glass"), ("bus", "bus"), ("people", "person"), ("sofa", "sofa"), ("knives", "knife"), ("cups", "cup"),
])
def test_singular(word, expected):
    assert singular(word) == expected


def test_labels_are_normalised():
    assert normalize_label("  The  Red Chairs. ") == "red chair"
    assert normalize_label("an apple") == "apple"
    assert normalize_label("the") == "the" and normalize_label(" . ") == ""
    assert split_nouns("chair, chairs, , red lamp") == ["chair", "red lamp"]
