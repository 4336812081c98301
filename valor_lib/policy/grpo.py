"""GRPO on one node with TRL's ``GRPOTrainer`` and the verifier reward (paper §3.1, A.6.1, Table 10).

    records = load_rl_queries("results/query_generation/rl_queries.jsonl")
    run = train_grpo("data/toy/models/policy-base", records, params, out_dir, seed=0, verifier="toy:verifier")

What it does:

- the RL queries become a conversational dataset built with :func:`~valor_lib.policy.prompts.build_messages`
  (the same messages as evaluation; ``enable_thinking=False`` through ``chat_template_kwargs``); queries whose
  prompt exceeds ``max_prompt_tokens`` are left out and counted (verl does the same);
- the reward is the rewards package's TRL function (format gate x weighted heads); every rollout is appended
  to ``rollouts.jsonl`` with its step, reward and heads (the SFT baseline's data);
- the paper's settings are set explicitly, since TRL's defaults differ: ``beta`` (KL coefficient, a loss term),
  ``epsilon`` (clip), ``loss_type="grpo"``, ``num_generations`` (group size), one optimizer step per generated
  batch (batch x group completions, accumulated over micro-batches), constant learning rate;
- checkpoints every ``save_steps``; a rerun resumes from the last one, and a finished run is not repeated;
- seeds: :func:`train_grpo_seeds` runs ``seed_workers`` seeds side by side on CPU (single-threaded tiny-model
  runs scale better over processes than over threads);
- curves: TRL's log history (total reward, ``valor/<head>`` means, KL, completion length) saved as
  ``log_history.json`` for the notebook's figures.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valor_lib.paths import repo_root, require
from valor_lib.policy.config import GRPOTrainingParams
from valor_lib.policy.prompts import (
    TEMPLATE_KWARGS,
    as_dicts,
    build_messages,
    prompt_config,
    save_prompt_config,
)
from valor_lib.processes import run_jobs, torch_threads
from valor_lib.resumable import encode_record

POLICY_DIR = "policy"
ROLLOUTS_FILE = "rollouts.jsonl"
HISTORY_FILE = "log_history.json"
RL_HINT = "build the RL query set first (notebooks/01_query_generation.ipynb, or `dvc repro query_generation`)"


def local_path(spec_or_path: str) -> Path:
    """A model folder from ``hf:<path>``/``vllm:<path>`` or a plain path (relative to the repo root), or a
    hub id left as it is."""
    arg = spec_or_path.split(":", 1)[1] if spec_or_path.split(":", 1)[0] in ("hf", "vllm") else spec_or_path
    path = Path(arg)
    if not path.is_absolute() and (repo_root() / path).exists():
        return repo_root() / path
    return path


def load_rl_queries(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """RL records (``id``, ``question``, optional ``image`` and ``source``) from JSON Lines, first ``limit``."""
    file = require(Path(path) if Path(path).is_absolute() else repo_root() / path, RL_HINT)
    records = []
    with file.open() as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if not isinstance(record.get("question"), str) or not record["question"].strip():
                raise ValueError(f"{file}:{n}: an RL record needs a non-empty 'question'")
            record.setdefault("id", f"query-{n - 1}")
            records.append(record)
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{file}: RL query ids must be unique")
    return records[:limit] if limit is not None else records


def build_dataset(records: Sequence[dict[str, Any]], tokenizer: Any, examples: int,
                  max_prompt_tokens: int) -> tuple[Any, list[str]]:
    """The TRL dataset (``prompt`` messages, ``question``, ``id``) and the ids left out for long prompts."""
    from datasets import Dataset

    rows, dropped = [], []
    for record in records:
        messages = as_dicts(build_messages(record["question"], examples))
        ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False,
                                            **TEMPLATE_KWARGS)
        if len(ids) > max_prompt_tokens:
            dropped.append(record["id"])
            continue
        rows.append({"prompt": messages, "question": record["question"], "id": str(record["id"])})
    if not rows:
        raise ValueError(f"every RL prompt is longer than max_prompt_tokens={max_prompt_tokens}")
    return Dataset.from_list(rows), dropped


def optimizer_layout(p: GRPOTrainingParams, world_size: int = 1) -> tuple[int, int]:
    """(per-device micro-batch, accumulation steps) giving one optimizer step per batch x group completions."""
    completions = p.batch_size * p.group_size
    per_step = p.micro_batch_size * world_size
    if completions % per_step:
        raise ValueError(f"batch_size x group_size = {completions} completions must split into micro-batches of "
                         f"{p.micro_batch_size} on {world_size} device(s)")
    return p.micro_batch_size, completions // per_step


def grpo_config(p: GRPOTrainingParams, out_dir: str | Path, seed: int, *, world_size: int = 1,
                use_cpu: bool | None = None) -> Any:
    """TRL ``GRPOConfig`` for Table 10's settings (or the toy's scaled ones) from the stage params."""
    import torch
    from trl import GRPOConfig

    micro, accumulation = optimizer_layout(p, world_size)
    cpu = (not torch.cuda.is_available()) if use_cpu is None else use_cpu
    return GRPOConfig(
        output_dir=str(out_dir), seed=seed, data_seed=seed, use_cpu=cpu,
        per_device_train_batch_size=micro, gradient_accumulation_steps=accumulation,
        steps_per_generation=accumulation, num_generations=p.group_size, num_iterations=1,
        learning_rate=p.lr, weight_decay=p.weight_decay, optim="adamw_torch", max_grad_norm=p.grad_clip,
        lr_scheduler_type="constant_with_warmup", warmup_steps=p.lr_warmup_steps,
        beta=p.kl_coef, epsilon=p.clip_ratio, loss_type="grpo", scale_rewards="group",
        temperature=p.temperature, top_p=p.top_p, top_k=0, max_completion_length=p.max_response_tokens,
        num_train_epochs=p.epochs, max_steps=p.max_steps if p.max_steps is not None else -1,
        chat_template_kwargs=dict(TEMPLATE_KWARGS), remove_unused_columns=False, shuffle_dataset=True,
        bf16=p.bf16, activation_checkpointing=p.gradient_checkpointing,
        use_vllm=p.vllm, vllm_mode="colocate", vllm_gpu_memory_utilization=p.rollout_gpu_memory_utilization,
        logging_steps=1, save_strategy="steps", save_steps=p.save_steps, save_total_limit=2,
        report_to="none", disable_tqdm=False, log_completions=False,
    )


class RolloutRecorder:
    """Wraps a TRL reward function: passes rewards through and appends each rollout to a JSON Lines file."""

    def __init__(self, reward_fn: Callable[..., list[float | None]], path: Path):
        self.reward_fn, self.path = reward_fn, path
        self.__name__ = getattr(reward_fn, "__name__", "reward")

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        from valor_lib.rewards.trl_adapter import completion_text

        heads: dict[str, list[Any]] = {}
        trl_extra = kwargs.get("log_extra")

        def capture(name: str, values: list[Any]) -> None:
            heads[name.removeprefix("valor/")] = list(values)
            if trl_extra is not None:
                trl_extra(name, values)

        rewards = self.reward_fn(prompts, completions, **{**kwargs, "log_extra": capture})
        state = kwargs.get("trainer_state")
        step = int(getattr(state, "global_step", 0) or 0)
        with self.path.open("ab") as fh:
            for i, (completion, reward) in enumerate(zip(completions, rewards, strict=True)):
                fh.write(encode_record({
                    "step": step, "id": kwargs.get("id", [None] * len(rewards))[i],
                    "question": kwargs["question"][i], "response": completion_text(completion), "reward": reward,
                    "heads": {h: v[i] for h, v in heads.items()},
                }))
        return rewards


@dataclass
class GRPORun:
    """A finished (or resumed and finished) GRPO run."""

    out_dir: Path
    policy_dir: Path
    seed: int
    steps: int
    seconds: float
    queries: int
    dropped: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: str | None = None
    reused: bool = False

    @property
    def steps_per_minute(self) -> float:
        return round(60 * self.steps / self.seconds, 2) if self.seconds else 0.0


def make_reward(verifier: str, p: GRPOTrainingParams, rollouts: Path) -> RolloutRecorder:
    """The verifier reward for TRL (rewards package), recording every rollout to ``rollouts``."""
    from valor_lib.rewards import trl_reward_function

    scorer = p.scorer.build(verifier, **(p.verifier_options or {}))
    return RolloutRecorder(trl_reward_function(scorer, query_column="question"), rollouts)


def save_trained(trainer: Any, tokenizer: Any, out: Path, examples: int) -> list[dict[str, Any]]:
    """Save a finished trainer's model, tokenizer and prompt layout to ``out/policy`` (a loadable ``hf:``
    checkpoint) and its log history to ``out/log_history.json``; returns the history."""
    final = out / POLICY_DIR
    if final.exists():
        shutil.rmtree(final)
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    save_prompt_config(final, examples)
    history = [dict(h) for h in trainer.state.log_history]
    (out / HISTORY_FILE).write_text(json.dumps(history, indent=1) + "\n")
    return history


def trim_rollouts(path: Path, steps: int) -> None:
    """Keep the rollouts of the first ``steps`` optimizer steps (a resumed run redoes the later ones)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_bytes().splitlines(keepends=True)
            if line.strip() and json.loads(line)["step"] < steps]
    path.write_bytes(b"".join(kept))


