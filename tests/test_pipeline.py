import json
import textwrap

import nbformat
import pytest
import yaml

from valor_lib import params
from valor_lib.params import ParamsError
from valor_lib.pipeline import main, run_notebook, stage_name


def test_stage_name_from_notebook_file():
    assert stage_name("notebooks/04_grpo_training.ipynb") == "grpo_training"
    with pytest.raises(ParamsError):
        stage_name("notebooks/grpo.ipynb")


def _notebook(path, parameter_lines, body):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("\n".join(parameter_lines))
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(textwrap.dedent(body))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def mini_repo(tmp_path, monkeypatch):
    """A repository root with params.yaml (toy_world section) and a notebooks folder."""
    raw = params.load_raw()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({k: raw[k] for k in ("common", "toy_world", "profiles")}))
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setenv("VALOR_ROOT", str(tmp_path))
    return tmp_path, params.resolve("toy_world", path=tmp_path / "params.yaml")


def test_undeclared_keys_are_rejected_before_anything_runs(mini_repo):
    root, values = mini_repo
    lines = [f"{k} = {v!r}" for k, v in values.items() if k != "workers"]
    _notebook(root / "notebooks" / "00_toy_world.ipynb", lines, "open('ran', 'w').write('x')")
    with pytest.raises(ParamsError, match=r"do(es)? not declare: \['workers'\]"):
        run_notebook("notebooks/00_toy_world.ipynb")
    assert not (root / "ran").exists()
    assert not (root / "results" / "toy_world").exists()


def test_bad_params_give_a_clear_cli_error(mini_repo, capsys):
    root, values = mini_repo
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["toy_world"]["workers"] = "two"
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    _notebook(root / "notebooks" / "00_toy_world.ipynb", [f"{k} = {v!r}" for k, v in values.items()], "pass")
    assert main(["notebooks/00_toy_world.ipynb"]) == 2
    assert "toy_world.workers" in capsys.readouterr().err


@pytest.mark.slow
def test_runs_notebook_from_repo_root_with_injected_params(mini_repo):
    root, values = mini_repo
    lines = [f"{k} = {99 if k == 'workers' else v!r}" for k, v in values.items()]
    body = """
        import json, os
        json.dump({"cwd": os.getcwd(), "eval_items": eval_items, "profile": profile}, open("seen.json", "w"))
    """
    _notebook(root / "notebooks" / "00_toy_world.ipynb", lines, body)
    out = run_notebook("notebooks/00_toy_world.ipynb", log_output=False)
    seen = json.loads((root / "seen.json").read_text())
    assert seen == {"cwd": str(root), "eval_items": values["eval_items"], "profile": "toy"}
    assert out == root / "results" / "toy_world" / "00_toy_world.ipynb" and out.is_file()
    executed = nbformat.read(out, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
