"""A tiny GroundingDINO of the real transformers class, built from configs offline.

Same model class, processor and loss as GroundingDINO-T, shrunk to well under a million parameters so it trains
on two CPU cores in minutes: a small ResNet backbone (random init, nothing downloaded), a one-layer BERT text
encoder with a locally built WordPiece vocabulary, d_model 64 and a few dozen queries.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from transformers import (
    BertConfig,
    BertTokenizer,
    GroundingDinoConfig,
    GroundingDinoForObjectDetection,
    GroundingDinoProcessor,
    ResNetConfig,
)
from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
    GroundingDinoImageProcessorPil,
)

# GroundingDINO hard-codes these BERT ids: phrases are split at [CLS], [SEP], "." and "?" (and [PAD] is 0).
RESERVED_IDS: dict[str, int] = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, ".": 1012,
                                "?": 1029}
MIN_VOCAB = 1030
# Always in the vocabulary, so that any lower-case word tokenizes into pieces rather than [UNK].
_BASE_PIECES = [*"abcdefghijklmnopqrstuvwxyz0123456789", *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"),
                ",", "-", "'", "!", ":", ";", "(", ")", "/", "&"]


def build_vocab(words: Iterable[str]) -> dict[str, int]:
    """A BERT WordPiece vocabulary with GroundingDINO's reserved ids, ``words`` as whole tokens, plus
    single-character pieces so unknown words still tokenize."""
    vocab = dict(RESERVED_IDS)
    taken = set(vocab.values())
    wanted = list(dict.fromkeys([*_BASE_PIECES, *(w.strip().lower() for w in words)]))
    next_id = 1
    for token in wanted:
        if not token or token in vocab:
            continue
        if " " in token:
            raise ValueError(f"vocabulary entries must be single words, got {token!r}")
        while next_id in taken:
            next_id += 1
        vocab[token] = next_id
        taken.add(next_id)
    size = max(MIN_VOCAB, max(taken) + 1)
    for i in range(size):
        if i not in taken:
            vocab[f"[unused{i}]"] = i
    return dict(sorted(vocab.items(), key=lambda kv: kv[1]))


@dataclass(frozen=True)
class TinyDetectorConfig:
    """Sizes of the tiny GroundingDINO (defaults: about 0.7M parameters)."""

    d_model: int = 64
    encoder_layers: int = 1
    decoder_layers: int = 2
    ffn_dim: int = 128
    heads: int = 4
    num_queries: int = 30
    max_text_len: int = 64
    text_hidden: int = 32
    text_layers: int = 1
    backbone_channels: list[int] = field(default_factory=lambda: [16, 32, 64, 96])
    image_size: tuple[int, int] = (192, 256)  # (shortest, longest) edge the processor resizes to
    auxiliary_loss: bool = True


def tiny_config(vocab_size: int, cfg: TinyDetectorConfig) -> GroundingDinoConfig:
    """The GroundingDinoConfig of a tiny model (ResNet basic blocks, small BERT)."""
    if cfg.decoder_layers < 2:
        raise ValueError("GroundingDINO needs decoder_layers >= 2")
    backbone = ResNetConfig(
        num_channels=3, embedding_size=cfg.backbone_channels[0], hidden_sizes=list(cfg.backbone_channels),
        depths=[1] * len(cfg.backbone_channels), layer_type="basic",
        out_features=[f"stage{i}" for i in range(2, len(cfg.backbone_channels) + 1)],
    )
    text = BertConfig(
        vocab_size=vocab_size, hidden_size=cfg.text_hidden, num_hidden_layers=cfg.text_layers,
        num_attention_heads=2, intermediate_size=cfg.text_hidden * 2, max_position_embeddings=cfg.max_text_len,
    )
    return GroundingDinoConfig(
        backbone_config=backbone, text_config=text, d_model=cfg.d_model, num_queries=cfg.num_queries,
        encoder_layers=cfg.encoder_layers, decoder_layers=cfg.decoder_layers, encoder_ffn_dim=cfg.ffn_dim,
        decoder_ffn_dim=cfg.ffn_dim, encoder_attention_heads=cfg.heads, decoder_attention_heads=cfg.heads,
        num_feature_levels=len(cfg.backbone_channels), max_text_len=cfg.max_text_len,
        auxiliary_loss=cfg.auxiliary_loss, fusion_droppath=0.0, dropout=0.0,
    )


def tiny_processor(vocab: dict[str, int], cfg: TinyDetectorConfig) -> GroundingDinoProcessor:
    """A GroundingDinoProcessor with the PIL image processor and a local-vocabulary BERT tokenizer."""
    shortest, longest = cfg.image_size
    images = GroundingDinoImageProcessorPil(size={"shortest_edge": shortest, "longest_edge": longest})
    tokenizer = BertTokenizer(vocab=vocab, model_max_length=cfg.max_text_len)
    return GroundingDinoProcessor(image_processor=images, tokenizer=tokenizer)


def init_detection_prior(model: GroundingDinoForObjectDetection, prior: float = 0.01, scale: float = 0.1) -> None:
    """Start every query-token logit near ``log(prior / (1 - prior))`` (the usual focal-loss prior init).

    GroundingDINO's logits are plain dot products of vision and text features, with no bias to initialise, so
    a fresh model starts with saturated random logits, a classification loss in the thousands and gradients
    that drown the box losses. Here the final layer norms on both sides get a constant along one feature
    axis whose product is the prior logit, and the vision norms a small gain so the rest starts near zero.
    Only layer-norm parameters change; they train as usual afterwards.
    """
    bias = math.sqrt(-math.log(prior / (1 - prior)))
    text_norm = model.model.encoder.layers[-1].text_enhancer_layer.layer_norm_after
    with torch.no_grad():
        text_norm.weight[0] = 0.0
        text_norm.bias[0] = bias
        for norm in (model.model.decoder.layer_norm, model.model.enc_output_norm):
            norm.weight.fill_(scale)
            norm.bias.zero_()
            norm.bias[0] = -bias


def build_tiny_detector(words: Iterable[str], cfg: TinyDetectorConfig | None = None,
                        ) -> tuple[GroundingDinoForObjectDetection, GroundingDinoProcessor]:
    """A randomly initialised tiny GroundingDINO whose vocabulary holds ``words``, with its processor.

    The whole backbone is trainable (the class freezes the ResNet stem, which only makes sense for a
    pretrained backbone), and the logits start at a low prior (:func:`init_detection_prior`)."""
    cfg = cfg or TinyDetectorConfig()
    vocab = build_vocab(words)
    model = GroundingDinoForObjectDetection(tiny_config(len(vocab), cfg))
    model.model.unfreeze_backbone()
    init_detection_prior(model)
    return model, tiny_processor(vocab, cfg)
