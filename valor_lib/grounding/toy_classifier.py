"""The toy VLM verifier's eyes: a small CNN that looks at a padded box crop and says what fills it.

Three heads: the category of the object that fills the box (the toy categories, or ``none`` for posters, rugs,
shadows, background, groups of objects and boxes that miss their object), its colour, and how well the box
fits it (the IoU with the best-matching real object). It is trained in the toy-world stage on crops of the
``vlm-knowledge`` split, target-domain images reserved as the verifier's "pretraining" and disjoint from every
split it later verifies. Crops are cut exactly as the verifier's requests cut them (:func:`verification_crop`
window, ``padding`` of the box size) and shrunk to ``input_size``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from valor_lib.processes import torch_threads
from valor_lib.toyworld.config import ToyVlmVerifierParams
from valor_lib.toyworld.vocab import CATEGORIES, COLORS

NONE = "none"
LABELS = (*CATEGORIES, NONE)
COLOR_NAMES = tuple(COLORS)
MODEL_FILE, CONFIG_FILE = "model.pt", "config.json"
POSITIVE_IOU, NEGATIVE_IOU = 0.65, 0.45  # a box fits its object above the first, misses it below the second
MIN_VISIBLE = 0.5  # objects hidden more than this are left out of training (neither object nor background)


@dataclass(frozen=True)
class CropSample:
    """One training crop: pixels (input_size x input_size x 3, uint8), log aspect, and the targets."""

    pixels: np.ndarray
    aspect: float
    label: int  # index into LABELS, or -1 (ignored)
    color: int  # index into COLOR_NAMES, or -1 (not an object)
    fit: float


class CropNet(nn.Module):
    """A four-block CNN with category, colour and fit heads."""

    def __init__(self, width: int = 16):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        blocks: list[nn.Module] = []
        for i in range(4):
            blocks += [nn.Conv2d(chans[i], chans[i + 1], 3, padding=1), nn.BatchNorm2d(chans[i + 1]), nn.ReLU()]
            blocks.append(nn.MaxPool2d(2) if i < 3 else nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*blocks)
        self.body = nn.Sequential(nn.Linear(chans[-1] + 1, 128), nn.ReLU())
        self.label_head = nn.Linear(128, len(LABELS))
        self.color_head = nn.Linear(128, len(COLOR_NAMES))
        self.fit_head = nn.Linear(128, 1)

    def forward(self, pixels: torch.Tensor, aspect: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.features(pixels).flatten(1)
        h = self.body(torch.cat([x, aspect[:, None]], 1))
        return self.label_head(h), self.color_head(h), self.fit_head(h).squeeze(1)


def to_input(crop: Image.Image, size: int) -> np.ndarray:
    """A crop as the network's input pixels (area-averaged down, bicubic up)."""
    method = Image.Resampling.BOX if min(crop.size) >= size else Image.Resampling.BICUBIC
    return np.asarray(crop.convert("RGB").resize((size, size), method), dtype=np.uint8)


def _tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255.0)


# ---------------------------------------------------------------- training data


