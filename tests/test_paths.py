import pytest

from valor_lib import paths


def test_repo_root_found_from_any_subfolder(tmp_path, monkeypatch):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.delenv(paths.ROOT_ENV, raising=False)
    assert paths.repo_root(deep) == tmp_path.resolve()


def test_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    assert paths.repo_root() == tmp_path.resolve()
    assert paths.toy_dir("x") == tmp_path.resolve() / "data" / "toy" / "x"
    out = paths.results_dir("stage_x")
    assert out.is_dir() and out == tmp_path.resolve() / "results" / "stage_x"


def test_falls_back_to_the_installed_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.ROOT_ENV, raising=False)
    assert (paths.repo_root(tmp_path) / "dvc.yaml").is_file()


def test_require_names_what_is_missing(tmp_path):
    with pytest.raises(paths.MissingDataError, match="run stage 00 first"):
        paths.require(tmp_path / "nope", "run stage 00 first")
    assert paths.require(tmp_path) == tmp_path
