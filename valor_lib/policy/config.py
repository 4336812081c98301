"""Parameters of the ``grpo_training`` and ``sft_baseline`` stages (params.yaml sections of the same names)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from valor_lib.evaluation.config import EvalDataParams, SamplingConfig, check_benchmarks
from valor_lib.params import StrictModel
from valor_lib.rewards.config import ScorerParams


class PolicyEvalParams(StrictModel):
    """Held-out evaluation of the trained policies (the same settings as the ``evaluation`` stage, so their
    predictions are shared through the content-addressed prediction cache)."""

    benchmarks: list[str] = Field(min_length=1, description="toy/real benchmarks scored before and after training")
    limit: int | None = Field(ge=1, description="items per benchmark (null: all)")
    data: EvalDataParams
    sampling: SamplingConfig
    batch_size: int = Field(ge=1, description="questions per generation call (part of the cache key)")
    exec_workers: int = Field(ge=1, description="sandbox workers")
    timeout_s: float = Field(gt=0, description="wall limit per program")

    @model_validator(mode="after")
    def _known(self) -> Any:
        check_benchmarks(self.benchmarks)
        return self


class VerlParams(StrictModel):
    """Multi-node GRPO with verl (Ray, FSDP, vLLM rollout): cluster shape and memory knobs."""

    nodes: int = Field(ge=1)
    gpus_per_node: int = Field(ge=1)
    rollout_tensor_parallel: int = Field(ge=1, description="vLLM tensor parallel size per rollout engine")
    micro_batch_per_gpu: int = Field(ge=1, description="PPO micro-batch (sequences) per GPU")
    log_prob_micro_batch_per_gpu: int = Field(ge=1, description="micro-batch for old/ref log-probabilities")
    param_offload: bool = Field(description="FSDP parameter offload to CPU")
    save_freq: int = Field(ge=-1, description="checkpoint every N steps (-1: only at the end)")
    project: str
    experiment: str
    data_dir: str = Field(description="where the verl parquet files and launch script are written")


class GRPOTrainingParams(StrictModel):
    """The ``grpo_training`` stage: GRPO with the verifier reward (Table 10), one run per seed."""

    queries: str = Field(description="the RL query set (JSON Lines from notebook 01)")
    max_queries: int | None = Field(ge=1, description="use only the first N queries (Table 5 sweeps); null: all")
    seeds: list[int] = Field(min_length=1, description="one run per seed; common.seed's is the VALOR-RL policy")
    trainer: Literal["trl", "verl"] = Field(description="trl: this machine; verl: write the multi-node launch")
    batch_size: int = Field(ge=1, description="queries per optimizer step (paper 64)")
    group_size: int = Field(ge=2, description="responses per query (paper 5)")
    micro_batch_size: int = Field(ge=1, description="completions per forward/backward pass on one device")
    epochs: int = Field(ge=1, description="passes over the RL queries (paper 4)")
    max_steps: int | None = Field(ge=1, description="stop after N optimizer steps (null: all epochs)")
    lr: float = Field(gt=0, description="AdamW learning rate (paper 1e-6), constant after warm-up")
    lr_warmup_steps: int = Field(ge=0)
    weight_decay: float = Field(ge=0, description="AdamW weight decay (paper 0.01)")
    kl_coef: float = Field(ge=0, description="KL coefficient, a loss term (paper 0.01)")
    clip_ratio: float = Field(gt=0, description="PPO clip epsilon (paper 0.2)")
    grad_clip: float = Field(gt=0, description="max gradient norm (paper 1.0)")
    temperature: float = Field(gt=0, description="rollout temperature (paper 1.0)")
    top_p: float = Field(gt=0, le=1, description="rollout top-p (paper 1.0)")
    max_prompt_tokens: int = Field(ge=1, description="longer prompts are left out (paper 6000)")
    max_response_tokens: int = Field(ge=1, description="rollout length limit (paper 2000)")
    save_steps: int = Field(ge=1, description="checkpoint every N steps (resume from the last)")
    bf16: bool = Field(description="bf16 training (GPU)")
    gradient_checkpointing: bool
    vllm: bool = Field(description="TRL rollouts through vLLM (colocated, GPU)")
    rollout_gpu_memory_utilization: float = Field(gt=0, le=1, description="vLLM memory share for rollouts")
    threads: int = Field(ge=1, description="torch CPU threads per run (CPU runs)")
    seed_workers: int = Field(ge=1, description="CPU runs: seeds trained side by side, one spawned process each")
    verifier_options: dict[str, Any] | None = Field(
        description="extra ChatClient options of common.backends.llm_verifier (e.g. a toy brain's error rate)")
    scorer: ScorerParams
    eval: PolicyEvalParams
    samples_shown: int = Field(ge=0, description="questions whose responses are shown before/after training")
    verl: VerlParams

    @model_validator(mode="after")
    def _layout(self) -> Any:
        completions = self.batch_size * self.group_size
        if completions % self.micro_batch_size:
            raise ValueError(f"batch_size x group_size = {completions} must be a multiple of micro_batch_size")
        return self


class SFTBaselineParams(StrictModel):
    """The ``sft_baseline`` stage (Tables 6/9): SFT of the base policy on GRPO rollouts with high reward."""

    rollouts_dir: str = Field(description="folder of the GRPO runs (seed-<s>/rollouts.jsonl in it)")
    min_reward: float = Field(ge=0, le=1, description="keep rollouts with verifier reward >= this (paper 0.7)")
    seeds: list[int] = Field(min_length=1, description="one SFT run per seed, on that GRPO seed's rollouts")
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1, description="sequences per optimizer step")
    micro_batch_size: int = Field(ge=1, description="sequences per forward/backward pass on one device")
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    max_length: int = Field(ge=1, description="prompt + response tokens (longer samples are truncated)")
    bf16: bool
    gradient_checkpointing: bool
    threads: int = Field(ge=1)
    eval: PolicyEvalParams

    @model_validator(mode="after")
    def _layout(self) -> Any:
        if self.batch_size % self.micro_batch_size:
            raise ValueError("batch_size must be a multiple of micro_batch_size")
        return self
