"""Parameters of the ``toy_world`` stage (section ``toy_world`` of params.yaml)."""

from __future__ import annotations

from pydantic import Field

from valor_lib.params import StrictModel


class ToyWorldParams(StrictModel):
    """Sizes of every toy split; generation is deterministic from ``common.seed``."""

    eval_items: int = Field(ge=4, description="items in each toy benchmark's evaluation split")
    train_items: int = Field(ge=0, description="items in each toy benchmark's training split (mining, RL)")
    omni3d_rows: int = Field(ge=8, description="rows of toy Omni3D-Bench (the first eval_items are held out)")
    pool_images: int = Field(ge=1, description="unlabelled images for query generation (SA-1B stand-in)")
    source_images: int = Field(ge=1, description="source-domain images with boxes (detector pretraining)")
    detection_val_images: int = Field(ge=1, description="held-out target-domain images with boxes (COCO-val stand-in)")
    pretrain_queries: int = Field(ge=0, description="text-only queries for the toy base model's pretraining")
    min_visible: float = Field(gt=0, lt=1, description="objects seen less than this are removed from a scene")
    workers: int = Field(ge=1, description="processes used to render")
