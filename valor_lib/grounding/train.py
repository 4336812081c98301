"""Fine-tune a GroundingDINO on pseudo-labels (paper A.6.4, Table 11), in one process or data parallel.

    config = finetune_config(params.training, preset="paper", seed=0)   # Table 11 values
    result = train_on_pseudo_labels("groundingdino-hf:data/toy/models/detector-base",
                                    "results/pseudo_labelling/verified", "results/pseudo_labelling/images",
                                    "out/detector", config)

Command line, with the ``detector_finetuning`` params (one process; ``accelerate launch`` for several GPUs)::

    python -m valor_lib.grounding.train --out results/detector_finetuning/manual
    accelerate launch --num_processes 8 -m valor_lib.grounding.train --out results/detector_finetuning/manual

Built on :mod:`valor_lib.detection` (its collator, balanced sampler, per-image loss and freezing) and run through
``accelerate``: a plain run uses one device (CPU or one GPU); under ``accelerate launch`` every process takes its
share of each balanced batch and gradients are averaged. What this loop adds to
:func:`valor_lib.detection.train.train_detector` (whose schedules it shares): data parallelism, dvclive curves,
and negatives restricted to what was asked for on each image
(``negatives="queried"``): a pseudo-labelled image only tells us about the labels its programs searched for, so
only those labels that were searched for and not found may serve as negative phrases. Any other label may
well be present but unlabelled. Likewise ``uncertain="ignore"`` turns the boxes the verifier left unsettled
into ignore regions of the loss (:mod:`valor_lib.detection.loss`) instead of background.

The output folder gets the model and processor (loadable as ``groundingdino-hf:<folder>``), ``history.json``
and ``training.json``; ``checkpoint/state.pt`` (rewritten atomically) lets an interrupted run resume exactly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from valor_lib.detection.collate import CaptionSampler, GroundingCollator
from valor_lib.detection.data import DetectionDataset, DetectionSample, Instance
from valor_lib.detection.loss import install_grounding_loss
from valor_lib.detection.sampler import BalancedBatchSampler
from valor_lib.detection.train import (
    CHECKPOINT_DIR,
    LOSS_KEYS,
    STATE_FILE,
    TrainConfig,
    TrainResult,
    batch_schedule,
    build_optimizer,
    finished_run,
    lr_schedule,
    peak_rss_mb,
    save_atomic,
    set_trainable,
    step_losses,
)
from valor_lib.processes import run_jobs, torch_threads

CHECKPOINT = Path(CHECKPOINT_DIR) / STATE_FILE

# Named hyper-parameters: the paper's Table 11 and the authors' released training config (facts.md).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"epochs": 4, "batch_size": 16, "lr": 1.0e-6, "weight_decay": 1.0e-4, "scheduler": "step",
              "lr_step_epochs": 4, "lr_gamma": 0.1, "grad_clip": 0.1, "freeze_backbone": True, "freeze_text": True,
              "max_labels": 50},
    "authors-code": {"epochs": 10, "batch_size": 16, "lr": 1.0e-5, "weight_decay": 1.0e-4, "scheduler": "cosine",
                     "grad_clip": 0.1, "freeze_backbone": True, "freeze_text": True, "max_labels": 50},
}
NEGATIVES = ("queried", "all", "none")
UNCERTAIN = ("background", "ignore")


@dataclass(frozen=True)
class FinetuneConfig(TrainConfig):
    """:class:`TrainConfig` plus the negative-phrase policy (``queried``, ``all`` or ``none``, module docstring)
    and what the boxes the verifier left unsettled teach (``background``: like any unlabelled region; ``ignore``:
    nothing, no loss there)."""

    negatives: str = "queried"
    uncertain: str = "background"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}, got {self.negatives!r}")
        if self.uncertain not in UNCERTAIN:
            raise ValueError(f"uncertain must be one of {UNCERTAIN}, got {self.uncertain!r}")


def finetune_config(training: Mapping[str, Any] | Any, preset: str | None = None, **overrides: Any) -> FinetuneConfig:
    """A :class:`FinetuneConfig` from training params (a mapping or params model), a named preset's values on
    top (``paper`` or ``authors-code``), then explicit ``overrides`` (e.g. ``seed``, ``device``)."""
    values = dict(training.model_dump() if hasattr(training, "model_dump") else training)
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
        values.update(PRESETS[preset])
    values.update(overrides)
    fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    unknown = set(values) - fields
    if unknown:
        raise ValueError(f"not fine-tuning settings: {sorted(unknown)}")
    return FinetuneConfig(**values)


@dataclass(frozen=True)
class PseudoSample(DetectionSample):
    """A detection sample that also knows which labels may serve as its negative phrases (None: any)."""

    negatives: tuple[str, ...] | None = None


class PseudoLabelCollator(GroundingCollator):
    """The detection collator, drawing each image's negative phrases from its own ``negatives`` when set."""

    def _sampler_for(self, sample: DetectionSample) -> CaptionSampler:
        allowed = getattr(sample, "negatives", None)
        if allowed is None:
            return self.sampler
        present = {inst.category for inst in sample.instances}
        parents = {k: v for k, v in self.sampler.parents.items() if k in present}
        names = [n for n in self.sampler.names if n in present or n in allowed]
        return CaptionSampler(names, self.sampler.max_labels, parents, self.sampler.p_coarse,
                              self.sampler.token_counts, self.sampler.max_tokens)


