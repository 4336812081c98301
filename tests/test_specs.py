import pytest

from valor_lib.specs import KINDS, ROLE_KINDS, SpecError, parse_spec


def test_parses_kind_and_argument_at_first_colon():
    spec = parse_spec("openai-compatible:http://127.0.0.1:8000/v1/Qwen/Qwen3-8B")
    assert spec.kind == "openai-compatible"
    assert spec.arg == "http://127.0.0.1:8000/v1/Qwen/Qwen3-8B"
    assert str(spec) == "openai-compatible:http://127.0.0.1:8000/v1/Qwen/Qwen3-8B"


@pytest.mark.parametrize("bad", ["", "toy", "nonsense:x", "gemini:", "gemini:  ", None, 3])
def test_malformed_or_unknown_specs_are_rejected(bad):
    with pytest.raises(SpecError):
        parse_spec(bad)


def test_roles_restrict_kinds():
    assert parse_spec("toy:ground-plane", role="depth").kind == "toy"
    with pytest.raises(SpecError, match="cannot serve as detector"):
        parse_spec("gemini:gemini-2.5-flash", role="detector")
    with pytest.raises(SpecError, match="unknown backend role"):
        parse_spec("toy:x", role="painter")


def test_every_role_kind_is_a_known_kind():
    assert all(kinds <= set(KINDS) for kinds in ROLE_KINDS.values())
