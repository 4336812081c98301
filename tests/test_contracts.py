"""Repository contracts: every notebook has one parameters cell matching params.yaml and a DVC stage;
notebooks are committed without outputs; environment.yml installs the same pins as pyproject.toml."""

import ast
import json
import re
import subprocess
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from valor_lib import params
from valor_lib.pipeline import stage_name

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
RAW = params.load_raw(ROOT / "params.yaml")


def parameters_cell_values(nb) -> dict:
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{len(cells)} cells tagged 'parameters'"
    values = {}
    for node in ast.parse(cells[0].source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, "parameters cell: plain assignments only"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("00_")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_matches_toy_params(path):
    section = stage_name(path)
    assert section in RAW, f"params.yaml has no section {section!r}"
    assert section in params.SECTION_MODELS
    declared = parameters_cell_values(nbformat.read(path, as_version=4))
    assert declared == params.resolve(section, path=ROOT / "params.yaml", profile="toy")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_has_a_dvc_stage(path):
    section = stage_name(path)
    stage = DVC.get(section)
    assert stage, f"dvc.yaml has no stage {section!r}"
    assert stage["cmd"] == f"python -m valor_lib.pipeline notebooks/{path.name}"
    assert f"notebooks/{path.name}" in stage["deps"]
    wanted = {"common", section} | {f"profiles.full.{s}" for s in ("common", section) if s in RAW["profiles"]["full"]}
    # a stage may also read other sections (the paper-tables stage checks the full profile's hyperparameters)
    sections = set(params.SECTION_MODELS)
    assert wanted <= set(stage["params"]) <= wanted | sections | {f"profiles.full.{s}" for s in sections}
    assert f"results/{section}/{path.name}" in stage["outs"]
    assert any(f"results/{section}/metrics.json" in m for m in stage["metrics"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stripped(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name} has stored outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_a_unique_id(path):
    cells = json.loads(path.read_text())["cells"]  # raw: nbformat.read would fill missing ids in silently
    ids = [cell.get("id") for cell in cells]
    assert None not in ids, f"{path.name}: cell {ids.index(None)} has no id"
    assert len(set(ids)) == len(ids), f"{path.name}: duplicate cell ids"


def test_every_dvc_stage_runs_an_existing_notebook():
    names = {stage_name(p) for p in NOTEBOOKS}
    for name, stage in DVC.items():
        match = re.match(r"python -m valor_lib\.pipeline notebooks/(\S+)$", stage["cmd"])
        if match:
            assert stage_name(match[1]) == name and (ROOT / "notebooks" / match[1]).is_file()
        assert name in names or not match


def _uncached_outputs() -> list[str]:
    """Paths of every stage's metrics / plots / outs declared with ``cache: false``."""
    paths = []
    for stage in DVC.values():
        for key in ("outs", "metrics", "plots"):
            for entry in stage.get(key, []):
                if isinstance(entry, dict):
                    paths += [path for path, opts in entry.items() if opts and opts.get("cache") is False]
    return paths


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_uncached_outputs_are_not_git_ignored():
    """`dvc exp run` commits only what git tracks: an ignored metrics file would vanish from every experiment."""
    paths = _uncached_outputs()
    assert any(p.endswith("metrics.json") for p in paths)
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    assert not ignored, f"git ignores {ignored}: dvc exp show would have no numbers for them"


def _normal(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_reqs = {_normal(r) for r in pip if not r.startswith("-e")}
    core = {_normal(r) for r in project["dependencies"] if not r.startswith("torch")}
    assert env_reqs - {"torch==2.13.0"} == core
    assert "torch==2.13.0" in env_reqs and any(r.startswith("-e .") for r in pip)


def test_each_detector_chooses_its_answering_thresholds_from_the_grid_that_chose_the_common_pair():
    toy = params.apply_profile(RAW, "toy")
    assert toy["detector_finetuning"]["own_thresholds_grid"] == toy["toy_world"]["detector"]["answering_grid"]
