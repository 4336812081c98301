"""Fixtures of the policy tests: a tiny toy policy saved to a folder and a small RL query file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory) -> Path:
    """A tiny toy policy (tokenizer + Qwen3) pretrained for a few steps on template programs."""
    import torch
    from policy_helpers import tiny_toy_policy

    from valor_lib.policy import toy_model

    torch.set_num_threads(1)
    questions = ["How many chairs are there in the image?", "Is the red chair to the left of the table?",
                 "How many times taller is the lamp than the box in 3D?",
                 "Which is closer to the camera, the sofa or the blue ball?"] * 4
    tokenizer, model, seqs = tiny_toy_policy(questions, examples=1, flaw_rate=0.5)
    toy_model.pretrain(model, seqs, epochs=2, batch_size=8, lr=3e-3, weight_decay=0.0, warmup_frac=0.1, seed=0,
                       pad_id=tokenizer.pad_token_id, progress=False)
    folder = tmp_path_factory.mktemp("policy")
    toy_model.save_policy(model, tokenizer, folder, 1, {"test": True})
    return folder


@pytest.fixture
def rl_queries(tmp_path) -> Path:
    """A small RL query file in notebook 01's record format."""
    questions = ["How many chairs are there in the image?", "Is the red chair to the left of the table?",
                 "How many times taller is the lamp than the box in 3D?",
                 "Which is closer to the camera, the sofa or the blue ball?"]
    path = tmp_path / "rl_queries.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "image": f"img{i}.png", "question": q, "source": "generated"})
                            + "\n" for i, q in enumerate(questions)))
    return path
