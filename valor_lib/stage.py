"""The start of every notebook: validate its parameters, seed, and know where its outputs go.

A notebook's ``parameters`` cell assigns the common keys and its section's keys; the first code cell after
it calls ``stage = begin_stage("grpo_training", globals())``. The same validation runs whether papermill
injected the values (``dvc repro``) or the cell's literal defaults are used (nbval, JupyterLab).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valor_lib.params import (
    CommonParams,
    ParamsError,
    StrictModel,
    section_model,
    validate_common,
    validate_section,
)
from valor_lib.paths import repo_root, results_dir
from valor_lib.provenance import provenance, write_json_atomic

OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (when installed)."""
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


def set_offline(offline: bool) -> None:
    """Forbid (or allow) model and dataset hub access for this process and its children."""
    for name in OFFLINE_ENV:
        if offline:
            os.environ[name] = "1"
        else:
            os.environ.pop(name, None)


@dataclass
class Stage:
    """A running stage: its validated params and its output folder ``results/<name>/``."""

    name: str
    common: CommonParams
    params: StrictModel
    out: Path
    extra_metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def all_params(self) -> dict[str, Any]:
        return {**self.common.model_dump(), **self.params.model_dump()}

    def path(self, *parts: str) -> Path:
        """A path under the stage's output folder (parents created)."""
        p = self.out.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        """Write ``results/<name>/metrics.json``: the metrics plus provenance."""
        payload = {"stage": self.name, "metrics": dict(metrics), **self.extra_metrics,
                   "provenance": provenance(self.all_params)}
        return write_json_atomic(self.out / "metrics.json", payload)


def begin_stage(name: str, namespace: Mapping[str, Any]) -> Stage:
    """Validate the common and ``name`` parameters found in ``namespace``, seed, set offline mode, and work
    from the repository root (as ``dvc repro`` does), so relative paths in params mean the same under nbval
    or JupyterLab, whose kernels start in ``notebooks/``."""
    wanted = set(CommonParams.model_fields) | set(section_model(name).model_fields)
    missing = sorted(k for k in wanted if k not in namespace)
    if missing:
        raise ParamsError(f"stage {name!r}: the parameters cell does not define {missing}")
    common = validate_common({k: namespace[k] for k in CommonParams.model_fields})
    params = validate_section(name, {k: namespace[k] for k in section_model(name).model_fields})
    seed_everything(common.seed)
    set_offline(common.offline)
    os.chdir(repo_root())
    return Stage(name=name, common=common, params=params, out=results_dir(name))
