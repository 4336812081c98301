import json
import os

import pytest

from valor_lib import params
from valor_lib.params import ParamsError
from valor_lib.stage import begin_stage


@pytest.fixture
def namespace(tmp_path, monkeypatch):
    """The toy_world parameters as a notebook namespace, with outputs going to a temporary root; the kernel
    starts in its ``notebooks/`` folder (as under nbval), and the working directory is restored afterwards."""
    values = params.resolve("toy_world")
    monkeypatch.setenv("VALOR_ROOT", str(tmp_path))
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    return values


def test_begin_stage_validates_seeds_and_writes_metrics_with_provenance(namespace, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    stage = begin_stage("toy_world", namespace)
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert stage.out.is_dir() and stage.out.name == "toy_world"
    assert os.getcwd() == str(stage.out.parents[1])  # relative paths in params resolve from the repo root
    stage.extra_metrics["clients"] = {"calls": 0}
    payload = json.loads(stage.write_metrics({"accuracy": 0.5}).read_text())
    assert payload["metrics"] == {"accuracy": 0.5}
    assert payload["clients"] == {"calls": 0}
    prov = payload["provenance"]
    assert prov["profile"] == "toy" and prov["seed"] == namespace["seed"]
    assert "torch" in prov["packages"] and "cpu_count" in prov["device"]
    assert prov["params"]["eval_items"] == namespace["eval_items"]


def test_missing_and_bad_parameters_are_named(namespace):
    missing = {k: v for k, v in namespace.items() if k != "eval_items"}
    with pytest.raises(ParamsError, match="eval_items"):
        begin_stage("toy_world", missing)
    with pytest.raises(ParamsError, match=r"toy_world\.min_visible"):
        begin_stage("toy_world", {**namespace, "min_visible": "high"})
