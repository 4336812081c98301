import copy

import pytest
import yaml

from valor_lib import params
from valor_lib.params import ParamsError


@pytest.fixture
def raw():
    return params.load_raw()


def write(tmp_path, raw):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_repository_params_resolve_for_every_registered_section(raw):
    for section in params.SECTION_MODELS:
        if section in raw:
            values = params.resolve(section)
            assert values["profile"] == "toy"
            assert set(values) >= {"seed", "backends", "offline"}


def test_full_profile_overrides_backends(raw):
    values = params.resolve("toy_world", profile="full")
    assert values["profile"] == "full"
    assert values["backends"]["llm_verifier"].startswith("gemini:")
    assert values["offline"] is False
    # the toy values stay the base
    assert params.resolve("toy_world")["backends"]["llm_verifier"].startswith("toy:")


def test_deep_merge_does_not_mutate_inputs():
    base = {"a": {"b": 1, "c": 2}}
    merged = params.deep_merge(base, {"a": {"b": 5}})
    assert merged == {"a": {"b": 5, "c": 2}} and base == {"a": {"b": 1, "c": 2}}


def test_unknown_key_is_named(tmp_path, raw):
    bad = copy.deepcopy(raw)
    bad["toy_world"]["eval_itemz"] = 3
    with pytest.raises(ParamsError, match=r"toy_world\.eval_itemz"):
        params.resolve("toy_world", path=write(tmp_path, bad))


def test_wrong_type_is_named_and_not_coerced(tmp_path, raw):
    bad = copy.deepcopy(raw)
    bad["toy_world"]["eval_items"] = "48"
    with pytest.raises(ParamsError, match=r"toy_world\.eval_items"):
        params.resolve("toy_world", path=write(tmp_path, bad))


def test_unknown_backend_spec_is_rejected(tmp_path, raw):
    bad = copy.deepcopy(raw)
    bad["common"]["backends"]["llm_verifier"] = "claude:haiku"
    with pytest.raises(ParamsError, match="unknown backend kind 'claude'"):
        params.resolve("toy_world", path=write(tmp_path, bad))


def test_backend_of_wrong_role_is_rejected(tmp_path, raw):
    bad = copy.deepcopy(raw)
    bad["common"]["backends"]["detector"] = "toy:vqa"
    with pytest.raises(ParamsError, match=r"common\.backends\.detector"):
        params.resolve("toy_world", path=write(tmp_path, bad))


def test_unknown_profile_and_section(tmp_path, raw):
    with pytest.raises(ParamsError, match="profile 'huge'"):
        params.resolve("toy_world", profile="huge")
    with pytest.raises(ParamsError, match="unknown stage section"):
        params.validate_section("no_such_stage", {})
    bad = copy.deepcopy(raw)
    bad["profiles"]["full"]["not_a_section"] = {"x": 1}
    with pytest.raises(ParamsError, match="no such section"):
        params.resolve("toy_world", path=write(tmp_path, bad), profile="full")


def test_broken_yaml_and_missing_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("common: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        params.load_raw(path)
    with pytest.raises(ParamsError, match="not found"):
        params.load_raw(tmp_path / "missing.yaml")
