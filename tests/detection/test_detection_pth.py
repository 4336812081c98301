"""Open-GroundingDino ``.pth`` -> transformers: a synthetic checkpoint with the original names, built from a
tiny Swin-T-shaped GroundingDINO, converts back to exactly the same model."""

import re

import pytest
import torch
from transformers import BertConfig, GroundingDinoConfig, GroundingDinoForObjectDetection, SwinConfig

from valor_lib.detection.pth import CheckpointConversionError, convert_state_dict, load_groundingdino_pth
from valor_lib.detection.tiny import TinyDetectorConfig, build_vocab, tiny_processor


def tiny_swin_config() -> GroundingDinoConfig:
    swin = SwinConfig(embed_dim=16, depths=[1, 1, 2, 1], num_heads=[1, 2, 2, 4], window_size=4, image_size=64,
                      out_indices=[2, 3, 4])
    bert = BertConfig(vocab_size=1100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32)
    return GroundingDinoConfig(backbone_config=swin, text_config=bert, d_model=32, encoder_layers=2,
                               decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=2,
                               decoder_attention_heads=2, num_queries=5, max_text_len=16)


# The original (IDEA / Open-GroundingDino) module names, written out per part, as the checkpoint stores them.
ORIGINAL_NAMES = [
    (r"^model\.text_backbone\.(.*)$", r"bert.\1"),
    (r"^model\.text_projection\.(.*)$", r"feat_map.\1"),
    (r"^model\.input_proj_vision\.(.*)$", r"input_proj.\1"),
    (r"^model\.level_embed$", r"transformer.level_embed"),
    (r"^model\.query_position_embeddings\.(.*)$", r"transformer.tgt_embed.\1"),
    (r"^model\.enc_output\.(.*)$", r"transformer.enc_output.\1"),
    (r"^model\.enc_output_norm\.(.*)$", r"transformer.enc_output_norm.\1"),
    (r"^model\.encoder_output_bbox_embed\.(.*)$", r"transformer.enc_out_bbox_embed.\1"),
    (r"^model\.decoder\.reference_points_head\.(.*)$", r"transformer.decoder.ref_point_head.\1"),
    (r"^model\.decoder\.bbox_embed\.(.*)$", r"transformer.decoder.bbox_embed.\1"),
    (r"^model\.decoder\.layer_norm\.(.*)$", r"transformer.decoder.norm.\1"),
    (r"^model\.encoder\.layers\.(\d+)\.deformable_layer\.self_attn_layer_norm\.(.*)$",
     r"transformer.encoder.layers.\1.norm1.\2"),
    (r"^model\.encoder\.layers\.(\d+)\.deformable_layer\.final_layer_norm\.(.*)$",
     r"transformer.encoder.layers.\1.norm2.\2"),
    (r"^model\.encoder\.layers\.(\d+)\.deformable_layer\.fc(\d)\.(.*)$", r"transformer.encoder.layers.\1.linear\2.\3"),
    (r"^model\.encoder\.layers\.(\d+)\.deformable_layer\.self_attn\.(.*)$",
     r"transformer.encoder.layers.\1.self_attn.\2"),
    (r"^model\.encoder\.layers\.(\d+)\.text_enhancer_layer\.layer_norm_before\.(.*)$",
     r"transformer.encoder.text_layers.\1.norm1.\2"),
    (r"^model\.encoder\.layers\.(\d+)\.text_enhancer_layer\.layer_norm_after\.(.*)$",
     r"transformer.encoder.text_layers.\1.norm2.\2"),
    (r"^model\.encoder\.layers\.(\d+)\.text_enhancer_layer\.fc(\d)\.(.*)$",
     r"transformer.encoder.text_layers.\1.linear\2.\3"),
    (r"^model\.encoder\.layers\.(\d+)\.text_enhancer_layer\.self_attn\.out_proj\.(.*)$",
     r"transformer.encoder.text_layers.\1.self_attn.out_proj.\2"),
    (r"^model\.encoder\.layers\.(\d+)\.fusion_layer\.vision_param$", r"transformer.encoder.fusion_layers.\1.gamma_v"),
    (r"^model\.encoder\.layers\.(\d+)\.fusion_layer\.text_param$", r"transformer.encoder.fusion_layers.\1.gamma_l"),
    (r"^model\.encoder\.layers\.(\d+)\.fusion_layer\.layer_norm_vision\.(.*)$",
     r"transformer.encoder.fusion_layers.\1.layer_norm_v.\2"),
    (r"^model\.encoder\.layers\.(\d+)\.fusion_layer\.layer_norm_text\.(.*)$",
     r"transformer.encoder.fusion_layers.\1.layer_norm_l.\2"),
    (r"^model\.encoder\.layers\.(\d+)\.fusion_layer\.attn\.(values_|out_|)vision_proj\.(.*)$",
     r"transformer.encoder.fusion_layers.\1.attn.\2v_proj.\3"),
    (r"^model\.encoder\.layers\.(\d+)\.fusion_layer\.attn\.(values_|out_|)text_proj\.(.*)$",
     r"transformer.encoder.fusion_layers.\1.attn.\2l_proj.\3"),
    (r"^model\.decoder\.layers\.(\d+)\.encoder_attn_text_layer_norm\.(.*)$",
     r"transformer.decoder.layers.\1.catext_norm.\2"),
    (r"^model\.decoder\.layers\.(\d+)\.encoder_attn_text\.out_proj\.(.*)$",
     r"transformer.decoder.layers.\1.ca_text.out_proj.\2"),
    (r"^model\.decoder\.layers\.(\d+)\.encoder_attn_layer_norm\.(.*)$", r"transformer.decoder.layers.\1.norm1.\2"),
    (r"^model\.decoder\.layers\.(\d+)\.encoder_attn\.(.*)$", r"transformer.decoder.layers.\1.cross_attn.\2"),
    (r"^model\.decoder\.layers\.(\d+)\.self_attn_layer_norm\.(.*)$", r"transformer.decoder.layers.\1.norm2.\2"),
    (r"^model\.decoder\.layers\.(\d+)\.self_attn\.out_proj\.(.*)$",
     r"transformer.decoder.layers.\1.self_attn.out_proj.\2"),
    (r"^model\.decoder\.layers\.(\d+)\.final_layer_norm\.(.*)$", r"transformer.decoder.layers.\1.norm3.\2"),
    (r"^model\.decoder\.layers\.(\d+)\.fc(\d)\.(.*)$", r"transformer.decoder.layers.\1.linear\2.\3"),
    (r"^model\.backbone\.conv_encoder\.model\.swin\.embeddings\.patch_embeddings\.projection\.(.*)$",
     r"backbone.0.patch_embed.proj.\1"),
    (r"^model\.backbone\.conv_encoder\.model\.swin\.embeddings\.norm\.(.*)$", r"backbone.0.patch_embed.norm.\1"),
    (r"^model\.backbone\.conv_encoder\.model\.swin\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.layernorm_before\.(.*)$",
     r"backbone.0.layers.\1.blocks.\2.norm1.\3"),
    (r"^model\.backbone\.conv_encoder\.model\.swin\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.layernorm_after\.(.*)$",
     r"backbone.0.layers.\1.blocks.\2.norm2.\3"),
    (r"^model\.backbone\.conv_encoder\.model\.swin\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.attention\.o_proj\.(.*)$",
     r"backbone.0.layers.\1.blocks.\2.attn.proj.\3"),
    (r"^model\.backbone\.conv_encoder\.model\.swin\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.attention\."
     r"relative_position_bias\.relative_position_bias_table$",
     r"backbone.0.layers.\1.blocks.\2.attn.relative_position_bias_table"),
    (r"^model\.backbone\.conv_encoder\.model\.swin\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.mlp\.(.*)$",
     r"backbone.0.layers.\1.blocks.\2.mlp.\3"),
    (r"^model\.backbone\.conv_encoder\.model\.swin\.encoder\.layers\.(\d+)\.downsample\.(.*)$",
     r"backbone.0.layers.\1.downsample.\2"),
    (r"^bbox_embed\.(.*)$", r"bbox_embed.\1"),
]
FUSED = [  # (pattern of the q/k/v parts, original fused name, part names in order)
    (r"^model\.encoder\.layers\.(\d+)\.text_enhancer_layer\.self_attn\.(query|key|value)\.(weight|bias)$",
     r"transformer.encoder.text_layers.\1.self_attn.in_proj_\3", ("query", "key", "value")),
    (r"^model\.decoder\.layers\.(\d+)\.self_attn\.(query|key|value)\.(weight|bias)$",
     r"transformer.decoder.layers.\1.self_attn.in_proj_\3", ("query", "key", "value")),
    (r"^model\.decoder\.layers\.(\d+)\.encoder_attn_text\.(query|key|value)\.(weight|bias)$",
     r"transformer.decoder.layers.\1.ca_text.in_proj_\3", ("query", "key", "value")),
    (r"^model\.backbone\.conv_encoder\.model\.swin\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.attention\."
     r"(q|k|v)_proj\.(weight|bias)$", r"backbone.0.layers.\1.blocks.\2.attn.qkv.\4", ("q", "k", "v")),
]


