"""The SFT baseline: which rollouts it learns from, and a short real run on them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from valor_lib import params
from valor_lib.policy.config import SFTBaselineParams
from valor_lib.policy.sft import high_reward_rollouts, sft_dataset, train_sft

QUESTION = "How many chairs are there in the image?"


def sft_params(**overrides) -> SFTBaselineParams:
    raw = params.apply_profile(params.load_raw(), "toy")["sft_baseline"]
    return SFTBaselineParams.model_validate({**raw, **overrides})


def write_rollouts(path, rows):
    path.write_text("".join(json.dumps({"step": 0, "id": "q", "heads": {}, **row}) + "\n" for row in rows))
    return path


def test_only_distinct_high_reward_rollouts_are_kept(tmp_path):
    path = write_rollouts(tmp_path / "rollouts.jsonl", [
        {"question": QUESTION, "response": "a", "reward": 0.9},
        {"question": QUESTION, "response": "a", "reward": 0.9},  # a repeat
        {"question": QUESTION, "response": "b", "reward": 0.5},  # too low
        {"question": QUESTION, "response": "c", "reward": None},  # dropped by the reward
        {"question": QUESTION, "response": "d", "reward": 0.7},  # at the threshold
    ])
    assert [r["response"] for r in high_reward_rollouts(path, 0.7)] == ["a", "d"]


def test_missing_rollouts_name_the_grpo_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match="grpo_training"):
        high_reward_rollouts(tmp_path / "absent.jsonl", 0.7)


def test_dataset_pairs_the_shared_prompt_with_the_response():
    dataset = sft_dataset([{"question": QUESTION, "response": "<plan>\n1. x\n</plan>"}], examples=1)
    row = dataset[0]
    assert row["prompt"][-1]["content"].endswith(QUESTION)
    assert row["completion"] == [{"role": "assistant", "content": "<plan>\n1. x\n</plan>"}]
    assert row["chat_template_kwargs"] == {"enable_thinking": False}
    with pytest.raises(ValueError, match="threshold"):
        sft_dataset([], examples=1)


def test_batch_must_split_into_micro_batches():
    with pytest.raises(ValueError, match="multiple"):
        sft_params(batch_size=6, micro_batch_size=4)


@pytest.mark.slow
def test_a_short_run_lowers_the_loss_and_saves_a_policy(tiny_policy, tmp_path):
    from valor_lib.policy.generate import ProgramWriter
    from valor_lib.policy.template_programmer import TemplateProgrammer

    rng = np.random.default_rng(0)
    rows = [{"question": QUESTION, "response": TemplateProgrammer(0.0).sample(QUESTION, rng).text}] * 4
    p = sft_params(epochs=4, batch_size=4, micro_batch_size=2, lr=3.0e-3)
    run = train_sft(f"hf:{tiny_policy}", rows, p, tmp_path / "seed-0", seed=0)
    losses = [h["loss"] for h in run.history if "loss" in h]
    assert run.samples == 4 and run.steps == 4 and losses[-1] < losses[0]
    writer = ProgramWriter(f"hf:{run.policy_dir}", {"temperature": 1.0, "top_p": 1.0, "max_tokens": 8}, device="cpu")
    assert writer.examples == 1
    assert train_sft(f"hf:{tiny_policy}", rows, p, tmp_path / "seed-0", seed=0).reused
