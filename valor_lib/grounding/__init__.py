"""Better grounding from VLM-verified pseudo-labels (paper §3.2, A.4.2, A.6.4).

    from valor_lib.grounding import (extract_grounding_queries, load_sources, write_programs, image_jobs,
                                     detect_candidates, verify_candidates, export_pseudo_labels,
                                     precision_table, train_on_pseudo_labels)

1. mine: (image, question) pairs -> programs -> ``gd_detect`` prompts (:mod:`.queries`, :mod:`.sources`,
   :mod:`.mining`) -> low-threshold candidate boxes;
2. verify: coarse filter, per-crop check, de-duplication through any VLM client (:mod:`.verify`, prompts in
   :mod:`.prompts`, what the VLM sees in :mod:`.views`; offline stand-in ``toy:vlm-verifier`` in
   :mod:`.toy_verifier`);
3. export: one record per image, ODVG + COCO + label map (:mod:`.export`); precision per stage against
   annotations (:mod:`.annotations`, toy ground truth in :mod:`.toy_annotations`);
4. fine-tune the detector on them (:mod:`.train`).

Names are imported lazily, so ``import valor_lib.grounding`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "GroundingQueries": "valor_lib.grounding.queries",
    "extract_grounding_queries": "valor_lib.grounding.queries",
    "normalize_label": "valor_lib.grounding.queries",
    "MiningItem": "valor_lib.grounding.sources",
    "MiningSourceParams": "valor_lib.grounding.sources",
    "ExclusionParams": "valor_lib.grounding.sources",
    "load_sources": "valor_lib.grounding.sources",
    "write_programs": "valor_lib.grounding.mining",
    "image_jobs": "valor_lib.grounding.mining",
    "detect_candidates": "valor_lib.grounding.mining",
    "load_detector": "valor_lib.grounding.mining",
    "VerifierSettings": "valor_lib.grounding.verify",
    "Verification": "valor_lib.grounding.verify",
    "verify_candidates": "valor_lib.grounding.verify",
    "PseudoImage": "valor_lib.grounding.export",
    "export_pseudo_labels": "valor_lib.grounding.export",
    "read_pseudo_images": "valor_lib.grounding.export",
    "select_images": "valor_lib.grounding.export",
    "precision_table": "valor_lib.grounding.annotations",
    "AnnotationWidget": "valor_lib.grounding.annotations",
    "read_annotations": "valor_lib.grounding.annotations",
    "FinetuneConfig": "valor_lib.grounding.train",
    "PRESETS": "valor_lib.grounding.train",
    "finetune_config": "valor_lib.grounding.train",
    "finetune_detector": "valor_lib.grounding.train",
    "train_on_pseudo_labels": "valor_lib.grounding.train",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'valor_lib.grounding' has no attribute {name!r}")
