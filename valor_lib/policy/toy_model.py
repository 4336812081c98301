"""The toy base policy: a tiny Qwen3 causal LM with a locally trained tokenizer, saved like a hub checkpoint.

It loads through the same ``hf:<path>`` backend as Qwen3-8B (``AutoTokenizer``/``AutoModelForCausalLM`` with a
Qwen3-style chat template that knows ``enable_thinking``), so every later stage treats it as the real policy.

Tokenizer: byte-level BPE over word pieces (a piece is a run of non-space characters with its leading space;
``?.,:;!"`` are pieces of their own), trained on our questions and programs. Each line of the fixed
instructions (the system prompt: task, tool API, rules, worked examples) is one added token, the way chat
markup gets its own tokens: the instructions cost a token per line instead of a few hundred word pieces, while
questions, plans and programs stay in word pieces the model can copy between. The prompt text itself is
unchanged; only its token count is.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from valor_lib.policy.prompts import TEMPLATE_KWARGS, as_dicts, build_messages, system_prompt
from valor_lib.processes import torch_threads

PAD, IM_START, IM_END, THINK, END_THINK = "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"
SPECIAL_TOKENS = (PAD, IM_START, IM_END)
MIN_INSTRUCTION_LINE = 16  # shorter instruction lines ("<plan>", "1. First step.") stay word pieces
PIECE_PATTERN = r' ?[^\s?.,:;!"]+|[?.,:;!"]|\s+'

# Qwen3's layout: <|im_start|>role\ncontent<|im_end|>\n; an assistant turn after the last user turn carries an
# empty think block, which the generation prompt opens when thinking is switched off.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message.role == 'assistant' -%}"
    "{{ '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}"
    "{{ '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif -%}"
    "{%- endif -%}"
)


@dataclass(frozen=True)
class ToyArchitecture:
    """Size of the toy Qwen3."""

    hidden_size: int = 128
    intermediate_size: int = 512
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    max_positions: int = 1024


def instruction_lines() -> list[str]:
    """The lines of the fixed instructions (task, tools, format, rules; not the worked examples, whose lines
    look like responses) that become single tokens, each with the newline that follows it in the prompt."""
    lines = system_prompt(0).split("\n")
    out = [line + "\n" for line in lines[:-1] if len(line) >= MIN_INSTRUCTION_LINE]
    if len(lines[-1]) >= MIN_INSTRUCTION_LINE:
        out.extend([lines[-1], lines[-1] + "\n"])  # the last rule ends the prompt, or precedes the examples
    return list(dict.fromkeys(out))


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on ``texts``, with the instruction lines and chat markup added."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PIECE_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    # the chat roles join the corpus so the markup costs a token each
    core.train_from_iterator([*texts, *["system\nuser\nassistant\nQuestion: "] * 64], trainer)
    core.add_tokens([AddedToken(t, normalized=False) for t in (THINK, END_THINK, *instruction_lines())])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=IM_END, pad_token=PAD,
                                        additional_special_tokens=[IM_START], clean_up_tokenization_spaces=False)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(tokenizer: Any, arch: ToyArchitecture, seed: int) -> Any:
    """A freshly initialised ``Qwen3ForCausalLM`` sized by ``arch`` (tied embeddings)."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    if arch.heads % arch.kv_heads:
        raise ValueError(f"heads must be a multiple of kv_heads: {arch}")
    eos = tokenizer.convert_tokens_to_ids(IM_END)
    pad = tokenizer.convert_tokens_to_ids(PAD)
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=arch.hidden_size, intermediate_size=arch.intermediate_size,
        num_hidden_layers=arch.layers, num_attention_heads=arch.heads, num_key_value_heads=arch.kv_heads,
        head_dim=arch.head_dim, max_position_embeddings=arch.max_positions,
        tie_word_embeddings=True, bos_token_id=pad, eos_token_id=eos, pad_token_id=pad,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=[eos, pad], pad_token_id=pad, bos_token_id=pad,
                                               do_sample=True, temperature=1.0, top_p=1.0, top_k=0)
    return model


def prompt_ids(tokenizer: Any, question: str, examples: int) -> list[int]:
    """Token ids of the chat prompt for ``question``, exactly as generation sees them."""
    return tokenizer.apply_chat_template(as_dicts(build_messages(question, examples)), tokenize=True,
                                         add_generation_prompt=True, return_dict=False, **TEMPLATE_KWARGS)


