"""Train a transformers GroundingDINO on detection datasets: a plain torch loop, resumable.

Used for the toy detector's pretraining and for fine-tuning on VLM-verified pseudo-labels (paper Table 11:
AdamW, StepLR, gradient clipping, frozen vision and text encoders, a balanced sampler over source datasets; a
linear warm-up and a cosine schedule as options).

    result = train_detector(model, processor, [dataset_a, dataset_b], "out/detector", TrainConfig(epochs=4))

With ``select_every`` and a ``validate`` function (a score on held-out data, higher is better) the weights of
the best-scoring epoch are kept rather than the last ones: a short from-scratch pretraining can lose its box
regression in a late spike, and one validation set picks the epoch, nothing downstream.

The output folder gets the model and processor (``save_pretrained``, loadable as ``groundingdino-hf:<folder>``),
``history.json`` (loss per step) and ``training.json`` (config, time, peak memory, validation scores). While
training, ``<folder>/checkpoint/state.pt`` holds everything needed to resume (weights, optimizer, scheduler, step,
loss history, validation scores and the best weights so far); it is rewritten atomically every
``checkpoint_every`` steps and at each epoch end, and a rerun with the same arguments continues from it.
Batches, captions and flips are a function of (seed, epoch, batch), so a resumed run continues exactly as an
uninterrupted one would have.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from valor_lib.detection.collate import GroundingCollator
from valor_lib.detection.data import DetectionDataset
from valor_lib.detection.device import resolve_device
from valor_lib.detection.loss import install_grounding_loss
from valor_lib.detection.sampler import BalancedBatchSampler
from valor_lib.processes import torch_threads

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"


LOSS_KEYS: tuple[str, ...] = ("loss", "loss_ce", "loss_bbox", "loss_giou")
SCHEDULERS = ("step", "cosine")


def batch_schedule(sampler: BalancedBatchSampler, step: int, total: int) -> Iterator[tuple[int, int, list]]:
    """``(epoch, index, batch ids)`` for steps ``step`` .. ``total - 1``; each epoch's batches are drawn once."""
    per_epoch = len(sampler)
    drawn: tuple[int, list] = (-1, [])
    for current in range(step, total):
        epoch, index = divmod(current, per_epoch)
        if drawn[0] != epoch:
            drawn = (epoch, sampler.epoch(epoch))
        yield epoch, index, drawn[1][index]