def finetune_detector(model: Any, processor: Any, datasets: Sequence[DetectionDataset], out_dir: str | os.PathLike,
                      config: FinetuneConfig | None = None, parents: Mapping[str, str] | None = None,
                      progress: bool = True, live_dir: str | os.PathLike | None = None) -> TrainResult:
    """Fine-tune ``model`` on ``datasets`` (balanced over them), save to ``out_dir``; resumes if interrupted.

    ``parents`` maps fine labels to coarse ones (``{"red chair": "chair"}``); ``live_dir``, when given, gets
    dvclive curves (loss and learning rate per step)."""
    cfg = config or FinetuneConfig()
    if cfg.select_every:
        raise ValueError("fine-tuning keeps the last weights: select_every would choose them on the evaluation set")
    out = Path(out_dir)
    if (done := finished_run(out, cfg)) is not None:
        return done
    with torch_threads(cfg.threads):
        return _finetune(model, processor, datasets, out, cfg, parents, progress, live_dir)


def _finetune(model: Any, processor: Any, datasets: Sequence[DetectionDataset], out: Path, cfg: FinetuneConfig,
              parents: Mapping[str, str] | None, progress: bool, live_dir: str | os.PathLike | None) -> TrainResult:
    """:func:`finetune_detector`'s training, from its checkpoint where one exists."""
    from accelerate import Accelerator, DistributedDataParallelKwargs

    use_cpu = cfg.device == "cpu" or not torch.cuda.is_available()
    if cfg.device == "cuda" and use_cpu:
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    # some heads may get no gradient in a step (e.g. no box matched): DDP must not wait for them
    accelerator = Accelerator(cpu=use_cpu, mixed_precision="bf16" if cfg.bf16 and not use_cpu else "no",
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    rank, world = accelerator.process_index, accelerator.num_processes
    categories = list(dict.fromkeys(c for d in datasets for c in d.categories))
    collator = PseudoLabelCollator(processor, categories, cfg.max_labels, parents, cfg.p_coarse, cfg.hflip)
    sampler = BalancedBatchSampler([len(d) for d in datasets], cfg.batch_size, cfg.batches_per_epoch, cfg.seed)
    if cfg.batch_size < world:
        raise ValueError(f"batch_size {cfg.batch_size} is smaller than the {world} processes")
    criterion = install_grounding_loss(model)
    set_trainable(model, cfg.freeze_backbone, cfg.freeze_text)
    optimizer = build_optimizer(model, cfg)
    per_epoch = len(sampler)
    total = cfg.epochs * per_epoch
    scheduler = lr_schedule(optimizer, cfg, per_epoch, total)
    step, history, elapsed = 0, [], 0.0
    state_path = out / CHECKPOINT
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state["config"] != asdict(cfg):
            raise ValueError(f"checkpoint {state_path} was written with a different config; remove it to restart")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, history, elapsed = state["step"], state["history"], state["seconds"]
    resumed_from = step
    model, optimizer = accelerator.prepare(model, optimizer)
    params = [p for p in model.parameters() if p.requires_grad]
    live = _live(live_dir, accelerator.is_main_process, resumed_from > 0)
    start = time.perf_counter()

    def checkpoint() -> None:
        if accelerator.is_main_process:
            save_atomic({"model": accelerator.unwrap_model(model).state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "step": step, "history": history,
                          "seconds": elapsed + time.perf_counter() - start, "config": asdict(cfg)}, state_path)
        accelerator.wait_for_everyone()

    model.train()
    bar = tqdm(total=total, initial=step, desc="fine-tuning", unit="step",
               disable=not progress or not accelerator.is_main_process)
    try:
        for epoch, index, batch_ids in batch_schedule(sampler, step, total):
            mine = batch_ids[rank::world]
            batch = collator([datasets[d][i] for d, i in mine], np.random.default_rng([cfg.seed, epoch, index, rank]))
            torch.manual_seed(cfg.seed * 1_000_003 + step * world + rank)
            inputs = {k: v.to(accelerator.device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
            labels = [{k: v.to(accelerator.device) for k, v in t.items()} for t in batch["labels"]]
            with accelerator.autocast():
                output = model(**inputs, labels=labels)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(output.loss)
            if cfg.grad_clip > 0:
                accelerator.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            step += 1
            record = {"step": step, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                      **{k: float(accelerator.reduce(v, "mean")) for k, v in step_losses(output).items()}}
            history.append(record)
            if live is not None:
                for key in (*LOSS_KEYS, "lr"):
                    live.log_metric(f"train/{key}", record[key])
                live.next_step()
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.2f}", refresh=False)
            scheduler.step()
            if step % cfg.checkpoint_every == 0 or step % per_epoch == 0:
                checkpoint()
    finally:
        bar.close()
        criterion.remove()
    seconds = elapsed + time.perf_counter() - start
    result = TrainResult(out, step, round(seconds, 2), history, round(peak_rss_mb(), 1), resumed_from)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.eval()
        unwrapped.save_pretrained(out)
        processor.save_pretrained(out)
        (out / "history.json").write_text(json.dumps(history))
        (out / "training.json").write_text(json.dumps(
            {"complete": True, "steps": step, "seconds": result.seconds, "peak_rss_mb": result.peak_rss_mb,
             "config": asdict(cfg), "processes": world, "datasets": {d.name: len(d) for d in datasets}}, indent=1))
        shutil.rmtree(out / CHECKPOINT.parent, ignore_errors=True)
    if live is not None:
        live.end()
    accelerator.wait_for_everyone()
    model.eval()
    return result


def _live(live_dir: str | os.PathLike | None, main: bool, resume: bool) -> Any:
    if live_dir is None or not main:
        return None
    from dvclive import Live

    return Live(str(live_dir), resume=resume, save_dvc_exp=False, dvcyaml=None, report=None)


# ---------------------------------------------------------------- pseudo-labels -> training run


def _negative_phrases(image: Any, negatives: str, known: set[str]) -> tuple[str, ...] | None:
    """The phrases an image's captions may add as negatives: any label (None), none, or the labels asked for
    on it whose head noun no kept box shares."""
    if negatives == "all":
        return None
    if negatives == "none":
        return ()
    heads = {b["label"].split()[-1] for b in image.boxes}
    return tuple(q for q in image.queried if q in known and q.split()[-1] not in heads)


def training_datasets(images: Sequence[Any], image_root: str | os.PathLike, negatives: str = "queried",
                      uncertain: str = "background") -> tuple[list[DetectionDataset], dict[str, str]]:
    """One dataset per source (the balanced sampler's units) from :class:`~.export.PseudoImage` records, and
    the label parents (``"red chair"`` -> ``"chair"``). With ``negatives="queried"`` each sample may only use
    labels that were asked for on its image and whose head noun no kept box shares as negative phrases; with
    ``uncertain="ignore"`` an image's unsettled boxes become ignore regions of the loss."""
    from valor_lib.grounding.export import label_parents

    root = Path(image_root)
    names = sorted({b["label"] for im in images for b in im.boxes})
    known = set(names)
    datasets = []
    for source in sorted({im.source for im in images}):
        samples = []
        for im in images:
            if im.source != source or not im.boxes:
                continue
            samples.append(PseudoSample(root / im.file, im.width, im.height,
                                        tuple(Instance(tuple(b["bbox"]), b["label"]) for b in im.boxes),
                                        ignore_regions=tuple(im.uncertain) if uncertain == "ignore" else (),
                                        negatives=_negative_phrases(im, negatives, known)))
        if samples:
            datasets.append(DetectionDataset(source, samples, names, {"pseudo_labels": source}))
    return datasets, label_parents(names)


def load_trainable(spec: str) -> tuple[Any, Any]:
    """Model and processor of a ``groundingdino-hf:`` spec (relative paths: repository root) for training."""
    from transformers import GroundingDinoForObjectDetection, GroundingDinoProcessor

    from valor_lib.specs import parse_spec
    from valor_lib.tools.backends import resolve_model_path

    parsed = parse_spec(spec, role="detector")
    if parsed.kind != "groundingdino-hf":
        raise ValueError(f"fine-tuning starts from a groundingdino-hf checkpoint, got {spec!r}")
    path = resolve_model_path(parsed.arg)
    return GroundingDinoForObjectDetection.from_pretrained(path), GroundingDinoProcessor.from_pretrained(path,
                                                                                                          backend="pil")


def train_on_pseudo_labels(detector: str, labels_dir: str | os.PathLike, image_root: str | os.PathLike,
                           out_dir: str | os.PathLike, config: FinetuneConfig, max_boxes: int | None = None,
                           progress: bool = True, live_dir: str | os.PathLike | None = None) -> TrainResult:
    """Fine-tune the detector of spec ``detector`` on an exported pseudo-label set (all of it, or images drawn
    with ``config.seed`` until ``max_boxes`` boxes) and save it to ``out_dir``."""
    from valor_lib.grounding.export import read_pseudo_images, select_images

    images = select_images(read_pseudo_images(labels_dir), max_boxes, config.seed)
    if not images:
        raise ValueError(f"{labels_dir} holds no pseudo-labelled image to train on")
    datasets, parents = training_datasets(images, image_root, config.negatives, config.uncertain)
    torch.manual_seed(config.seed)
    model, processor = load_trainable(detector)
    return finetune_detector(model, processor, datasets, out_dir, config, parents, progress, live_dir)


def train_runs(jobs: Mapping[Hashable, Mapping[str, Any]], workers: int = 1) -> dict[Hashable, TrainResult]:
    """:func:`train_on_pseudo_labels` for each job (its keyword arguments), results by job key. On CPU,
    ``workers`` runs go side by side in spawned processes (a tiny detector scales better over processes than
    over threads); on GPU, or with one worker, one after the other. Interrupted runs resume when called again."""
    return run_jobs(train_on_pseudo_labels, jobs, workers)


def main(argv: Sequence[str] | None = None) -> TrainResult:
    """Command line (also under ``accelerate launch``): fine-tune with the ``detector_finetuning`` params."""
    import argparse

    from valor_lib.params import resolve

    parser = argparse.ArgumentParser(prog="python -m valor_lib.grounding.train", description=(
        "Fine-tune GroundingDINO on pseudo-labels with the detector_finetuning params of params.yaml. "
        "Multi-GPU: accelerate launch --num_processes N -m valor_lib.grounding.train ..."))
    parser.add_argument("--variant", default="verified", help="pseudo-label set under --labels-root")
    parser.add_argument("--labels-root", default="results/pseudo_labelling", help="pseudo_labelling stage output")
    parser.add_argument("--detector", default=None, help="base detector spec (default: common.backends.detector)")
    parser.add_argument("--out", required=True, help="output folder of the tuned detector")
    parser.add_argument("--seed", type=int, default=None, help="default: common.seed")
    parser.add_argument("--profile", default=None, help="params profile (default: common.profile)")
    args = parser.parse_args(argv)
    params = resolve("detector_finetuning", profile=args.profile)
    from valor_lib.paths import repo_root

    root = repo_root() / args.labels_root
    config = finetune_config(params["training"], params["preset"],
                             seed=params["seed"] if args.seed is None else args.seed, device=params["device"])
    return train_on_pseudo_labels(args.detector or params["backends"]["detector"], root / args.variant,
                                  root / "images", args.out, config, params["max_pseudo_labels"],
                                  live_dir=Path(args.out) / "dvclive")


if __name__ == "__main__":
    main()
