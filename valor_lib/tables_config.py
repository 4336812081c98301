"""Parameters of the ``paper_tables`` stage (notebook 09: every paper table next to what this repository reproduces)."""

from __future__ import annotations

from pydantic import Field, field_validator

from valor_lib.params import StrictModel


class PaperTablesParams(StrictModel):
    """What the paper-tables stage compares and where it looks."""

    grounding_benchmarks: list[str] = Field(
        min_length=1, description="grounding-heavy benchmarks of the VALOR vs VALOR-RL claim (paper Figure 7)")
    hparams_profile: str = Field(min_length=1, description="profile whose params are checked against Tables 10/11")
    experiments: bool = Field(description="read `dvc exp show --json` for the Table 5 / Figure 7 sweeps")

    @field_validator("grounding_benchmarks")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from valor_lib.evaluation.records import BENCHMARKS

        unknown = [b for b in value if b not in BENCHMARKS]
        if unknown:
            raise ValueError(f"unknown benchmarks {unknown}; expected some of {list(BENCHMARKS)}")
        return value