def step_losses(output: Any) -> dict[str, torch.Tensor]:
    """The detached total and component losses of one GroundingDINO forward pass."""
    parts = {k: v.detach() for k, v in output.loss_dict.items() if k in LOSS_KEYS}
    return {"loss": output.loss.detach(), **parts}


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (defaults: the paper's fine-tuning recipe, Table 11)."""

    epochs: int = 4
    batches_per_epoch: int | None = None  # default: all images / batch_size
    batch_size: int = 16
    lr: float = 1.0e-6
    weight_decay: float = 1.0e-4
    adam_beta2: float = 0.999  # AdamW's second-moment decay (lower: faster to forget an old gradient scale)
    backbone_lr_scale: float = 1.0  # the vision backbone's lr, a fraction of lr (when it trains)
    scheduler: str = "step"  # step: lr x lr_gamma every lr_step_epochs | cosine: per step down to 0
    lr_step_epochs: int = 4  # StepLR step size, in epochs
    lr_gamma: float = 0.1
    warmup_steps: int = 0  # linear warm-up from lr / warmup_steps, before either schedule
    select_every: int = 0  # validate every N epochs (and after the last) and keep the best weights; 0: the last
    grad_clip: float = 0.1
    freeze_backbone: bool = True
    freeze_text: bool = True
    max_labels: int = 50  # phrases per caption: positives + sampled negatives
    p_coarse: float = 0.5  # with ``parents``: chance a present group is named by its coarse name
    hflip: float = 0.5
    checkpoint_every: int = 200  # steps
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    bf16: bool = False  # autocast to bfloat16 (CUDA only)
    threads: int | None = None  # torch CPU threads (None: leave as is)

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.select_every < 0:
            raise ValueError(f"select_every must be >= 0, got {self.select_every}")
        if not 0 < self.adam_beta2 < 1:
            raise ValueError(f"adam_beta2 must be in (0, 1), got {self.adam_beta2}")
        if self.backbone_lr_scale <= 0:
            raise ValueError(f"backbone_lr_scale must be > 0, got {self.backbone_lr_scale}")


@dataclass
class TrainResult:
    """What a training run produced."""

    out_dir: Path
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    resumed_from: int = 0
    cpu_seconds: float = 0.0  # process CPU time (all threads): robust to other load on the machine
    validation: list[dict[str, float]] = field(default_factory=list)  # {"epoch", "step", "score"} per check
    selected_epoch: int | None = None  # the epoch whose weights were kept (None: the last, no selection)


def lr_factor(step: int, cfg: TrainConfig, per_epoch: int, total: int) -> float:
    """The learning rate after ``step`` optimizer steps, as a fraction of ``cfg.lr``: a linear warm-up over
    ``cfg.warmup_steps``, then StepLR (``lr_gamma`` every ``lr_step_epochs`` epochs of ``per_epoch`` steps) or a
    cosine from 1 to 0 over the remaining steps of ``total``."""
    warm = cfg.warmup_steps
    if step < warm:
        return (step + 1) / warm
    if cfg.scheduler == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step - warm, total - warm) / max(total - warm, 1)))
    return cfg.lr_gamma ** (step // (cfg.lr_step_epochs * per_epoch))


def lr_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, per_epoch: int,
                total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """:func:`lr_factor` as a scheduler stepped after every optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg, per_epoch, total))


@dataclass
class Selection:
    """Validation scores so far and a copy of the best-scoring weights (the first best wins ties)."""

    scores: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_state: dict[str, torch.Tensor] | None = None

    def record(self, epoch: int, step: int, score: float, model: Any) -> None:
        score = round(score, 4)
        if self.best_epoch is None or score > max(s["score"] for s in self.scores):
            self.best_epoch = epoch
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.scores.append({"epoch": epoch, "step": step, "score": score})


def set_trainable(model: Any, freeze_backbone: bool, freeze_text: bool) -> None:
    """Freeze (or unfreeze) the vision backbone and the text encoder; everything else trains."""
    for param in model.parameters():
        param.requires_grad_(True)
    for module, frozen in ((model.model.backbone.conv_encoder.model, freeze_backbone),
                           (model.model.text_backbone, freeze_text)):
        for param in module.parameters():
            param.requires_grad_(not frozen)


def build_optimizer(model: Any, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters: the vision backbone's at ``lr * backbone_lr_scale``, the rest at
    ``lr`` (the schedule scales both groups alike)."""
    backbone = {id(p) for p in model.model.backbone.conv_encoder.model.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if id(p) not in backbone], "lr": cfg.lr},
              {"params": [p for p in trainable if id(p) in backbone], "lr": cfg.lr * cfg.backbone_lr_scale}]
    # foreach: one multi-tensor update (the CPU default loops over tensors: 15% slower steps, same numbers)
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=(0.9, cfg.adam_beta2),
                             weight_decay=cfg.weight_decay, foreach=True)


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def finished_run(out: Path, cfg: TrainConfig) -> TrainResult | None:
    """The result of a run already completed in ``out`` with config ``cfg`` (None: none there yet)."""
    marker = out / "training.json"
    if not marker.exists():
        return None
    info = json.loads(marker.read_text())
    if not info.get("complete"):
        return None
    if info["config"] != asdict(cfg):
        raise ValueError(f"{out} holds a finished run with a different config; use a new folder")
    history = json.loads((out / "history.json").read_text())
    return TrainResult(out, info["steps"], info["seconds"], history, info["peak_rss_mb"], info["steps"],
                       info.get("cpu_seconds", 0.0), info.get("validation", []), info.get("selected_epoch"))


def train_detector(model: Any, processor: Any, datasets: Sequence[DetectionDataset], out_dir: str | os.PathLike,
                   config: TrainConfig | None = None, parents: Mapping[str, str] | None = None,
                   progress: bool = True, validate: Callable[[Any], float] | None = None) -> TrainResult:
    """Train ``model`` on ``datasets`` (balanced over them) and save it to ``out_dir``; resumes if interrupted.

    Negative phrases are drawn from the union of the datasets' label maps (and ``parents``' coarse names).
    ``validate(model)``: a held-out score (higher is better), needed by ``config.select_every``."""
    cfg = config or TrainConfig()
    if cfg.select_every and validate is None:
        raise ValueError("select_every needs a validate function (a held-out score) to select with")
    out = Path(out_dir)
    if (done := finished_run(out, cfg)) is not None:
        return done
    with torch_threads(cfg.threads):
        return _train(model, processor, datasets, out, cfg, parents, progress, validate)


