"""Multi-node GRPO with verl 0.9 (Ray, FSDP, vLLM rollout): data files, the full command, a launch script.

    paths = write_verl_data(records, "results/grpo_training/verl", examples=4, seed=0)
    overrides = verl_overrides(params, policy="Qwen/Qwen3-8B", data=paths, seed=0)
    script = write_launch_script(overrides, "results/grpo_training/verl/launch_verl.sh", verifier="gemini:...")

verl is not installed here (it pins older transformers and CUDA torch; README, "Multi-node GRPO with verl"),
so nothing in this module imports it. What it writes:

- ``train.parquet`` / ``val.parquet`` in verl's RL dataset layout: ``data_source``, ``prompt`` (the chat
  messages of :func:`~valor_lib.policy.prompts.build_messages`, the same as TRL and evaluation), ``ability``,
  ``reward_model`` (``style``, an empty ``ground_truth``: training is label-free) and ``extra_info`` (our query
  under ``question``, read by ``valor_lib/rewards/verl_reward.py``, plus ``id`` and ``index``);
- Hydra overrides for ``python3 -m verl.trainer.main_ppo`` carrying Table 10 (batch 64, group 5, lr 1e-6, AdamW
  wd 0.01, KL 0.01 as a loss term (``use_kl_loss``; not in the reward), clip 0.2, 4 epochs, temperature 1.0,
  top-p 1.0, max prompt 6000, max response 2000, grad clip 1.0) with ``enable_thinking=False`` in the chat
  template, the reward module of the rewards package, and the cluster shape from params;
- ``launch_verl.sh``: the command, with the LLM verifier passed to every Ray worker through the environment.

The loss aggregation is ``seq-mean-token-mean``, the same objective as TRL's ``loss_type="grpo"``, so the
single-node and multi-node trainers optimise the same thing.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from valor_lib.paths import repo_root
from valor_lib.policy.config import GRPOTrainingParams
from valor_lib.policy.prompts import as_dicts, build_messages

DATA_SOURCE = "valor"
ABILITY = "spatial-reasoning"
REWARD_MODULE = "valor_lib/rewards/verl_reward.py"
REWARD_FUNCTION = "compute_score"
VERIFIER_ENV = "VALOR_LLM_VERIFIER"
PARQUET_COLUMNS = ("data_source", "prompt", "ability", "reward_model", "extra_info")


def verl_rows(records: Sequence[dict[str, Any]], examples: int) -> list[dict[str, Any]]:
    """One verl dataset row per RL query."""
    rows = []
    for index, record in enumerate(records):
        rows.append({
            "data_source": DATA_SOURCE,
            "prompt": as_dicts(build_messages(record["question"], examples)),
            "ability": ABILITY,
            "reward_model": {"style": "rule", "ground_truth": ""},
            "extra_info": {"question": record["question"], "id": str(record.get("id", index)), "index": index,
                           "source": str(record.get("source", ""))},
        })
    return rows


def write_verl_data(records: Sequence[dict[str, Any]], out_dir: str | Path, *, examples: int,
                    val_queries: int = 8) -> dict[str, Path]:
    """Write ``train.parquet`` (every query) and ``val.parquet`` (the first ``val_queries``, for verl's
    optional validation pass) under ``out_dir``."""
    import pandas as pd

    if not records:
        raise ValueError("no RL queries to write")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = verl_rows(records, examples)
    paths = {"train": out / "train.parquet", "val": out / "val.parquet"}
    pd.DataFrame(rows, columns=list(PARQUET_COLUMNS)).to_parquet(paths["train"], index=False)
    pd.DataFrame(rows[:val_queries], columns=list(PARQUET_COLUMNS)).to_parquet(paths["val"], index=False)
    return paths


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_value(v) for v in value) + "]"
    if value is None:
        return "null"
    return str(value)


def verl_overrides(p: GRPOTrainingParams, *, policy: str, data: dict[str, Path], seed: int,
                   checkpoint_dir: str | Path) -> list[str]:
    """Hydra overrides (``key=value``) for ``verl.trainer.main_ppo`` from the stage params (Table 10)."""
    v = p.verl
    gpus = v.nodes * v.gpus_per_node
    completions = p.batch_size * p.group_size
    if completions % gpus:
        raise ValueError(f"{completions} rollouts per step do not split over {gpus} GPUs")
    settings: dict[str, Any] = {
        "algorithm.adv_estimator": "grpo",
        "algorithm.use_kl_in_reward": False,
        "algorithm.norm_adv_by_std_in_grpo": True,
        "data.train_files": str(data["train"]),
        "data.val_files": str(data["val"]),
        "data.prompt_key": "prompt",
        "data.train_batch_size": p.batch_size,
        "data.max_prompt_length": p.max_prompt_tokens,
        "data.max_response_length": p.max_response_tokens,
        "data.filter_overlong_prompts": True,
        "data.truncation": "error",
        "data.shuffle": True,
        "data.seed": seed,
        "+data.apply_chat_template_kwargs.enable_thinking": False,
        "actor_rollout_ref.model.path": policy,
        "actor_rollout_ref.model.enable_gradient_checkpointing": p.gradient_checkpointing,
        "actor_rollout_ref.model.use_remove_padding": True,
        "actor_rollout_ref.actor.strategy": "fsdp",
        "actor_rollout_ref.actor.optim.lr": p.lr,
        "actor_rollout_ref.actor.optim.weight_decay": p.weight_decay,
        "actor_rollout_ref.actor.optim.lr_warmup_steps": p.lr_warmup_steps,
        "actor_rollout_ref.actor.grad_clip": p.grad_clip,
        "actor_rollout_ref.actor.clip_ratio": p.clip_ratio,
        "actor_rollout_ref.actor.use_kl_loss": True,
        "actor_rollout_ref.actor.kl_loss_coef": p.kl_coef,
        "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
        "actor_rollout_ref.actor.entropy_coeff": 0,
        "actor_rollout_ref.actor.loss_agg_mode": "seq-mean-token-mean",
        "actor_rollout_ref.actor.ppo_epochs": 1,
        "actor_rollout_ref.actor.ppo_mini_batch_size": p.batch_size,
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": v.micro_batch_per_gpu,
        "actor_rollout_ref.actor.fsdp_config.param_offload": v.param_offload,
        "actor_rollout_ref.actor.fsdp_config.optimizer_offload": v.param_offload,
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": v.log_prob_micro_batch_per_gpu,
        "actor_rollout_ref.ref.fsdp_config.param_offload": v.param_offload,
        "actor_rollout_ref.rollout.name": "vllm",
        "actor_rollout_ref.rollout.n": p.group_size,
        "actor_rollout_ref.rollout.temperature": p.temperature,
        "actor_rollout_ref.rollout.top_p": p.top_p,
        "actor_rollout_ref.rollout.tensor_model_parallel_size": v.rollout_tensor_parallel,
        "actor_rollout_ref.rollout.gpu_memory_utilization": p.rollout_gpu_memory_utilization,
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": v.log_prob_micro_batch_per_gpu,
        "reward.custom_reward_function.path": str(repo_root() / REWARD_MODULE),
        "reward.custom_reward_function.name": REWARD_FUNCTION,
        "trainer.total_epochs": p.epochs,
        "trainer.nnodes": v.nodes,
        "trainer.n_gpus_per_node": v.gpus_per_node,
        "trainer.project_name": v.project,
        "trainer.experiment_name": f"{v.experiment}-seed{seed}",
        "trainer.logger": ["console"],
        "trainer.save_freq": v.save_freq,
        "trainer.test_freq": -1,
        "trainer.val_before_train": False,
        "trainer.resume_mode": "auto",
        "trainer.default_local_dir": str(checkpoint_dir),
    }
    if p.max_steps is not None:
        settings["trainer.total_training_steps"] = p.max_steps
    return [f"{key}={_value(value)}" for key, value in settings.items()]


def verl_command(overrides: Sequence[str]) -> list[str]:
    """The full command line (argv) that runs verl's PPO entry point with ``overrides``."""
    return ["python3", "-m", "verl.trainer.main_ppo", *overrides]


def write_launch_script(overrides: Sequence[str], path: str | Path, *, verifier: str) -> Path:
    """A shell script that runs the command on the head node of a running Ray cluster (README)."""
    script = Path(path)
    script.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "#!/usr/bin/env bash",
        "# Generated from params.yaml (grpo_training) by valor_lib.policy.verl_launcher; run on the Ray head node",
        "# of a cluster started as in README.md, 'Multi-node GRPO with verl', from the repository root.",
        "set -euo pipefail",
        f"export {VERIFIER_ENV}={shlex.quote(verifier)}  # the LLM verifier every reward worker calls",
        'export RAY_ADDRESS="${RAY_ADDRESS:-auto}"',
        " \\\n    ".join(shlex.quote(arg) for arg in verl_command(overrides)),
        "",
    ]
    script.write_text("\n".join(lines))
    script.chmod(0o755)
    return script