def response_ids(tokenizer: Any, response: str) -> list[int]:
    """Token ids of a response followed by the end-of-turn token."""
    return tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.convert_tokens_to_ids(IM_END)]


@dataclass
class PretrainResult:
    """What pretraining did: loss per logged step, token counts, wall time."""

    steps: int = 0
    seconds: float = 0.0
    samples: int = 0
    tokens: int = 0
    losses: list[tuple[int, float]] = field(default_factory=list)
    prompt_tokens: int = 0
    mean_response_tokens: float = 0.0
    max_sequence_tokens: int = 0


def _batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Index batches of similar lengths (little padding), in random order."""
    order = np.argsort(np.asarray(lengths) + rng.random(len(lengths)), kind="stable")
    batches = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def shared_prefix(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix every sequence starts with (the fixed instructions)."""
    first = sequences[0]
    n = min(len(s) for s in sequences)
    for s in sequences[1:]:
        n = next((i for i in range(n) if s[i] != first[i]), n)
    return n


def sequence_loss(model: Any, prefix: list[int], suffixes: Sequence[list[int]], targets: Sequence[list[int]],
                  pad_id: int, weights: Sequence[list[float]] | None = None) -> Any:
    """Weighted mean cross-entropy of ``targets`` given ``prefix + suffix`` for each row; the shared prefix is
    run once.

    ``targets[i]`` is -100 where row ``i`` carries no loss; ``weights[i]`` (aligned with ``targets[i]``, default
    1 on every target) weighs each target token. The prefix's keys and values are computed once (with
    gradients) and broadcast to the batch, which is exact and saves running it per row.
    """
    import torch
    from transformers import DynamicCache

    rows, width = len(suffixes), max(len(s) for s in suffixes)
    ids = torch.full((rows, width), pad_id, dtype=torch.long)
    labels = torch.full((rows, width), -100, dtype=torch.long)
    mask = torch.zeros((rows, len(prefix) + width), dtype=torch.long)
    mask[:, :len(prefix)] = 1
    for row, (suffix, target) in enumerate(zip(suffixes, targets, strict=True)):
        ids[row, :len(suffix)] = torch.tensor(suffix)
        labels[row, :len(target)] = torch.tensor(target)
        mask[row, len(prefix):len(prefix) + len(suffix)] = 1
    cache = None
    if prefix:
        shared = model.model(input_ids=torch.tensor([prefix]), use_cache=True).cache
        cache = DynamicCache()
        for layer, entry in enumerate(shared.layers):
            cache.update(entry.keys.expand(rows, -1, -1, -1), entry.values.expand(rows, -1, -1, -1), layer)
    positions = torch.arange(len(prefix), len(prefix) + width).unsqueeze(0).expand(rows, -1)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache).logits
    # position t predicts token t + 1; the first suffix token is predicted from the prefix, which carries no loss
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)),
                                            labels[:, 1:].reshape(-1), ignore_index=-100, reduction="none")
    weight = torch.zeros((rows, width))
    for row, target in enumerate(targets):
        row_weights = weights[row] if weights is not None else [1.0] * len(target)
        weight[row, :len(target)] = torch.tensor([w if t != -100 else 0.0
                                                  for t, w in zip(target, row_weights, strict=True)])
    weight = weight[:, 1:].reshape(-1)
    return (nll * weight).sum() / weight.sum()


def copy_weights(own_prompt: Sequence[int], response: Sequence[int], copy_weight: float) -> list[float]:
    """Loss weight per response token: ``copy_weight`` for tokens found in ``own_prompt``, else 1."""
    seen = set(own_prompt)
    return [copy_weight if t in seen else 1.0 for t in response]


