"""Parameters of the ``query_generation`` stage (section ``query_generation`` of params.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from valor_lib.evaluation.benchmarks import Source
from valor_lib.params import StrictModel


class Omni3DSource(StrictModel):
    """Where the Omni3D-Bench table comes from (see ``valor_lib.evaluation.benchmarks.Source``)."""

    tables: Literal["files", "hf"] = Field(description="files: a local copy in the real layout; hf: the hub")
    root: str = Field(description="folder holding omni3d-bench/train.parquet when tables=files")
    cache_dir: str = Field(description="Hugging Face datasets cache")
    eval_rows: int = Field(ge=0, description="first rows held out for evaluation (the paper: 100)")

    def source(self) -> Source:
        return Source.from_params({"root": self.root, "tables": self.tables, "cache_dir": self.cache_dir,
                                   "omni3d_eval_rows": self.eval_rows})


class QueryGenerationParams(StrictModel):
    """The ``query_generation`` stage: generated queries + Omni3D-Bench training queries = the RL set."""

    image_dir: str = Field(description="unlabelled images (SA-1B in the paper, the toy pool here)")
    image_glob: str = Field(description="file pattern under image_dir")
    generated: int = Field(ge=0, description="generated queries in the RL set (the paper: 400)")
    candidates: int = Field(ge=1, le=10, description="queries written per image, one chosen (the paper: 5)")
    attempts: int = Field(ge=1, description="requests per image before an invalid reply counts as a failure")
    max_concurrency: int = Field(ge=1, description="VLM calls in flight at once")
    omni3d_queries: int = Field(ge=0, description="last Omni3D-Bench training rows in the RL set (the paper: 400)")
    omni3d: Omni3DSource
    examples: int = Field(ge=0, description="images shown with their candidates")
