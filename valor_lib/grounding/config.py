"""Parameters of the ``pseudo_labelling`` and ``detector_finetuning`` stages (params.yaml sections)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from valor_lib.evaluation.config import EvalDataParams, SamplingConfig
from valor_lib.grounding.sources import ExclusionParams, MiningSourceParams
from valor_lib.params import StrictModel
from valor_lib.specs import SpecError, parse_spec


def _spec(value: str, role: str) -> str:
    try:
        parse_spec(value, role=role)
    except SpecError as err:
        raise ValueError(str(err)) from None
    return value


class VerifierParams(StrictModel):
    """How the VLM verifier (``common.backends.vlm_verifier``) is asked."""

    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None
    max_attempts: int = Field(ge=1, description="replies per question, follow-ups after unusable JSON included")
    crop_padding: float = Field(ge=0, le=1, description="crop margin, a fraction of the box size")
    crop_long_side: int = Field(ge=32, description="crops are resized so their longer side has this many pixels")
    overlay_long_side: int = Field(ge=64, description="overlays are resized to this longer side")
    chunk_size: int = Field(ge=1, description="requests in flight per batch (bounds memory)")
    max_concurrency: int = Field(ge=1, description="concurrent verifier calls")
    brain_options: dict[str, Any] = Field(description="options of a toy:vlm-verifier brain (e.g. error_rate); "
                                          "ignored by real backends")


class PseudoLabellingParams(StrictModel):
    """Mining and verifying pseudo-labels (paper §3.2, A.4.2)."""

    policy: str = Field(description="program writer spec: the VALOR-RL policy of the GRPO stage")
    sampling: SamplingConfig
    batch_size: int = Field(ge=1, description="questions per program-writing call")
    threads: int | None = Field(ge=1, description="torch CPU threads for the policy and the detector (null: "
                                "torch's default)")
    sources: list[MiningSourceParams] = Field(min_length=1)
    exclude: ExclusionParams
    heldout_images: list[str] = Field(description="image folders of the held-out detection set: never mined")
    thresholds: list[float] = Field(min_length=2, max_length=2, description="[box, text] for mining (paper: 0.1)")
    max_boxes_per_prompt: int = Field(ge=1, description="highest-scoring boxes kept per gd_detect prompt")
    verifier: VerifierParams
    annotations: str = Field(description="'scene-ground-truth' (toy) or a JSONL file of hand annotations")
    annotation_images: int | None = Field(ge=1, description="images sampled for precision (null: all)")
    annotation_iou: float = Field(gt=0, lt=1)
    gallery_images: int = Field(ge=0)

    @field_validator("policy")
    @classmethod
    def _policy(cls, value: str) -> str:
        return _spec(value, "policy")


class TrainingParams(StrictModel):
    """Detector fine-tuning hyper-parameters (paper Table 11 in the full profile)."""

    epochs: int = Field(ge=1)
    batches_per_epoch: int | None = Field(ge=1, description="null: images / batch_size")
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    scheduler: Literal["step", "cosine"]
    lr_step_epochs: int = Field(ge=1, description="StepLR step (epochs)")
    lr_gamma: float = Field(gt=0, le=1)
    grad_clip: float = Field(ge=0, description="max gradient norm (0: off)")
    freeze_backbone: bool
    freeze_text: bool
    max_labels: int = Field(ge=1, description="phrases per caption: positives + sampled negatives")
    negatives: Literal["queried", "all", "none"] = Field(description="negative phrases: labels asked for on the image "
                                                 "and not found (queried), any label (all), or none: captions "
                                                 "name only the image's own labels")
    uncertain: Literal["background", "ignore"] = Field(description="boxes the verifier left unsettled (passed the "
                                                       "coarse filter, failed the crop check): background like any "
                                                       "unlabelled region, or ignore regions of the loss")
    hflip: float = Field(ge=0, le=1)
    bf16: bool
    threads: int | None = Field(ge=1)


class BenchmarkEvalParams(StrictModel):
    """Toy benchmark accuracy with the base and the tuned detector (same programs)."""

    benchmarks: list[str] = Field(description="grounding-heavy benchmarks (paper Figure 7: RoboSpatial, VSR, "
                                  "CountBenchQA)")
    policy: str = Field(description="program writer spec (the same programs run with every detector)")
    data: EvalDataParams
    limit: int | None = Field(ge=1, description="items per benchmark (null: all)")
    sampling: SamplingConfig
    batch_size: int = Field(ge=1, description="questions per generation call (part of the prediction cache key)")
    exec_workers: int = Field(ge=1)
    timeout_s: float = Field(gt=0)
    threshold_sweep: list[Annotated[list[float], Field(min_length=2, max_length=2)]] = Field(
        description="[box, text] answering thresholds at which the policy's programs also run with the pretrained "
                    "detector and each variant's first seed ([]: none)")

    @field_validator("policy")
    @classmethod
    def _policy(cls, value: str) -> str:
        return _spec(value, "policy")

    @field_validator("benchmarks")
    @classmethod
    def _benchmarks(cls, value: list[str]) -> list[str]:
        from valor_lib.evaluation.records import BENCHMARKS

        unknown = [b for b in value if b not in BENCHMARKS]
        if unknown:
            raise ValueError(f"unknown benchmarks {unknown}; expected some of {list(BENCHMARKS)}")
        return value


class DetectorFinetuningParams(StrictModel):
    """Fine-tuning the detector on pseudo-labels, its evaluation, and the unverified-label ablation."""

    variants: list[Literal["verified", "unverified"]] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1, description="fine-tuning seeds per variant; the first is the main run")
    max_pseudo_labels: int | None = Field(ge=1, description="box budget (paper Figure 7 sweep); null: all")
    preset: Literal["paper", "authors-code"] | None = Field(description="named hyper-parameters that replace "
                                                           "training's values")
    training: TrainingParams
    run_workers: int = Field(ge=1, description="CPU: fine-tuning runs, then the detectors' held-out scoring, side "
                                               "by side in spawned processes (training.threads each); GPU: one "
                                               "after the other")
    heldout_coco: str = Field(description="COCO json of the held-out detection set (COCO val 2017 in the paper)")
    heldout_images: str
    map_batch_size: int = Field(ge=1)
    own_thresholds_grid: list[Annotated[float, Field(ge=0, le=1)]] | None = Field(
        min_length=1, description="threshold values whose (box, text <= box) pairs each detector's own answering "
                                  "pair is chosen from on the held-out set (null: every detector answers at "
                                  "common.gd_thresholds only)")
    evaluation: BenchmarkEvalParams
    gallery_images: int = Field(ge=0)
