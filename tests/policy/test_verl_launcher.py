"""The verl launcher writes data files and a command that are valid for verl 0.9 at the schema level.

verl is not installed here (it pins older transformers), so the keys and values our overrides rely on are
encoded below from verl 0.9's trainer config (``verl/trainer/config/ppo_trainer.yaml``, with the reward settings
under ``reward.*`` since the reward-config refactor), together with the batch-size rules its trainer checks.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from valor_lib.paths import repo_root
from valor_lib.policy.config import GRPOTrainingParams
from valor_lib.policy.grpo import load_rl_queries
from valor_lib.policy.prompts import build_messages
from valor_lib.policy.verl_launcher import (
    PARQUET_COLUMNS,
    REWARD_MODULE,
    verl_command,
    verl_overrides,
    write_launch_script,
    write_verl_data,
)

# verl 0.9 ppo_trainer keys our overrides use (leaf keys; "+" may only add keys under a dict-valued node)
VERL_KEYS = {
    "algorithm.adv_estimator", "algorithm.use_kl_in_reward", "algorithm.norm_adv_by_std_in_grpo",
    "data.train_files", "data.val_files", "data.prompt_key", "data.train_batch_size", "data.max_prompt_length",
    "data.max_response_length", "data.filter_overlong_prompts", "data.truncation", "data.shuffle", "data.seed",
    "actor_rollout_ref.model.path", "actor_rollout_ref.model.enable_gradient_checkpointing",
    "actor_rollout_ref.model.use_remove_padding", "actor_rollout_ref.actor.strategy",
    "actor_rollout_ref.actor.optim.lr", "actor_rollout_ref.actor.optim.weight_decay",
    "actor_rollout_ref.actor.optim.lr_warmup_steps", "actor_rollout_ref.actor.grad_clip",
    "actor_rollout_ref.actor.clip_ratio", "actor_rollout_ref.actor.use_kl_loss", "actor_rollout_ref.actor.kl_loss_coef",
    "actor_rollout_ref.actor.kl_loss_type", "actor_rollout_ref.actor.entropy_coeff",
    "actor_rollout_ref.actor.loss_agg_mode", "actor_rollout_ref.actor.ppo_epochs",
    "actor_rollout_ref.actor.ppo_mini_batch_size", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu",
    "actor_rollout_ref.actor.fsdp_config.param_offload", "actor_rollout_ref.actor.fsdp_config.optimizer_offload",
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu", "actor_rollout_ref.ref.fsdp_config.param_offload",
    "actor_rollout_ref.rollout.name", "actor_rollout_ref.rollout.n", "actor_rollout_ref.rollout.temperature",
    "actor_rollout_ref.rollout.top_p", "actor_rollout_ref.rollout.tensor_model_parallel_size",
    "actor_rollout_ref.rollout.gpu_memory_utilization", "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu",
    "reward.custom_reward_function.path", "reward.custom_reward_function.name",
    "trainer.total_epochs", "trainer.total_training_steps", "trainer.nnodes", "trainer.n_gpus_per_node",
    "trainer.project_name", "trainer.experiment_name", "trainer.logger", "trainer.save_freq", "trainer.test_freq",
    "trainer.val_before_train", "trainer.resume_mode", "trainer.default_local_dir",
}
VERL_DICT_NODES = {"data.apply_chat_template_kwargs"}
VERL_CHOICES = {
    "algorithm.adv_estimator": {"gae", "grpo", "reinforce_plus_plus", "rloo", "remax", "opo", "grpo_passk"},
    "actor_rollout_ref.actor.loss_agg_mode": {"token-mean", "seq-mean-token-sum", "seq-mean-token-mean",
                                              "seq-mean-token-sum-norm"},
    "actor_rollout_ref.actor.kl_loss_type": {"kl", "k1", "abs", "mse", "k2", "low_var_kl", "k3", "full"},
    "actor_rollout_ref.rollout.name": {"vllm", "sglang", "hf"},
    "data.truncation": {"error", "left", "right", "middle"},
    "trainer.resume_mode": {"auto", "disable", "resume_path"},
    "actor_rollout_ref.actor.strategy": {"fsdp", "fsdp2", "megatron"},
}


def _full_params() -> GRPOTrainingParams:
    raw = yaml.safe_load((repo_root() / "params.yaml").read_text())
    from valor_lib.params import apply_profile

    return GRPOTrainingParams.model_validate(apply_profile(raw, "full")["grpo_training"])


def _parsed(overrides: list[str]) -> dict[str, str]:
    out = {}
    for item in overrides:
        key, _, value = item.partition("=")
        assert key and value != "" and key not in out, item
        out[key] = value
    return out


@pytest.fixture
def data(tmp_path, rl_queries):
    return write_verl_data(load_rl_queries(rl_queries), tmp_path / "verl", examples=4, val_queries=2)


def test_parquet_rows_follow_verls_rl_dataset_layout(data, rl_queries):
    records = load_rl_queries(rl_queries)
    train, val = pd.read_parquet(data["train"]), pd.read_parquet(data["val"])
    assert tuple(train.columns) == PARQUET_COLUMNS and len(train) == len(records) and len(val) == 2
    for record, (_, row) in zip(records, train.iterrows(), strict=True):
        messages = [dict(m) for m in row["prompt"]]
        assert messages == [{"role": m.role, "content": m.text} for m in build_messages(record["question"], 4)]
        assert row["extra_info"]["question"] == record["question"] and row["extra_info"]["id"] == record["id"]
        assert row["reward_model"]["style"] == "rule" and row["reward_model"]["ground_truth"] == ""
        assert row["data_source"] == "valor" and isinstance(row["ability"], str)


def test_overrides_use_only_verl_keys_and_carry_table_10(data, tmp_path):
    p = _full_params()
    overrides = _parsed(verl_overrides(p, policy="Qwen/Qwen3-8B", data=data, seed=0, checkpoint_dir=tmp_path / "ck"))
    for key, value in overrides.items():
        if key.startswith("+"):
            assert any(key[1:].startswith(node + ".") for node in VERL_DICT_NODES), key
        else:
            assert key in VERL_KEYS, key
        if key in VERL_CHOICES:
            assert value in VERL_CHOICES[key], (key, value)
    table10 = {
        "data.train_batch_size": "64", "actor_rollout_ref.rollout.n": "5", "actor_rollout_ref.actor.optim.lr": "1e-06",
        "actor_rollout_ref.actor.optim.weight_decay": "0.01", "actor_rollout_ref.actor.kl_loss_coef": "0.01",
        "actor_rollout_ref.actor.use_kl_loss": "true", "algorithm.use_kl_in_reward": "false",
        "actor_rollout_ref.actor.clip_ratio": "0.2", "trainer.total_epochs": "4",
        "actor_rollout_ref.rollout.temperature": "1.0", "actor_rollout_ref.rollout.top_p": "1.0",
        "data.max_prompt_length": "6000", "data.max_response_length": "2000",
        "actor_rollout_ref.actor.grad_clip": "1.0", "actor_rollout_ref.rollout.name": "vllm",
        "algorithm.adv_estimator": "grpo", "+data.apply_chat_template_kwargs.enable_thinking": "false",
    }
    for key, value in table10.items():
        assert overrides[key] == value, key
    assert overrides["reward.custom_reward_function.path"].endswith(REWARD_MODULE)
    assert (repo_root() / REWARD_MODULE).is_file()


def test_batch_sizes_satisfy_verls_checks(data, tmp_path):
    p = _full_params()
    o = _parsed(verl_overrides(p, policy="Qwen/Qwen3-8B", data=data, seed=0, checkpoint_dir=tmp_path))
    gpus = int(o["trainer.nnodes"]) * int(o["trainer.n_gpus_per_node"])
    n, mini = int(o["actor_rollout_ref.rollout.n"]), int(o["actor_rollout_ref.actor.ppo_mini_batch_size"])
    assert mini <= int(o["data.train_batch_size"]) and (int(o["data.train_batch_size"]) * n) % gpus == 0
    assert (mini * n) % gpus == 0
    assert (mini * n // gpus) % int(o["actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu"]) == 0
    assert gpus % int(o["actor_rollout_ref.rollout.tensor_model_parallel_size"]) == 0


def test_launch_script_exports_the_verifier_and_runs_main_ppo(data, tmp_path):
    p = _full_params()
    overrides = verl_overrides(p, policy="Qwen/Qwen3-8B", data=data, seed=1, checkpoint_dir=tmp_path)
    assert verl_command(overrides)[:3] == ["python3", "-m", "verl.trainer.main_ppo"]
    script = write_launch_script(overrides, tmp_path / "launch.sh", verifier="gemini:gemini-2.5-flash")
    text = script.read_text()
    assert "export VALOR_LLM_VERIFIER=gemini:gemini-2.5-flash" in text
    assert "verl.trainer.main_ppo" in text and "trainer.experiment_name=valor-rl-seed1" in text
    assert script.stat().st_mode & 0o100
