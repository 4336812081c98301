"""GRPO on one node: RL query loading, the TRL config's batch layout, and a short real run that records its
rollouts, saves a loadable policy and is reused when asked again."""

from __future__ import annotations

import json

import pytest

from valor_lib import params
from valor_lib.policy.config import GRPOTrainingParams
from valor_lib.policy.grpo import (
    build_dataset,
    grpo_config,
    load_rl_queries,
    optimizer_layout,
    train_grpo,
    train_grpo_seeds,
    trim_rollouts,
)


def grpo_params(**overrides) -> GRPOTrainingParams:
    raw = params.apply_profile(params.load_raw(), "toy")["grpo_training"]
    return GRPOTrainingParams.model_validate({**raw, **overrides})


def test_rl_queries_are_read_in_order_with_a_limit(rl_queries):
    records = load_rl_queries(rl_queries)
    assert [r["id"] for r in records] == ["q0", "q1", "q2", "q3"]
    assert [r["id"] for r in load_rl_queries(rl_queries, limit=2)] == ["q0", "q1"]


@pytest.mark.parametrize("lines, message", [
    (['{"id": "a", "question": ""}'], "non-empty 'question'"),
    (['{"id": "a", "question": "How many?"}', '{"id": "a", "question": "Is it red?"}'], "unique"),
])
def test_bad_rl_query_files_are_refused(tmp_path, lines, message):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message):
        load_rl_queries(path)


def test_missing_rl_query_file_names_the_stage_that_writes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="query_generation"):
        load_rl_queries(tmp_path / "absent.jsonl")


def test_one_optimizer_step_per_generated_batch():
    p = grpo_params(batch_size=8, group_size=5, micro_batch_size=10)
    assert optimizer_layout(p) == (10, 4)
    config = grpo_config(p, "/tmp/unused", seed=3, use_cpu=True)
    assert config.per_device_train_batch_size * config.gradient_accumulation_steps == 40
    assert config.steps_per_generation == 4 and config.num_generations == 5
    assert (config.beta, config.epsilon, config.loss_type) == (p.kl_coef, p.clip_ratio, "grpo")
    with pytest.raises(ValueError, match="micro-batches"):
        optimizer_layout(p, world_size=3)


def test_prompts_longer_than_the_limit_are_left_out(tiny_policy, rl_queries):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_policy))
    records = load_rl_queries(rl_queries)
    dataset, dropped = build_dataset(records, tokenizer, examples=1, max_prompt_tokens=10_000)
    assert len(dataset) == 4 and not dropped
    assert set(dataset.column_names) == {"prompt", "question", "id"}
    lengths = [len(tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=False,
                                                 enable_thinking=False)) for row in dataset]
    _, dropped = build_dataset(records, tokenizer, examples=1, max_prompt_tokens=sorted(lengths)[1])
    assert 0 < len(dropped) < 4
    with pytest.raises(ValueError, match="longer than"):
        build_dataset(records, tokenizer, examples=1, max_prompt_tokens=1)


@pytest.mark.slow
def test_a_short_run_records_rollouts_saves_a_policy_and_is_reused(tiny_policy, rl_queries, tmp_path):
    from valor_lib.policy.generate import ProgramWriter

    p = grpo_params(batch_size=2, group_size=2, micro_batch_size=4, max_steps=2, save_steps=1,
                    max_response_tokens=24, lr=1.0e-3)
    out = tmp_path / "seed-0"
    run = train_grpo(f"hf:{tiny_policy}", load_rl_queries(rl_queries), p, out, seed=0, verifier="toy:verifier")
    assert run.steps == 2 and not run.reused and run.queries == 4
    rollouts = [json.loads(line) for line in (out / "rollouts.jsonl").read_text().splitlines()]
    assert len(rollouts) == 2 * 2 * 2  # steps x queries x group
    assert {r["question"] for r in rollouts} <= {r["question"] for r in load_rl_queries(rl_queries)}
    assert all(r["reward"] is None or 0.0 <= r["reward"] <= 1.0 for r in rollouts)
    assert all(set(r["heads"]) >= {"format", "logic"} for r in rollouts)
    assert any("reward" in h for h in run.history)
    writer = ProgramWriter(f"hf:{run.policy_dir}", {"temperature": 1.0, "top_p": 1.0, "max_tokens": 8},
                           device="cpu")
    assert writer.examples == 1 and len(writer.write(["How many chairs are there in the image?"], n=2, seed=0)[0]) == 2
    again = train_grpo(f"hf:{tiny_policy}", [], p, out, seed=0, verifier="toy:verifier")
    assert again.reused and again.steps == 2 and again.history == run.history


@pytest.mark.slow
def test_seeds_train_side_by_side_in_their_own_processes_and_are_reused(tiny_policy, rl_queries, tmp_path):
    p = grpo_params(batch_size=2, group_size=2, micro_batch_size=4, max_steps=1, save_steps=1,
                    max_response_tokens=16, lr=1.0e-3, seed_workers=2)
    records = load_rl_queries(rl_queries)
    runs = train_grpo_seeds(f"hf:{tiny_policy}", records, p, tmp_path, seeds=[0, 1], verifier="toy:verifier")
    assert sorted(runs) == [0, 1]
    assert [(r.seed, r.steps, r.reused, r.out_dir) for r in runs.values()] == [
        (0, 1, False, tmp_path / "seed-0"), (1, 1, False, tmp_path / "seed-1")]
    assert all((r.policy_dir / "config.json").is_file() for r in runs.values())
    again = train_grpo_seeds(f"hf:{tiny_policy}", records, p.model_copy(update={"seed_workers": 1}), tmp_path,
                             seeds=[0, 1], verifier="toy:verifier")
    assert all(r.reused for r in again.values())
    assert [r.history for r in again.values()] == [r.history for r in runs.values()]


def test_a_resumed_run_keeps_only_the_rollouts_before_its_checkpoint(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    path.write_text("".join(json.dumps({"step": s, "response": str(s)}) + "\n" for s in (0, 0, 1, 2, 2)))
    trim_rollouts(path, 2)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [0, 0, 1]
    trim_rollouts(path, 0)
    assert path.read_text() == ""
    trim_rollouts(tmp_path / "absent.jsonl", 3)
