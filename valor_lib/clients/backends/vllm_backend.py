"""``vllm:<model>``: offline batched generation with ``vllm.LLM`` on a GPU (vllm is imported lazily).

Conversations go through ``LLM.chat`` in OpenAI message format (images as data URLs), one
``SamplingParams`` per request (``seed`` per request honoured); Qwen3 models get
``enable_thinking=False``. ``reasoning_effort`` is ignored.
"""

from __future__ import annotations

from typing import Any

from valor_lib.clients.backends.base import Backend, Reply
from valor_lib.clients.backends.hf_backend import weights_fingerprint
from valor_lib.clients.backends.openai_backend import _chat_message, is_qwen3
from valor_lib.clients.errors import ClientConfigError
from valor_lib.clients.types import ChatRequest


class VLLMBackend(Backend):
    """One ``vllm.LLM`` engine; the client feeds it batches of up to ``batch_size`` requests."""

    kind = "vllm"
    batched = True
    default_concurrency = 1024
    default_cache = "off"

    def __init__(self, model: str, *, batch_size: int = 512, default_max_tokens: int = 2048,
                 **engine_kwargs: Any):
        super().__init__(model)
        try:
            import vllm
        except ImportError as err:
            raise ClientConfigError(f"vllm:{model} needs the vllm package (GPU machines: pip install '.[gpu]')") from err
        import torch

        if not torch.cuda.is_available():
            raise ClientConfigError(f"vllm:{model} needs a CUDA GPU; use hf:{model} on CPU")
        self._vllm = vllm
        self.batch_size, self.default_max_tokens = batch_size, default_max_tokens
        self.llm = vllm.LLM(model=model, **engine_kwargs)
        self.fingerprint = weights_fingerprint(model)

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "weights": self.fingerprint}

    def sampling_params(self, request: ChatRequest) -> Any:
        p = request.params
        values = {"temperature": p.temperature, "top_p": p.top_p, "top_k": p.top_k,
                  "seed": request.effective_seed, "stop": list(p.stop) or None}
        return self._vllm.SamplingParams(max_tokens=p.max_tokens or self.default_max_tokens,
                                         **{k: v for k, v in values.items() if v is not None})

    def generate_batch(self, requests: list[ChatRequest]) -> list[Reply]:
        conversations = [[_chat_message(m) for m in r.messages] for r in requests]
        template_kwargs = {"enable_thinking": False} if is_qwen3(self.model) else None
        outputs = self.llm.chat(conversations, sampling_params=[self.sampling_params(r) for r in requests],
                                use_tqdm=False, chat_template_kwargs=template_kwargs)
        replies = []
        for out in outputs:
            completion = out.outputs[0]
            replies.append(Reply(completion.text, len(out.prompt_token_ids or []), len(completion.token_ids),
                                 completion.finish_reason))
        return replies
