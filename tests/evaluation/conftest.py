"""Fixtures for the evaluation tests: a small toy world (the loaders' test data, in the real datasets' formats),
and a source pointing at it (helpers for writers and tools are in eval_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from eval_helpers import EVAL_ITEMS, small_world_params

from valor_lib.evaluation.benchmarks import Source
from valor_lib.toyworld.build import build_world


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> Path:
    """``benchmarks/`` of a freshly generated small toy world."""
    out = tmp_path_factory.mktemp("world") / "toy"
    build_world(small_world_params(), 11, out)
    return out / "benchmarks"


@pytest.fixture
def toy_source(toy_root, tmp_path) -> Source:
    return Source(root=toy_root, cache_dir=tmp_path / "hf", omni3d_eval_rows=EVAL_ITEMS)