def finished_run(out_dir: Path) -> dict[str, Any] | None:
    """The ``run.json`` summary of a finished run in ``out_dir`` (its policy saved), or None."""
    summary = out_dir / "run.json"
    if summary.is_file() and (out_dir / POLICY_DIR / "config.json").is_file():
        return json.loads(summary.read_text())
    return None


def train_grpo(policy: str, records: Sequence[dict[str, Any]], p: GRPOTrainingParams, out_dir: str | Path, *,
               seed: int, verifier: str) -> GRPORun:
    """Train ``policy`` (a model folder, ``hf:`` spec or hub id) with GRPO on ``records``; see module doc.

    Outputs in ``out_dir``: ``checkpoint-*`` (the last two), ``policy/`` (final weights, tokenizer, prompt
    layout), ``rollouts.jsonl``, ``log_history.json`` and ``run.json``. A finished run is returned as is.
    """
    import torch
    from transformers import AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint
    from trl import GRPOTrainer

    out = Path(out_dir)
    if (done := finished_run(out)) is not None:
        history = json.loads((out / HISTORY_FILE).read_text())
        return GRPORun(out, out / POLICY_DIR, seed, done["steps"], done["seconds"], done["queries"],
                       done["dropped"], history, done.get("resumed_from"), reused=True)
    out.mkdir(parents=True, exist_ok=True)
    model_path = local_path(policy)
    examples = prompt_config(model_path if model_path.is_dir() else None)["examples"]
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    dataset, dropped = build_dataset(records, tokenizer, examples, p.max_prompt_tokens)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    args = grpo_config(p, out, seed, world_size=world_size)
    reward = make_reward(verifier, p, out / ROLLOUTS_FILE)
    with torch_threads(None if torch.cuda.is_available() else p.threads):
        trainer = GRPOTrainer(model=str(model_path), reward_funcs=[reward], args=args, train_dataset=dataset,
                              processing_class=tokenizer)
        last = get_last_checkpoint(str(out)) if any(out.glob("checkpoint-*")) else None
        trim_rollouts(out / ROLLOUTS_FILE, int(Path(last).name.split("-")[-1]) if last else 0)
        started = time.perf_counter()
        trainer.train(resume_from_checkpoint=last)
        seconds = round(time.perf_counter() - started, 2)
    history = save_trained(trainer, tokenizer, out, examples)
    summary = {"steps": trainer.state.global_step, "seconds": seconds, "queries": len(dataset), "dropped": dropped,
               "resumed_from": last, "seed": seed}
    (out / "run.json").write_text(json.dumps(summary, indent=1) + "\n")
    return GRPORun(out, out / POLICY_DIR, seed, trainer.state.global_step, seconds, len(dataset), dropped, history, last)


def train_grpo_seeds(policy: str, records: Sequence[dict[str, Any]], p: GRPOTrainingParams, runs_dir: str | Path,
                     *, seeds: Sequence[int], verifier: str) -> dict[int, GRPORun]:
    """One :func:`train_grpo` run per seed in ``runs_dir/seed-<s>``. On CPU, ``p.seed_workers`` runs go side by
    side in spawned processes (``p.threads`` threads each); on GPU, or with one worker, one after the other."""
    jobs = {s: {"policy": policy, "records": records, "p": p, "out_dir": Path(runs_dir) / f"seed-{s}", "seed": s,
                "verifier": verifier} for s in seeds}
    return run_jobs(train_grpo, jobs, p.seed_workers)
