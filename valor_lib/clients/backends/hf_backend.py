"""``hf:<path-or-id>``: a local transformers causal LM answering chat requests, in batches, on CPU or GPU.

Prompts are rendered with the tokenizer's chat template (``enable_thinking=False`` whenever the template
knows that switch, as Qwen3's does) and left-padded. Requests with the same sampling parameters share one
``generate`` call. Notes: text-only (an image in a request is a ``bad_request`` failure); ``seed`` seeds
torch once per batch (the batch's first effective seed), so per-request seeds hold only for batches of one;
``reasoning_effort`` is ignored; stop strings end generation and are cut from the answer.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any

from valor_lib.clients.backends.base import Backend, Reply
from valor_lib.clients.errors import CallError
from valor_lib.clients.types import ChatRequest, SamplingParams

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt")


def weights_fingerprint(path: str) -> str | None:
    """A cheap fingerprint of a local model folder (file names, sizes, mtimes), None for hub ids, so
    cached answers of a retrained model under the same path are not reused."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.suffix in WEIGHT_SUFFIXES:
            st = f.stat()
            digest.update(f"{f.relative_to(folder)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class HFBackend(Backend):
    """``AutoModelForCausalLM`` + ``AutoTokenizer`` from a local folder (or the hub when allowed)."""

    kind = "hf"
    batched = True
    default_concurrency = 64
    default_cache = "off"

    def __init__(self, path: str, *, device: str = "auto", dtype: str = "auto", batch_size: int = 8,
                 default_max_tokens: int = 512):
        super().__init__(path)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = resolve_device(device)
        self.batch_size, self.default_max_tokens = batch_size, default_max_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.tokenizer.chat_template:
            raise ValueError(f"hf:{path}: the tokenizer has no chat template")
        self.lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device).eval()
        self.template_kwargs = {"enable_thinking": False} if "enable_thinking" in self.tokenizer.chat_template else {}
        eos = self.lm.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = sorted(i for i in eos_ids if i is not None)
        self.fingerprint = weights_fingerprint(path)

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "weights": self.fingerprint}

    def render(self, request: ChatRequest) -> str:
        """The prompt text the model continues."""
        messages = [{"role": m.role, "content": m.text} for m in request.messages]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                  **self.template_kwargs)

    def generate_batch(self, requests: list[ChatRequest]) -> list[Reply | CallError]:
        replies: list[Reply | CallError | None] = [None] * len(requests)
        groups: dict[SamplingParams, list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            if any(m.images for m in request.messages):
                replies[i] = CallError("bad_request", f"hf:{self.model} is a text-only model; request has images")
            else:
                groups[request.params].append(i)
        for params, indices in groups.items():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                for i, reply in zip(chunk, self._generate([requests[i] for i in chunk], params), strict=True):
                    replies[i] = reply
        return replies

    def _generate(self, requests: list[ChatRequest], params: SamplingParams) -> list[Reply]:
        import torch

        prompts = [self.render(r) for r in requests]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        max_new = params.max_tokens or self.default_max_tokens
        kwargs: dict[str, Any] = {"max_new_tokens": max_new, "do_sample": params.is_sampling,
                                  "pad_token_id": self.tokenizer.pad_token_id, "eos_token_id": self.eos_ids}
        if params.is_sampling:
            kwargs.update({k: v for k, v in (("temperature", params.temperature), ("top_p", params.top_p),
                                               ("top_k", params.top_k)) if v is not None})
            if requests[0].effective_seed is not None:
                torch.manual_seed(requests[0].effective_seed)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            out = self.lm.generate(**enc, **kwargs)
        new_tokens = out[:, enc["input_ids"].shape[1]:].tolist()
        input_counts = enc["attention_mask"].sum(dim=1).tolist()
        return [self._reply(tokens, n_in, max_new, params.stop) for tokens, n_in in zip(new_tokens, input_counts,
                                                                                        strict=True)]

    def _reply(self, tokens: list[int], n_in: int, max_new: int, stop: tuple[str, ...]) -> Reply:
        ended = next((j for j, t in enumerate(tokens) if t in self.eos_ids), None)
        kept = tokens if ended is None else tokens[:ended]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        cut = [text.index(s) for s in stop if s in text]
        finish = "stop" if ended is not None or cut else ("length" if len(tokens) >= max_new else "stop")
        if cut:
            text = text[:min(cut)]
        n_out = len(kept) + (ended is not None)
        return Reply(text, int(n_in), n_out, finish)
