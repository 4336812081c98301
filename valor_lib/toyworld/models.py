"""The toy world's three learnt models, pretrained side by side where that pays.

The detector (a tiny GroundingDINO on the source split), the toy VLM verifier's crop classifier (on the
vlm-knowledge split) and the base policy (a tiny Qwen3 on template programs) do not depend on one another, and a
tiny model scales better over processes than over threads (``valor_lib.processes``). With ``pretrain_workers``
2 (the toy profile) on a CPU the single-threaded ones train at the same time, one process each; with 1, one after
the other. A model given several ``threads`` trains after them, alone: the toy policy (``threads: 2``; a step at
its batch of 4 is 1.55x faster on two threads than on one) follows the verifier's 40-second classifier, while the
detector comes from its committed asset (``valor_lib.toyworld.detector_asset``). No arrangement gives the same
numbers everywhere: a model's sums run in another order on another number of threads or another CPU. With AdamW's
β2 at 0.999 the from-scratch detector's pretraining was unstable enough that this alone moved its target mAP
(seed 0: 0.045 on one thread and 0.044 on two on one machine, 0.071 on two on another); β2 0.95 (the toy setting)
steadies it, and the seed still draws a different detector (target mAP 0.054 / 0.077 / 0.124 for seeds 0 / 1 / 2
after 14 epochs).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from valor_lib.processes import run_jobs
from valor_lib.toyworld.config import ToyWorldParams

# Folder names under <toy root>/models, and the section of ToyWorldParams that configures each.
TOY_MODEL_SECTIONS = {"detector-base": "detector", "policy-base": "policy", "vlm-verifier": "vlm_verifier"}
TOY_MODELS = tuple(TOY_MODEL_SECTIONS)


def model_params(params: ToyWorldParams, name: str) -> Any:
    """The settings of toy model ``name`` (one of :data:`TOY_MODELS`): its section of ``params``."""
    if name not in TOY_MODEL_SECTIONS:
        raise ValueError(f"unknown toy model {name!r}; expected one of {TOY_MODELS}")
    return getattr(params, TOY_MODEL_SECTIONS[name])


def pretraining_questions(root: str | os.PathLike) -> list[str]:
    """The text-only queries the base policy is pretrained on (``pretrain_queries.jsonl`` of the toy world)."""
    lines = (Path(root) / "pretrain_queries.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def detector_seed(params: ToyWorldParams, seed: int) -> int:
    """The toy detector's pretraining seed: ``params.detector.seed`` where set, else the world's ``seed``."""
    return seed if params.detector.seed is None else params.detector.seed


def pretrain_toy_model(name: str, params: ToyWorldParams, root: str | os.PathLike, seed: int,
                       progress: bool = True) -> Any:
    """Train one of :data:`TOY_MODELS` into ``<root>/models/<name>``; returns its training report. The detector
    (seed :func:`detector_seed`) comes from its committed asset where the recipe matches
    (``valor_lib.toyworld.detector_asset``), else it is pretrained here."""
    out_dir = Path(root) / "models" / name
    section = model_params(params, name)
    if name == "detector-base":
        from valor_lib.detection.toy import pretrain_toy_detector
        from valor_lib.toyworld.detector_asset import asset_status, install_asset

        drawn = detector_seed(params, seed)
        asset, _ = asset_status(params, seed, drawn)
        if asset is not None:  # the finished run is found in out_dir and returned without training
            install_asset(asset, out_dir)
        return pretrain_toy_detector(section, out_dir, seed=drawn, progress=progress)
    if name == "vlm-verifier":
        from valor_lib.grounding.toy_classifier import build_toy_verifier

        return build_toy_verifier(section, out_dir, seed=seed, progress=progress)
    if name == "policy-base":
        from valor_lib.policy.toy_model import ToyArchitecture, build_toy_policy

        pp = section
        return build_toy_policy(
            pretraining_questions(root), out_dir, examples=pp.examples, flaw_rate=pp.flaw_rate,
            flaw_weights=pp.flaw_weights, programs_per_query=pp.programs_per_query, vocab_size=pp.vocab_size,
            arch=ToyArchitecture(pp.hidden_size, pp.intermediate_size, pp.layers, pp.heads, pp.kv_heads,
                                 pp.head_dim),
            epochs=pp.epochs, batch_size=pp.batch_size, lr=pp.lr, weight_decay=pp.weight_decay,
            warmup_frac=pp.warmup_frac, copy_weight=pp.copy_weight, seed=seed, threads=pp.threads,
            progress=progress)
    raise ValueError(f"no pretraining for toy model {name!r}")  # a name added to TOY_MODEL_SECTIONS only


def pretrain_toy_models(params: ToyWorldParams, root: str | os.PathLike, seed: int,
                        progress: bool = True) -> dict[str, Any]:
    """Every one of :data:`TOY_MODELS`, the training reports by folder name. The single-threaded models go
    ``params.pretrain_workers`` at a time (side by side in spawned processes on a CPU, in turn on a GPU or with
    one worker); a model given several ``threads`` trains after them, alone, as a multi-threaded job next to
    another stalls at every parallel region (``valor_lib.processes``)."""
    jobs = {name: {"name": name, "params": params, "root": str(root), "seed": seed, "progress": progress}
            for name in TOY_MODELS}
    threads = {name: model_params(params, name).threads for name in TOY_MODELS}
    shared = run_jobs(pretrain_toy_model, {n: j for n, j in jobs.items() if threads[n] == 1}, params.pretrain_workers)
    alone = run_jobs(pretrain_toy_model, {n: j for n, j in jobs.items() if threads[n] > 1}, 1)
    return {name: (shared | alone)[name] for name in TOY_MODELS}