def _iou(a: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0)
    lt = np.maximum(a[:2], boxes[:, :2])
    rb = np.minimum(a[2:], boxes[:, 2:])
    inter = np.clip(rb - lt, 0, None).prod(1)
    area = (a[2] - a[0]) * (a[3] - a[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def _jitter(box: np.ndarray, scale: float, rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    bw, bh = box[2] - box[0], box[3] - box[1]
    noise = rng.normal(0, scale, 4) * np.array([bw, bh, bw, bh])
    out = box + noise
    out[[0, 2]] = np.clip(out[[0, 2]], 0, w)
    out[[1, 3]] = np.clip(out[[1, 3]], 0, h)
    return out


def _valid(box: np.ndarray) -> bool:
    return box[2] - box[0] >= 3 and box[3] - box[1] >= 3


def _sample(image: Image.Image, box: np.ndarray, objects: np.ndarray, visible: np.ndarray, categories: list[str],
            colors: list[str], p: ToyVlmVerifierParams) -> CropSample | None:
    from valor_lib.grounding.views import padded_window_crop

    if not _valid(box):
        return None
    ious = _iou(box, objects)
    best = int(ious.argmax()) if len(ious) else -1
    fit = float(ious[best]) if best >= 0 else 0.0
    if best >= 0 and fit >= POSITIVE_IOU:
        if visible[best] < MIN_VISIBLE:
            return None
        label, color = LABELS.index(categories[best]), COLOR_NAMES.index(colors[best])
    elif fit <= NEGATIVE_IOU:
        label, color = LABELS.index(NONE), -1
    else:
        label, color = -1, -1
    crop = padded_window_crop(image, box.tolist(), p.padding)
    aspect = float(np.log(max(crop.width, 1) / max(crop.height, 1)))
    return CropSample(to_input(crop, p.input_size), aspect, label, color, fit)


def scene_crops(image: Image.Image, scene: Any, rng: np.random.Generator, p: ToyVlmVerifierParams) -> list[CropSample]:
    """Training crops of one knowledge scene: well-fitting and badly fitting boxes on its objects, its
    distractors (posters, also just their pictures; rugs; shadows), unions of neighbouring objects, background."""
    w, h = image.size
    objects = np.array([o.bbox for o in scene.objects], dtype=float).reshape(-1, 4)
    visible = np.array([o.visible for o in scene.objects], dtype=float)
    cats, cols = [o.category for o in scene.objects], [o.color for o in scene.objects]
    boxes: list[np.ndarray] = []
    for box in objects:
        boxes += [_jitter(box, 0.05, rng, w, h) for _ in range(p.crops_per_object)]
        boxes.append(_jitter(box, 0.35, rng, w, h))  # usually a poor fit
    for dis in scene.distractors:
        frame = np.array(dis.bbox, dtype=float)
        boxes.append(_jitter(frame, 0.05, rng, w, h))
        if dis.kind == "poster":
            fw, fh = frame[2] - frame[0], frame[3] - frame[1]
            inner = frame + np.array([0.12 * fw, 0.1 * fh, -0.12 * fw, -0.1 * fh])
            boxes.append(_jitter(inner, 0.08, rng, w, h))
    for i in range(len(objects)):
        for j in range(i + 1, len(objects)):
            union = np.concatenate([np.minimum(objects[i][:2], objects[j][:2]), np.maximum(objects[i][2:], objects[j][2:])])
            if _iou(union, objects[[i, j]]).max() < 0.6 and rng.random() < 0.5:
                boxes.append(union)
    for _ in range(p.background_crops):
        bw, bh = rng.uniform(8, w / 3), rng.uniform(8, h / 2)
        x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        boxes.append(np.array([x, y, x + bw, y + bh]))
    samples = (_sample(image, b, objects, visible, cats, cols, p) for b in boxes)
    return [s for s in samples if s is not None]


def knowledge_crops(split: str, p: ToyVlmVerifierParams, seed: int) -> tuple[list[CropSample], list[CropSample]]:
    """(training, held-out) crops of a toy split; the last ``holdout_fraction`` of its images are held out."""
    from valor_lib.toyworld import store

    scenes = list(store.load_scenes(split).values())
    n_hold = round(len(scenes) * p.holdout_fraction)
    train, held = [], []
    for index, scene in enumerate(tqdm(scenes, desc="knowledge crops", unit="img", leave=False)):
        rng = np.random.default_rng([seed, index])
        crops = scene_crops(store.load_image(split, scene.id), scene, rng, p)
        (held if index >= len(scenes) - n_hold else train).extend(crops)
    return train, held


# ---------------------------------------------------------------- training and use


def _stack(samples: Sequence[CropSample]) -> dict[str, torch.Tensor]:
    return {"pixels": _tensor(np.stack([s.pixels for s in samples])),
            "aspect": torch.tensor([s.aspect for s in samples], dtype=torch.float32),
            "label": torch.tensor([s.label for s in samples], dtype=torch.long),
            "color": torch.tensor([s.color for s in samples], dtype=torch.long),
            "fit": torch.tensor([s.fit for s in samples], dtype=torch.float32)}


def _augment(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and lighting changes (brightness and per-channel tint, as scenes vary)."""
    n = len(pixels)
    flip = torch.rand(n, generator=generator) < 0.5
    pixels = torch.where(flip[:, None, None, None], pixels.flip(3), pixels)
    gain = 1.0 + 0.2 * (torch.rand(n, 1, 1, 1, generator=generator) - 0.5)
    tint = 1.0 + 0.1 * (torch.rand(n, 3, 1, 1, generator=generator) - 0.5)
    return (pixels * gain * tint).clamp(0, 1)


def _losses(model: CropNet, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    label_logits, color_logits, fit_logits = model(batch["pixels"], batch["aspect"])
    loss = nn.functional.cross_entropy(label_logits, batch["label"], ignore_index=-1)
    if (batch["color"] >= 0).any():
        loss = loss + nn.functional.cross_entropy(color_logits, batch["color"], ignore_index=-1)
    return loss + 4.0 * nn.functional.binary_cross_entropy_with_logits(fit_logits, batch["fit"])


@torch.no_grad()
def accuracy(model: CropNet, samples: Sequence[CropSample]) -> dict[str, float]:
    """Category accuracy (all and on real objects only), colour accuracy, fit mean absolute error."""
    model.eval()
    batch = _stack(samples)
    label_logits, color_logits, fit_logits = model(batch["pixels"], batch["aspect"])
    labelled = batch["label"] >= 0
    objects = labelled & (batch["label"] != LABELS.index(NONE))
    hits = label_logits.argmax(1) == batch["label"]
    colored = batch["color"] >= 0
    return {"crops": len(samples), "category_accuracy": round(float(hits[labelled].float().mean()), 4),
            "object_accuracy": round(float(hits[objects].float().mean()), 4),
            "background_accuracy": round(float(hits[labelled & ~objects].float().mean()), 4),
            "color_accuracy": round(float((color_logits.argmax(1) == batch["color"])[colored].float().mean()), 4),
            "fit_mae": round(float((fit_logits.sigmoid() - batch["fit"]).abs().mean()), 4)}


def train_classifier(train: Sequence[CropSample], p: ToyVlmVerifierParams, seed: int = 0,
                     progress: bool = True) -> tuple[CropNet, list[float]]:
    """Train a :class:`CropNet` with AdamW and a cosine schedule; returns it and the loss per epoch."""
    torch.manual_seed(seed)
    model = CropNet()
    data = _stack(train)
    steps = p.epochs * -(-len(train) // p.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=1e-4, foreach=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=p.lr, total_steps=steps, pct_start=0.15)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for _ in tqdm(range(p.epochs), desc="toy VLM verifier", unit="epoch", disable=not progress):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        total = 0.0
        for start in range(0, len(train), p.batch_size):
            idx = order[start: start + p.batch_size]
            batch = {k: v[idx] for k, v in data.items()}
            batch["pixels"] = _augment(batch["pixels"], generator)
            loss = _losses(model, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
        history.append(round(total / len(train), 4))
    model.eval()
    return model, history


@dataclass(frozen=True)
class ClassifierConfig:
    """What a saved classifier needs to be used again."""

    input_size: int
    padding: float
    labels: list[str]
    colors: list[str]


def save_classifier(model: CropNet, p: ToyVlmVerifierParams, out_dir: str | os.PathLike,
                    report: dict[str, Any]) -> Path:
    """Write ``model.pt`` and ``config.json`` (config plus training report) atomically into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (MODEL_FILE + ".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, out / MODEL_FILE)
    config = ClassifierConfig(p.input_size, p.padding, list(LABELS), list(COLOR_NAMES))
    (out / CONFIG_FILE).write_text(json.dumps({**asdict(config), "report": report}, indent=1))
    return out


def build_toy_verifier(p: ToyVlmVerifierParams, out_dir: str | os.PathLike, seed: int = 0,
                       split: str = "vlm-knowledge", progress: bool = True) -> dict[str, Any]:
    """Crops of the knowledge split -> trained classifier in ``out_dir``; returns the training report."""
    started = time.perf_counter()
    train, held = knowledge_crops(split, p, seed)
    with torch_threads(p.threads):
        model, history = train_classifier(train, p, seed, progress)
    report = {"split": split, "train_crops": len(train), "loss": history,
              "heldout": accuracy(model, held) if held else None,
              "train": accuracy(model, train[: len(held) or 512]),
              "seconds": round(time.perf_counter() - started, 1)}
    save_classifier(model, p, out_dir, report)
    return report


class CropClassifier:
    """A saved :class:`CropNet` ready to score crops."""

    def __init__(self, model: CropNet, config: ClassifierConfig, fingerprint: str):
        self.model, self.config, self.fingerprint = model.eval(), config, fingerprint

    @classmethod
    def load(cls, folder: str | os.PathLike) -> CropClassifier:
        from valor_lib.paths import require

        path = require(Path(folder) / MODEL_FILE, "train the toy VLM verifier first (notebooks/00_toy_world.ipynb)")
        raw = json.loads((Path(folder) / CONFIG_FILE).read_text())
        config = ClassifierConfig(raw["input_size"], raw["padding"], raw["labels"], raw["colors"])
        if tuple(config.labels) != LABELS or tuple(config.colors) != COLOR_NAMES:
            raise ValueError(f"{folder}: classifier was trained for other categories or colours")
        model = CropNet()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        import hashlib

        return cls(model, config, hashlib.sha256(path.read_bytes()).hexdigest()[:12])

    @torch.no_grad()
    def predict(self, crops: Sequence[Image.Image]) -> dict[str, np.ndarray]:
        """Per crop: ``label`` probabilities (LABELS order), ``color`` probabilities, ``fit`` in [0, 1]."""
        if not crops:
            return {"label": np.zeros((0, len(LABELS))), "color": np.zeros((0, len(COLOR_NAMES))), "fit": np.zeros(0)}
        pixels = _tensor(np.stack([to_input(c, self.config.input_size) for c in crops]))
        aspect = torch.tensor([float(np.log(c.width / c.height)) for c in crops], dtype=torch.float32)
        label_logits, color_logits, fit_logits = self.model(pixels, aspect)
        return {"label": label_logits.softmax(1).numpy(), "color": color_logits.softmax(1).numpy(),
                "fit": fit_logits.sigmoid().numpy()}