def _train(model: Any, processor: Any, datasets: Sequence[DetectionDataset], out: Path, cfg: TrainConfig,
           parents: Mapping[str, str] | None, progress: bool, validate: Callable[[Any], float] | None) -> TrainResult:
    """:func:`train_detector`'s training, from its checkpoint where one exists."""
    done_marker = out / "training.json"
    device = resolve_device(cfg.device)
    categories = list(dict.fromkeys(c for d in datasets for c in d.categories))
    collator = GroundingCollator(processor, categories, cfg.max_labels, parents, cfg.p_coarse, cfg.hflip)
    sampler = BalancedBatchSampler([len(d) for d in datasets], cfg.batch_size, cfg.batches_per_epoch, cfg.seed)
    model.to(device)
    criterion = install_grounding_loss(model)
    set_trainable(model, cfg.freeze_backbone, cfg.freeze_text)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(model, cfg)
    per_epoch = len(sampler)
    total = cfg.epochs * per_epoch
    scheduler = lr_schedule(optimizer, cfg, per_epoch, total)
    state_path = out / CHECKPOINT_DIR / STATE_FILE
    step, history, elapsed, cpu_before = 0, [], 0.0, 0.0
    selection = Selection()
    if state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        if state["config"] != asdict(cfg):
            raise ValueError(f"checkpoint {state_path} was written with a different config; remove it to restart")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, history, elapsed, cpu_before = state["step"], state["history"], state["seconds"], state["cpu_seconds"]
        selection = state["selection"]
    resumed_from = step

    def checkpoint() -> None:
        save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "step": step, "history": history,
                      "seconds": elapsed + time.perf_counter() - start,
                      "cpu_seconds": cpu_before + _cpu_seconds() - cpu_start, "config": asdict(cfg),
                      "selection": selection}, state_path)

    start, cpu_start = time.perf_counter(), _cpu_seconds()
    model.train()
    bar = tqdm(total=total, initial=step, desc="detector training", unit="step", disable=not progress)
    try:
        for epoch, index, batch_ids in batch_schedule(sampler, step, total):
            batch = collator([datasets[d][i] for d, i in batch_ids], np.random.default_rng([cfg.seed, epoch, index]))
            torch.manual_seed(cfg.seed * 1_000_003 + step)
            inputs = {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
            labels = [{k: v.to(device) for k, v in t.items()} for t in batch["labels"]]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16 and device.type == "cuda"):
                output = model(**inputs, labels=labels)
            optimizer.zero_grad(set_to_none=True)
            output.loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            step += 1
            record = {"step": step, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                      **{k: float(v) for k, v in step_losses(output).items()}}
            history.append(record)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.2f}", refresh=False)
            scheduler.step()
            epochs_done, at_epoch_end = divmod(step, per_epoch)
            if cfg.select_every and at_epoch_end == 0 and (epochs_done % cfg.select_every == 0 or step == total):
                model.eval()
                selection.record(epochs_done, step, float(validate(model)), model)  # validate: checked above
                model.train()
            if step % cfg.checkpoint_every == 0 or step % per_epoch == 0:
                checkpoint()
    finally:
        bar.close()
        criterion.remove()
    seconds = elapsed + time.perf_counter() - start
    cpu_seconds = round(cpu_before + _cpu_seconds() - cpu_start, 1)
    if selection.best_state is not None:
        model.load_state_dict(selection.best_state)
    model.eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / "history.json").write_text(json.dumps(history))
    result = TrainResult(out, step, round(seconds, 2), history, round(peak_rss_mb(), 1), resumed_from, cpu_seconds,
                         selection.scores, selection.best_epoch)
    done_marker.write_text(json.dumps({"complete": True, "steps": step, "seconds": result.seconds,
                                       "cpu_seconds": cpu_seconds, "validation": selection.scores,
                                       "selected_epoch": selection.best_epoch,
                                       "peak_rss_mb": result.peak_rss_mb, "config": asdict(cfg),
                                       "datasets": {d.name: len(d) for d in datasets}}, indent=1))
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    return result
