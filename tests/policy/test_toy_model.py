"""The toy base policy's pretraining loss: shared-prefix exactness and the copy weighting."""

from __future__ import annotations

import pytest
from policy_helpers import tiny_toy_policy

from valor_lib.policy import toy_model

QUESTIONS = ["How many chairs are there in the image?", "Is the red chair to the left of the table?",
             "Which is closer to the camera, the sofa or the blue ball?"]


@pytest.fixture(scope="module")
def tiny():
    """A tokenizer, a one-layer Qwen3 trained a few steps (so token losses differ) and (prompt, response) id
    pairs for three questions."""
    import torch

    torch.set_num_threads(1)
    tokenizer, model, seqs = tiny_toy_policy(QUESTIONS, examples=0, flaw_rate=0.0)
    toy_model.pretrain(model, seqs, epochs=6, batch_size=3, lr=3e-3, weight_decay=0.0, warmup_frac=0.1, seed=0,
                       pad_id=tokenizer.pad_token_id, progress=False)
    return tokenizer, model, seqs


def _per_token_nll(model, prompt: list[int], response: list[int]):
    """Negative log-likelihood of each response token from one plain forward pass over the whole sequence."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([prompt + response])).logits[0, len(prompt) - 1:-1]
    return -torch.log_softmax(logits, -1)[torch.arange(len(response)), torch.tensor(response)]


def _loss_inputs(seqs):
    n = toy_model.shared_prefix([p for p, _ in seqs])
    prefix = list(seqs[0][0][:n])
    suffixes = [p[n:] + r for p, r in seqs]
    targets = [[-100] * (len(p) - n) + r for p, r in seqs]
    return n, prefix, suffixes, targets


def test_copy_weights_mark_the_question_tokens():
    assert toy_model.copy_weights([5, 7, 9], [1, 7, 2, 9, 9], 4.0) == [1.0, 4.0, 1.0, 4.0, 4.0]
    assert toy_model.copy_weights([], [1, 2], 4.0) == [1.0, 1.0]


def test_shared_prefix_loss_is_the_plain_mean_cross_entropy(tiny):
    import torch

    tokenizer, model, seqs = tiny
    _, prefix, suffixes, targets = _loss_inputs(seqs)
    with torch.no_grad():
        loss = toy_model.sequence_loss(model, prefix, suffixes, targets, tokenizer.pad_token_id).item()
    nll = torch.cat([_per_token_nll(model, p, r) for p, r in seqs])
    assert loss == pytest.approx(nll.mean().item(), rel=1e-4)


def test_weighted_loss_is_the_weighted_mean(tiny):
    import torch

    tokenizer, model, seqs = tiny
    n, prefix, suffixes, targets = _loss_inputs(seqs)
    weights = [[1.0] * (len(p) - n) + toy_model.copy_weights(p[n:], r, 4.0) for p, r in seqs]
    with torch.no_grad():
        loss = toy_model.sequence_loss(model, prefix, suffixes, targets, tokenizer.pad_token_id, weights).item()
    nll = torch.cat([_per_token_nll(model, p, r) for p, r in seqs])
    w = torch.tensor([x for p, r in seqs for x in toy_model.copy_weights(p[n:], r, 4.0)])
    assert 4.0 in w.tolist() and 1.0 in w.tolist()  # the responses copy some question words and not others
    assert loss == pytest.approx(((nll * w).sum() / w.sum()).item(), rel=1e-4)
    assert loss != pytest.approx(nll.mean().item(), rel=1e-4)  # the weights matter


def test_pretraining_with_copy_weight_lowers_the_loss(tiny):
    tokenizer, _, seqs = tiny
    _, model, _ = tiny_toy_policy(QUESTIONS, examples=0, flaw_rate=0.0, seed=1)
    result = toy_model.pretrain(model, seqs * 4, epochs=3, batch_size=4, lr=3e-3, weight_decay=0.0,
                                warmup_frac=0.1, seed=0, pad_id=tokenizer.pad_token_id, log_every=3,
                                copy_weight=4.0, progress=False)
    assert result.steps == 9
    assert result.losses[-1][1] < result.losses[0][1]
