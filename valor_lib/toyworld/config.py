"""Parameters of the ``toy_world`` stage (section ``toy_world`` of params.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from valor_lib.params import StrictModel


class ToyDetectorParams(StrictModel):
    """Pretraining of the toy detector (a tiny GroundingDINO) on the source split, and its evaluation.

    Defaults are the toy values of params.yaml (so code that builds ToyWorldParams without them still works)."""

    seed: int | None = Field(None, ge=0, description="pretraining seed (None: common.seed); another value draws "
                                                    "another detector from the same recipe")
    holdout_images: int = Field(60, ge=1, description="source images held out of pretraining (source mAP)")
    epochs: int = Field(42, ge=1, description="passes over the remaining source images")
    batch_size: int = Field(8, ge=1, description="images per training step")
    lr: float = Field(6.0e-4, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(1.0e-4, ge=0, description="AdamW weight decay")
    adam_beta2: float = Field(0.95, gt=0, lt=1, description="AdamW second-moment decay (0.999 left it unstable)")
    backbone_lr_scale: float = Field(1.0, gt=0, description="the vision backbone's learning rate, a fraction of lr")
    scheduler: Literal["step", "cosine"] = Field("step", description="step (StepLR) | cosine (per step down to 0)")
    lr_step_epochs: int = Field(36, ge=1, description="StepLR step size (epochs)")
    lr_gamma: float = Field(0.1, gt=0, le=1, description="StepLR decay factor")
    warmup_steps: int = Field(0, ge=0, description="linear learning-rate warm-up (steps), before either schedule")
    select_every: int = Field(0, ge=0, description="epochs between source-holdout mAP checks; the best epoch's "
                                                   "weights are kept (0: the last weights)")
    grad_clip: float = Field(1.0, ge=0, description="gradient-norm clip (0: off)")
    max_labels: int = Field(10, ge=1, description="phrases per training caption (positives + sampled negatives)")
    p_coarse: float = Field(0.5, ge=0, le=1, description="chance an image's category is named without its colour")
    hflip: float = Field(0.5, ge=0, le=1, description="horizontal flip probability")
    d_model: int = Field(64, ge=32, description="transformer width (a multiple of 32)")
    num_queries: int = Field(30, ge=1, description="detection queries")
    encoder_layers: int = Field(1, ge=1, description="encoder layers")
    decoder_layers: int = Field(2, ge=2, description="decoder layers (GroundingDINO needs >= 2)")
    threads: int = Field(1, ge=1, description="torch CPU threads for pretraining (1: side by side with the other "
                                              "single-threaded models; more: alone, after them)")
    mining_thresholds: list[float] = Field([0.1, 0.1], min_length=2, max_length=2,
                                           description="[box, text] thresholds for mining pseudo-labels")
    answering_grid: list[float] = Field([0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6], min_length=1,
                                        description="threshold values whose (box, text <= box) pairs are scored by "
                                                    "how a program's calls fare on detection-val "
                                                    "(evaluate.call_scores) to choose common.gd_thresholds")


class ToyVlmVerifierParams(StrictModel):
    """Training of the toy VLM verifier's crop classifier (``valor_lib.grounding.toy_classifier``) on the
    vlm-knowledge split. Defaults are the toy values of params.yaml."""

    input_size: int = Field(24, ge=16, description="crops are shrunk to input_size x input_size pixels")
    padding: float = Field(0.1, ge=0, le=1, description="crop margin, a fraction of the box size (the verifier's)")
    crops_per_object: int = Field(6, ge=1, description="jittered well-fitting crops per object")
    background_crops: int = Field(3, ge=0, description="random background crops per image")
    holdout_fraction: float = Field(0.15, ge=0, lt=1, description="knowledge images kept out to measure accuracy")
    epochs: int = Field(30, ge=1, description="passes over the training crops")
    batch_size: int = Field(128, ge=1, description="crops per step")
    lr: float = Field(3.0e-3, gt=0, description="peak learning rate (one-cycle schedule)")
    threads: int = Field(1, ge=1, description="torch CPU threads (1: side by side with the other single-threaded "
                                              "models; more: alone, after them)")


class ToyPolicyParams(StrictModel):
    """The toy base policy (``valor_lib.policy.toy_model``): template-programmer pretraining data, tokenizer,
    model size and pretraining, and the programmer check. Defaults are the toy values of params.yaml."""

    examples: int = Field(0, ge=0, le=4, description="worked examples in the policy's prompt (paper: 4)")
    flaw_rate: float = Field(0.65, ge=0, le=1, description="share of template programs that carry a flaw")
    flaw_weights: dict[str, float] = Field(
        {"pixel_size": 3.0, "depth_from_2d": 3.0, "wrong_dimension": 0.5, "open_vqa": 0.5, "code_deviates": 0.3,
         "logic_slip": 0.3}, description="relative weight of each flaw (missing: 1)")
    programs_per_query: int = Field(1, ge=1, description="template programs written per pretraining query")
    vocab_size: int = Field(2048, ge=300, description="BPE vocabulary size (before the instruction-line tokens)")
    hidden_size: int = Field(128, ge=16)
    intermediate_size: int = Field(512, ge=16)
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    kv_heads: int = Field(2, ge=1)
    head_dim: int = Field(32, ge=8)
    epochs: int = Field(6, ge=1, description="passes over the template programs")
    batch_size: int = Field(4, ge=1, description="sequences per step")
    lr: float = Field(7.0e-4, gt=0, description="AdamW peak learning rate (warm-up, cosine decay)")
    weight_decay: float = Field(0.01, ge=0)
    warmup_frac: float = Field(0.03, ge=0, lt=1)
    copy_weight: float = Field(4.0, gt=0, description="loss weight of response tokens copied from the question")
    threads: int = Field(2, ge=1, description="torch CPU threads for pretraining (1: side by side with the other "
                                              "single-threaded models; more: alone, after them; a step at batch 4 "
                                              "is 1.55x faster on two)")


class ToyWorldParams(StrictModel):
    """Sizes of every toy split; generation is deterministic from ``common.seed``."""

    eval_items: int = Field(ge=4, description="items in each toy benchmark's evaluation split")
    train_items: int = Field(ge=0, description="items in each toy benchmark's training split (mining, RL)")
    omni3d_rows: int = Field(ge=8, description="rows of toy Omni3D-Bench (the first eval_items are held out)")
    pool_images: int = Field(ge=1, description="unlabelled images for query generation (SA-1B stand-in)")
    source_images: int = Field(ge=1, description="source-domain images with boxes (detector pretraining)")
    detection_val_images: int = Field(ge=1, description="held-out target-domain images with boxes (COCO-val stand-in)")
    knowledge_images: int = Field(ge=1, description="target-domain images with boxes and distractors that the toy VLM verifier learns from (its 'pretraining'), disjoint from every split it verifies")
    pretrain_queries: int = Field(ge=0, description="text-only queries for the toy base model's pretraining")
    min_visible: float = Field(gt=0, lt=1, description="objects seen less than this are removed from a scene")
    workers: int = Field(ge=1, description="processes used to render")
    pretrain_workers: int = Field(2, ge=1, description="single-threaded toy models pretrained at a time (side by "
                                                       "side in processes on a CPU when > 1)")
    detector: ToyDetectorParams = Field(default_factory=ToyDetectorParams,
                                        description="toy detector pretraining and evaluation")
    vlm_verifier: ToyVlmVerifierParams = Field(default_factory=ToyVlmVerifierParams,
                                               description="the toy VLM verifier's crop classifier")
    policy: ToyPolicyParams = Field(default_factory=ToyPolicyParams, description="the toy base policy")
