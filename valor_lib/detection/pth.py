"""Load Open-GroundingDino / GroundingDINO ``.pth`` checkpoints (the authors release theirs in this format)
into transformers' ``GroundingDinoForObjectDetection``.

:func:`convert_state_dict` renames the original parameters to the transformers layout of the installed
version: ``module.`` (DDP) prefixes dropped, ``bert.*`` -> text backbone, Swin ``backbone.0.*`` -> the Swin
backbone (its fused ``qkv`` split into q/k/v), ``transformer.encoder.{layers,text_layers,fusion_layers}.i``
-> the deformable, text-enhancer and fusion parts of encoder layer i, decoder layers renamed part by part, fused
``in_proj`` attention weights split into query/key/value, and buffers the model recomputes dropped.
:func:`load_groundingdino_pth` builds the model from a base config and refuses checkpoints that leave
parameters missing or unused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch

BACKBONE = "model.backbone.conv_encoder.model"
# Buffers and heads without weights in transformers: dropped on conversion.
_DROP = (re.compile(r"\.relative_position_index$"), re.compile(r"^bert\.pooler\."),
         re.compile(r"^bert\.embeddings\.position_ids$"), re.compile(r"\.attn_mask$"))

_DEFORMABLE = {"norm1": "self_attn_layer_norm", "linear1": "fc1", "linear2": "fc2", "norm2": "final_layer_norm"}
_TEXT_ENHANCER = {"linear1": "fc1", "linear2": "fc2", "norm1": "layer_norm_before", "norm2": "layer_norm_after"}
_FUSION = {"gamma_v": "vision_param", "gamma_l": "text_param", "layer_norm_v": "layer_norm_vision",
           "layer_norm_l": "layer_norm_text", "attn.v_proj": "attn.vision_proj", "attn.l_proj": "attn.text_proj",
           "attn.values_v_proj": "attn.values_vision_proj", "attn.values_l_proj": "attn.values_text_proj",
           "attn.out_v_proj": "attn.out_vision_proj", "attn.out_l_proj": "attn.out_text_proj"}
_DECODER = {"cross_attn": "encoder_attn", "norm1": "encoder_attn_layer_norm", "ca_text": "encoder_attn_text",
            "catext_norm": "encoder_attn_text_layer_norm", "norm2": "self_attn_layer_norm", "linear1": "fc1",
            "linear2": "fc2", "norm3": "final_layer_norm"}
_SWIN_BLOCK = {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.o_proj",
               "attn.relative_position_bias_table": "attention.relative_position_bias.relative_position_bias_table"}
_PREFIXES = (("bert.", "model.text_backbone."), ("feat_map.", "model.text_projection."),
             ("input_proj.", "model.input_proj_vision."), ("transformer.level_embed", "model.level_embed"),
             ("transformer.tgt_embed.", "model.query_position_embeddings."),
             ("transformer.enc_output_norm.", "model.enc_output_norm."),
             ("transformer.enc_output.", "model.enc_output."),
             ("transformer.enc_out_bbox_embed.", "model.encoder_output_bbox_embed."),
             ("transformer.decoder.ref_point_head.", "model.decoder.reference_points_head."),
             ("transformer.decoder.bbox_embed.", "model.decoder.bbox_embed."),
             ("transformer.decoder.norm.", "model.decoder.layer_norm."),
             ("backbone.0.patch_embed.proj.", f"{BACKBONE}.swin.embeddings.patch_embeddings.projection."),
             ("backbone.0.patch_embed.norm.", f"{BACKBONE}.swin.embeddings.norm."),
             ("bbox_embed.", "bbox_embed."))


class CheckpointConversionError(ValueError):
    """A checkpoint whose parameters do not map onto the target model."""


def _rename_part(rest: str, table: Mapping[str, str]) -> str:
    """Replace the longest leading dotted component of ``rest`` found in ``table``."""
    for old in sorted(table, key=len, reverse=True):
        if rest == old or rest.startswith(old + "."):
            return table[old] + rest[len(old):]
    return rest


def _split_fused(out: dict[str, torch.Tensor], base: str, suffix: str, value: torch.Tensor,
                 names: tuple[str, str, str]) -> None:
    """Split a fused (3C x C) q/k/v weight or (3C) bias into three parameters ``base.<name>.<suffix>``."""
    if value.shape[0] % 3:
        raise CheckpointConversionError(f"fused attention parameter {base} has {value.shape[0]} rows, not 3*C")
    for name, part in zip(names, value.chunk(3, dim=0), strict=True):
        out[f"{base}.{name}.{suffix}"] = part.clone()


_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^transformer\.encoder\.layers\.(\d+)\.(.+)$"),
     lambda m: f"model.encoder.layers.{m[1]}.deformable_layer.{_rename_part(m[2], _DEFORMABLE)}"),
    (re.compile(r"^transformer\.encoder\.text_layers\.(\d+)\.(.+)$"),
     lambda m: f"model.encoder.layers.{m[1]}.text_enhancer_layer.{_rename_part(m[2], _TEXT_ENHANCER)}"),
    (re.compile(r"^transformer\.encoder\.fusion_layers\.(\d+)\.(.+)$"),
     lambda m: f"model.encoder.layers.{m[1]}.fusion_layer.{_rename_part(m[2], _FUSION)}"),
    (re.compile(r"^transformer\.decoder\.layers\.(\d+)\.(.+)$"),
     lambda m: f"model.decoder.layers.{m[1]}.{_rename_part(m[2], _DECODER)}"),
    (re.compile(r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.(.+)$"),
     lambda m: f"{BACKBONE}.swin.encoder.layers.{m[1]}.blocks.{m[2]}.{_rename_part(m[3], _SWIN_BLOCK)}"),
    (re.compile(r"^backbone\.0\.layers\.(\d+)\.downsample\.(.+)$"),
     lambda m: f"{BACKBONE}.swin.encoder.layers.{m[1]}.downsample.{m[2]}"),
    (re.compile(r"^backbone\.0\.norm(\d+)\.(.+)$"),
     lambda m: f"{BACKBONE}.hidden_states_norms.stage{int(m[1]) + 1}.{m[2]}"),
]


def _rename(key: str) -> str | None:
    for pattern, target in _RULES:
        if m := pattern.match(key):
            return target(m)
    for old, new in _PREFIXES:
        if key.startswith(old):
            return new + key[len(old):]
    return None


def convert_state_dict(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Rename an Open-GroundingDino state dict (optionally wrapped as ``{"model": ...}``) to transformers
    names. Unknown keys raise :class:`CheckpointConversionError`."""
    if "model" in state and isinstance(state["model"], Mapping):
        state = state["model"]
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for raw_key, value in state.items():
        key = raw_key.removeprefix("module.")
        if any(p.search(key) for p in _DROP):
            continue
        new = _rename(key)
        if new is None:
            unknown.append(raw_key)
            continue
        fused = re.match(r"^(.*)\.(?:in_proj_(weight|bias)|attn\.qkv\.(weight|bias))$", new)
        if fused:
            suffix = fused[2] or fused[3]
            if new.endswith(f"attn.qkv.{suffix}"):
                _split_fused(out, fused[1] + ".attention", suffix, value, ("q_proj", "k_proj", "v_proj"))
            else:
                _split_fused(out, fused[1], suffix, value, ("query", "key", "value"))
        else:
            out[new] = value
    if unknown:
        raise CheckpointConversionError(f"{len(unknown)} checkpoint keys have no transformers counterpart, e.g. "
                                        f"{unknown[:5]}")
    return out


def load_groundingdino_pth(path: str | os.PathLike, base: str | os.PathLike,
                           device: str = "cpu") -> tuple[Any, Any]:
    """(model, processor): ``base``'s config and processor (folder or hub id) with the ``.pth`` weights."""
    from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection, GroundingDinoProcessor

    checkpoint = torch.load(str(path), map_location="cpu", weights_only=False)
    converted = convert_state_dict(checkpoint)
    model = GroundingDinoForObjectDetection(GroundingDinoConfig.from_pretrained(str(base)))
    expected = set(model.state_dict())
    missing = sorted(k for k in expected - set(converted) if ".swin.layernorm." not in k and
                     not k.startswith("model.decoder.bbox_embed.") and not re.match(r"bbox_embed\.[1-9]", k))
    unexpected = sorted(set(converted) - expected)
    if missing or unexpected:
        raise CheckpointConversionError(f"checkpoint {path} does not fit {base}: missing {missing[:5]} "
                                        f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})")
    model.load_state_dict(converted, strict=False)
    model.tie_weights()
    processor = GroundingDinoProcessor.from_pretrained(str(base), backend="pil")
    return model.to(device).eval(), processor
