"""Parameters of the ``evaluation`` stage (section ``evaluation`` of params.yaml)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from valor_lib.evaluation.benchmarks import Source
from valor_lib.evaluation.records import BENCHMARKS
from valor_lib.params import StrictModel
from valor_lib.specs import parse_spec


def check_benchmarks(names: list[str]) -> None:
    """Raise ValueError naming any benchmark that is not one of the eight."""
    unknown = [b for b in names if b not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmarks {unknown}; expected some of {list(BENCHMARKS)}")


class EvalDataParams(StrictModel):
    """Where the benchmarks come from (see ``valor_lib.evaluation.benchmarks.Source``)."""

    tables: Literal["files", "hf"] = Field(description="files: local copies in the real layout; hf: the hub")
    root: str = Field(description="folder with the GRIT jsonl files, image folders (and local tables)")
    cache_dir: str = Field(description="Hugging Face datasets cache")
    download_images: bool = Field(description="fetch a missing VSR image from its image_link")
    omni3d_eval_rows: int = Field(ge=1, description="first Omni3D-Bench rows held out for evaluation")
    hf_datasets: dict[str, str] = Field(description="hub id overrides, e.g. {realworldqa: xai-org/RealworldQA}")
    vadar_gqa: str | None = Field(description="VADAR-format annotations of Table 3's GQA subset (or null)")

    def source(self) -> Source:
        return Source.from_params(self.model_dump())


class SamplingConfig(StrictModel):
    """Decoding settings of the program writer (the paper: Qwen3 no-think recommendation)."""

    temperature: float = Field(ge=0)
    top_p: float = Field(gt=0, le=1)
    top_k: int = Field(ge=1)
    max_tokens: int = Field(ge=1)


class SystemConfig(StrictModel):
    """One evaluated system: a policy and a detector (names from ``policies`` / ``detectors``)."""

    name: str
    policy: str
    detector: str
    paper_method: str | None = Field(description="the paper's row this system reproduces (Tables 1 and 8)")


class EvaluationParams(StrictModel):
    """The ``evaluation`` stage: systems x benchmarks, scored in strict and paper mode."""

    benchmarks: list[str] = Field(min_length=1)
    limit: int | None = Field(ge=1, description="items per benchmark (null: all)")
    data: EvalDataParams
    policies: dict[str, str] = Field(description="name -> policy spec (trained artifacts from their stages)")
    detectors: dict[str, str] = Field(description="name -> detector spec")
    systems: list[SystemConfig] = Field(min_length=1)
    sampling: SamplingConfig
    batch_size: int = Field(ge=1, description="questions per generation call (fixed chunks; part of the cache key)")
    exec_workers: int = Field(ge=1, description="sandbox workers running programs in parallel")
    timeout_s: float = Field(gt=0, description="wall limit per program")
    gallery_items: int = Field(ge=0, description="successes and failures shown per gallery")

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        check_benchmarks(self.benchmarks)
        for name, spec in self.policies.items():
            parse_spec(spec, role="policy")
            if not name.isidentifier():
                raise ValueError(f"policy name {name!r} must be an identifier")
        for spec in self.detectors.values():
            parse_spec(spec, role="detector")
        names = [s.name for s in self.systems]
        if len(set(names)) != len(names):
            raise ValueError(f"system names must be unique: {names}")
        for system in self.systems:
            if system.policy not in self.policies or system.detector not in self.detectors:
                raise ValueError(f"system {system.name!r}: unknown policy {system.policy!r} or detector "
                                 f"{system.detector!r}")
        return self