def pretrain(model: Any, sequences: Sequence[tuple[list[int], list[int]]], *, epochs: int, batch_size: int,
             lr: float, weight_decay: float, warmup_frac: float, seed: int, pad_id: int, log_every: int = 20,
             copy_weight: float = 1.0, progress: bool = True,
             on_log: Callable[[int, float], None] | None = None) -> PretrainResult:
    """Supervised training on (prompt ids, response ids) pairs; the loss covers response tokens only.

    ``copy_weight``: loss weight of response tokens that also occur in the prompt's own part, relative to 1
    for the rest. That part is the question and the chat markup after it, so the weighted tokens are mostly
    the question's words (nouns, colours, numbers, spatial words) plus punctuation, newlines and the end-of-turn
    token. Copying the question's noun phrases into the plan and the detector prompts is the skill a tiny
    model learns last; weighing it up speeds that up. The logged loss is the weighted mean. AdamW with linear warm-up and cosine decay, gradient
    norm clipped at 1; batches of similar lengths.
    """
    import torch

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    n_prefix = shared_prefix([p for p, _ in sequences])
    prefix = list(sequences[0][0][:n_prefix])
    suffixes = [p[n_prefix:] + r for p, r in sequences]
    targets = [[-100] * (len(p) - n_prefix) + r for p, r in sequences]
    weights = [[1.0] * (len(p) - n_prefix) + copy_weights(p[n_prefix:], r, copy_weight) for p, r in sequences]
    lengths = [len(s) for s in suffixes]
    plan = [batch for _ in range(epochs) for batch in _batches(lengths, batch_size, rng)]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98), foreach=True)
    warmup = max(1, int(warmup_frac * len(plan)))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, len(plan) - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    result = PretrainResult(samples=len(sequences), prompt_tokens=len(sequences[0][0]),
                            mean_response_tokens=round(float(np.mean([len(r) for _, r in sequences])), 1),
                            max_sequence_tokens=max(len(p) + len(r) for p, r in sequences))
    started = time.perf_counter()
    model.train()
    running = []
    for step, batch in enumerate(tqdm(plan, desc="pretrain", disable=not progress)):
        loss = sequence_loss(model, prefix, [suffixes[i] for i in batch], [targets[i] for i in batch], pad_id,
                             [weights[i] for i in batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running.append(loss.item())
        result.tokens += sum(len(p) + len(r) for p, r in (sequences[i] for i in batch))
        if (step + 1) % log_every == 0 or step + 1 == len(plan):
            mean = float(np.mean(running))
            result.losses.append((step + 1, round(mean, 4)))
            running = []
            if on_log is not None:
                on_log(step + 1, mean)
    model.eval()
    result.steps = len(plan)
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def save_policy(model: Any, tokenizer: Any, out_dir: str | Path, examples: int, report: dict[str, Any]) -> Path:
    """Save model, tokenizer (with its chat template), prompt layout and a training report to ``out_dir``."""
    from valor_lib.policy.prompts import save_prompt_config

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_prompt_config(out, examples)
    (out / "training_report.json").write_text(json.dumps(report, indent=1) + "\n")
    return out


def build_toy_policy(questions: Sequence[str], out_dir: str | Path, *, examples: int, flaw_rate: float,
                     flaw_weights: dict[str, float], programs_per_query: int, vocab_size: int,
                     arch: ToyArchitecture, epochs: int, batch_size: int, lr: float, weight_decay: float,
                     warmup_frac: float, seed: int, threads: int, progress: bool = True,
                     copy_weight: float = 1.0) -> dict[str, Any]:
    """The toy base policy end to end: template programs for ``questions``, tokenizer, model, pretraining,
    saved to ``out_dir`` (loadable as ``hf:<out_dir>``). Returns the training report (also saved)."""
    from valor_lib.policy.template_programmer import TemplateProgrammer

    started = time.perf_counter()
    programmer = TemplateProgrammer(flaw_rate, flaw_weights)
    rng = np.random.default_rng(seed)
    written = [programmer.sample(q, rng) for q in questions for _ in range(programs_per_query)]
    tokenizer = train_tokenizer([f"Question: {w.question}\n{w.text}" for w in written], vocab_size)
    model = build_model(tokenizer, arch, seed)
    sequences = [(prompt_ids(tokenizer, w.question, examples), response_ids(tokenizer, w.text)) for w in written]
    with torch_threads(threads):
        result = pretrain(model, sequences, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                          warmup_frac=warmup_frac, seed=seed, pad_id=tokenizer.pad_token_id, progress=progress,
                          copy_weight=copy_weight)
    flaws: dict[str, int] = {}
    for w in written:
        flaws[w.flaw or "correct"] = flaws.get(w.flaw or "correct", 0) + 1
    report = {
        "programs": len(written), "flaw_counts": dict(sorted(flaws.items())), "vocab": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()), "architecture": arch.__dict__,
        "examples": examples, "prompt_tokens": result.prompt_tokens, "mean_response_tokens": result.mean_response_tokens,
        "max_sequence_tokens": result.max_sequence_tokens, "steps": result.steps, "tokens": result.tokens,
        "copy_weight": copy_weight, "train_seconds": result.seconds, "losses": result.losses,
        "total_seconds": round(time.perf_counter() - started, 2), "seed": seed,
    }
    save_policy(model, tokenizer, out_dir, examples, report)
    return report