def to_original(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights under Open-GroundingDino names (DDP ``module.`` prefix, fused q/k/v, buffers)."""
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in model.state_dict().items():
        if ".swin.layernorm." in key:
            continue
        m = re.match(r"^model\.backbone\.conv_encoder\.model\.hidden_states_norms\.stage(\d)\.(.*)$", key)
        if m:
            out[f"backbone.0.norm{int(m[1]) - 1}.{m[2]}"] = value
            continue
        for pattern, target, parts in FUSED:
            if m := re.match(pattern, key):
                part = next(g for g in m.groups() if g in parts)
                fused.setdefault(m.expand(target), {})[part] = value
                break
        else:
            for pattern, target in ORIGINAL_NAMES:
                if re.match(pattern, key):
                    out[re.sub(pattern, target, key)] = value
                    break
            else:
                raise AssertionError(f"test table misses {key}")
    for name, parts in fused.items():
        order = ("q", "k", "v") if "qkv" in name else ("query", "key", "value")
        out[name] = torch.cat([parts[p] for p in order], 0)
    out["backbone.0.layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(16, 16, dtype=torch.long)
    out["bert.pooler.dense.weight"] = torch.zeros(16, 16)
    return {"model": {f"module.{k}": v for k, v in out.items()}}


@pytest.fixture(scope="module")
def source_model():
    torch.manual_seed(0)
    model = GroundingDinoForObjectDetection(tiny_swin_config()).eval()
    with torch.no_grad():  # non-default values everywhere, so a swapped tensor cannot go unnoticed
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def test_converted_checkpoint_matches_the_model_exactly(source_model):
    original = to_original(source_model)
    assert any(k.startswith("module.transformer.encoder.fusion_layers.1.") for k in original["model"])
    converted = convert_state_dict(original)
    target = GroundingDinoForObjectDetection(tiny_swin_config()).eval()
    missing, unexpected = target.load_state_dict(converted, strict=False)
    assert not unexpected
    assert all(".swin.layernorm." in k for k in missing)
    pixels = torch.rand(1, 3, 128, 128)
    ids = torch.tensor([[101, 200, 1012, 300, 301, 1012, 102]])
    with torch.no_grad():
        a = source_model(pixel_values=pixels, input_ids=ids)
        b = target(pixel_values=pixels, input_ids=ids)
    assert torch.allclose(a.logits, b.logits, atol=1e-5) and torch.allclose(a.pred_boxes, b.pred_boxes, atol=1e-6)


def test_unknown_keys_are_refused():
    with pytest.raises(CheckpointConversionError, match="no transformers counterpart"):
        convert_state_dict({"module.something.else": torch.zeros(1)})


def test_load_pth_with_a_local_base(source_model, tmp_path):
    base = tmp_path / "base"
    source_model.config.save_pretrained(base)
    tiny_processor(build_vocab(["chair"]), TinyDetectorConfig(max_text_len=16)).save_pretrained(base)
    torch.save(to_original(source_model), tmp_path / "ckpt.pth")
    model, processor = load_groundingdino_pth(tmp_path / "ckpt.pth", base)
    assert torch.equal(model.model.level_embed, source_model.model.level_embed)
    assert processor.tokenizer.convert_tokens_to_ids(".") == 1012
    bad = to_original(source_model)
    del bad["model"]["module.transformer.level_embed"]
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointConversionError, match="missing"):
        load_groundingdino_pth(tmp_path / "bad.pth", base)
