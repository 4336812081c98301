"""``vllm:<model>``: offline batching on a GPU (skipped where vllm or CUDA is missing)."""

from __future__ import annotations

import pytest

from valor_lib.clients import ChatClient, ChatRequest, ClientConfigError

pytestmark = pytest.mark.gpu


def _gpu_ready() -> bool:
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def test_vllm_is_refused_clearly_without_it():
    if _gpu_ready():
        pytest.skip("vllm and a GPU are present")
    with pytest.raises(ClientConfigError, match="vllm"):
        ChatClient("vllm:Qwen/Qwen3-0.6B")


@pytest.mark.skipif(not _gpu_ready(), reason="needs vllm and a CUDA GPU")
def test_vllm_batches_and_seeds(tmp_path):
    import os

    model = os.environ.get("VALOR_VLLM_TEST_MODEL", "Qwen/Qwen3-0.6B")
    with ChatClient(f"vllm:{model}", gpu_memory_utilization=0.3, max_model_len=2048) as client:
        group = [ChatRequest.from_prompt("Name a colour.", temperature=1.0, max_tokens=8, seed=1)] * 4
        results = client.map(group, progress=False)
        assert all(r.ok and r.output_tokens <= 8 for r in results)
        again = client.map(group, progress=False)
        assert [r.text for r in again] == [r.text for r in results]  # per-request seeds
        greedy = client.complete(ChatRequest.from_prompt("Say yes.", temperature=0.0, max_tokens=4))
        assert greedy.ok and greedy.input_tokens > 0
