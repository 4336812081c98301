"""The SFT baseline (paper §4.6, Tables 6/9): fine-tune the base policy on GRPO rollouts the verifier liked.

The data are VALOR's own training outputs with verifier reward >= 0.7 (``rollouts.jsonl`` of a GRPO run), so
RL and SFT learn from the same verifier-filtered traces. Training uses TRL's ``SFTTrainer`` on prompt-completion
pairs built with :func:`~valor_lib.policy.prompts.build_messages` (the loss covers the completion only) and
``enable_thinking=False`` in the chat template, like GRPO and evaluation.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from valor_lib.paths import require
from valor_lib.policy.config import SFTBaselineParams
from valor_lib.policy.grpo import HISTORY_FILE, POLICY_DIR, finished_run, local_path, save_trained
from valor_lib.policy.prompts import (
    TEMPLATE_KWARGS,
    as_dicts,
    build_messages,
    prompt_config,
)
from valor_lib.processes import torch_threads

ROLLOUT_HINT = "run the GRPO stage first (notebooks/04_grpo_training.ipynb, or `dvc repro grpo_training`)"


def high_reward_rollouts(path: str | Path, min_reward: float) -> list[dict[str, Any]]:
    """Rollouts with reward >= ``min_reward`` (dropped samples, reward None, never pass), each distinct
    (question, response) pair once, in file order."""
    file = require(Path(path), ROLLOUT_HINT)
    kept, seen = [], set()
    with file.open() as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            reward = row.get("reward")
            key = (row["question"], row["response"])
            if reward is None or reward < min_reward or key in seen:
                continue
            seen.add(key)
            kept.append(row)
    return kept


def sft_dataset(rows: Sequence[dict[str, Any]], examples: int) -> Any:
    """TRL's conversational prompt-completion dataset (with ``enable_thinking=False`` per row)."""
    from datasets import Dataset

    if not rows:
        raise ValueError("no rollouts reach the reward threshold: nothing to fine-tune on")
    return Dataset.from_list([{
        "prompt": as_dicts(build_messages(row["question"], examples)),
        "completion": [{"role": "assistant", "content": row["response"]}],
        "chat_template_kwargs": dict(TEMPLATE_KWARGS),
    } for row in rows])


def sft_config(p: SFTBaselineParams, out_dir: str | Path, seed: int, *, world_size: int = 1,
               use_cpu: bool | None = None) -> Any:
    """TRL ``SFTConfig`` from the stage params."""
    import torch
    from trl import SFTConfig

    per_step = p.micro_batch_size * world_size
    if p.batch_size % per_step:
        raise ValueError(f"batch_size {p.batch_size} must split into micro-batches of {p.micro_batch_size} on "
                         f"{world_size} device(s)")
    cpu = (not torch.cuda.is_available()) if use_cpu is None else use_cpu
    return SFTConfig(
        output_dir=str(out_dir), seed=seed, data_seed=seed, use_cpu=cpu,
        per_device_train_batch_size=p.micro_batch_size, gradient_accumulation_steps=p.batch_size // per_step,
        learning_rate=p.lr, weight_decay=p.weight_decay, lr_scheduler_type="cosine", warmup_steps=0.05,
        num_train_epochs=p.epochs, max_length=p.max_length, completion_only_loss=True, packing=False,
        bf16=p.bf16, activation_checkpointing=p.gradient_checkpointing, logging_steps=1, save_strategy="no",
        report_to="none", dataset_num_proc=None,
    )


@dataclass
class SFTRun:
    """A finished SFT run."""

    out_dir: Path
    policy_dir: Path
    seed: int
    samples: int
    steps: int
    seconds: float
    history: list[dict[str, Any]]
    reused: bool = False


def train_sft(policy: str, rows: Sequence[dict[str, Any]], p: SFTBaselineParams, out_dir: str | Path, *,
              seed: int) -> SFTRun:
    """Fine-tune ``policy`` on ``rows`` (question, response); writes ``policy/``, ``log_history.json`` and
    ``run.json`` in ``out_dir``; a finished run is returned as is."""
    import torch
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    out = Path(out_dir)
    if (done := finished_run(out)) is not None:
        history = json.loads((out / HISTORY_FILE).read_text())
        return SFTRun(out, out / POLICY_DIR, seed, done["samples"], done["steps"], done["seconds"], history, True)
    out.mkdir(parents=True, exist_ok=True)
    model_path = local_path(policy)
    examples = prompt_config(model_path if model_path.is_dir() else None)["examples"]
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    dataset = sft_dataset(rows, examples)
    args = sft_config(p, out, seed, world_size=int(os.environ.get("WORLD_SIZE", "1")))
    with torch_threads(None if torch.cuda.is_available() else p.threads):
        trainer = SFTTrainer(model=str(model_path), args=args, train_dataset=dataset, processing_class=tokenizer)
        started = time.perf_counter()
        trainer.train()
        seconds = round(time.perf_counter() - started, 2)
    history = save_trained(trainer, tokenizer, out, examples)
    (out / "run.json").write_text(json.dumps({"samples": len(dataset), "steps": trainer.state.global_step, "seconds": seconds,
                                   "seed": seed}, indent=1) + "\n")
    return SFTRun(out, out / POLICY_DIR, seed, len(dataset), trainer.state.global_step, seconds, history)
