"""GroundingDINO's training loss, fixed in two places where transformers (5.x) departs from the original model.

1. Per-image captions. ``GroundingDinoImageLoss`` builds the classification targets by indexing the batch's
   concatenated label maps with ``class_label + len(label_maps[i])``: the right row only for the first two images
   (and only when they have the same number of phrases). With a different caption per image (positives plus
   sampled negatives, as in Open-GroundingDino), images 3.. of a batch are trained towards the wrong tokens.
   :class:`PerImageGroundingLoss` takes each image's targets from its own label map.
2. The two-stage encoder loss. transformers scores the selected proposals with the *static* query embeddings
   against the *un-encoded* text and uses *detached* proposal boxes, so neither the proposal classifier (which
   picks the top-k queries) nor the proposal box head ever gets a gradient: a model trained from scratch keeps
   selecting random proposals. As in the original GroundingDINO, :class:`GroundingLoss` scores the top-k
   proposals with their own encoder features and boxes (captured from the model's forward pass by a hook).

Also: ignore regions. A target may carry ``ignore_boxes`` (normalised ``cx, cy, w, h``): regions whose class
is unknown, such as a pseudo-labelled box the verifier could not confirm. An unmatched query whose predicted box
overlaps one (IoU >= :data:`IGNORE_IOU`) gets no classification loss: it is neither taught to see the region's
label nor taught that nothing is there.

Install with ``loss = install_grounding_loss(model)`` (``loss.remove()`` undoes it).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.loss.loss_for_object_detection import center_to_corners_format
from transformers.loss.loss_grounding_dino import (
    GroundingDinoHungarianMatcher,
    GroundingDinoImageLoss,
    sigmoid_focal_loss,
)

from valor_lib.detection.inference import box_iou

CLASS_LOSS_WEIGHT = 2.0  # cls / bbox / giou = 2 / 5 / 2 (Open-GroundingDino; bbox and giou come from the config)
IGNORE_IOU = 0.5  # an unmatched prediction this close to an ignore region gets no classification loss


class PerImageGroundingLoss(GroundingDinoImageLoss):
    """Upstream criterion with classification targets taken from each image's own label map, and no
    classification loss for unmatched predictions on ignore regions (module docstring)."""

    def loss_labels(self, outputs: dict[str, Any], targets: list[dict[str, torch.Tensor]],
                    indices: list[tuple[torch.Tensor, torch.Tensor]], num_boxes: int) -> dict[str, torch.Tensor]:
        if not any(len(t.get("ignore_boxes", ())) for t in targets):
            return super().loss_labels(outputs, targets, indices, num_boxes)
        logits = outputs["logits"]
        onehot = self._get_target_classes_one_hot(outputs, targets, indices).float()
        counted = outputs["text_mask"].expand_as(logits) & self.scored_queries(outputs, targets, indices)[..., None]
        loss = sigmoid_focal_loss(torch.masked_select(logits, counted), torch.masked_select(onehot, counted),
                                  num_boxes, alpha=self.focal_alpha, gamma=2)
        return {"loss_ce": loss}

    @staticmethod
    def scored_queries(outputs: dict[str, Any], targets: list[dict[str, torch.Tensor]],
                       indices: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """``[batch, queries]`` bool: False for unmatched queries whose box overlaps an ignore region."""
        boxes = outputs["pred_boxes"].detach()
        scored = torch.ones(boxes.shape[:2], dtype=torch.bool, device=boxes.device)
        for b, ((query_idx, _), target) in enumerate(zip(indices, targets, strict=True)):
            regions = target.get("ignore_boxes")
            if regions is None or not len(regions):
                continue
            iou = box_iou(center_to_corners_format(boxes[b]), center_to_corners_format(regions.to(boxes)))
            ignored = iou.max(dim=1).values >= IGNORE_IOU
            ignored[query_idx] = False
            scored[b] = ~ignored
        return scored

    def _get_target_classes_one_hot(self, outputs: dict[str, Any], targets: list[dict[str, torch.Tensor]],
                                    indices: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        logits = outputs["logits"]
        onehot = torch.zeros_like(logits, dtype=torch.long)
        for b, ((query_idx, target_idx), target, label_map) in enumerate(
                zip(indices, targets, outputs["label_maps"], strict=True)):
            if len(query_idx):
                onehot[b, query_idx] = label_map[target["class_labels"][target_idx]].to(torch.long)
        return onehot


class GroundingLoss:
    """Drop-in for transformers' ``GroundingDinoForObjectDetectionLoss`` (same call signature and outputs),
    installed as ``model.loss_function``; see the module docstring for what differs."""

    def __init__(self, model: Any):
        self.model = model
        self._captured: dict[str, torch.Tensor] = {}
        self._hook = model.model.register_forward_hook(self._capture)
        model.loss_function = self

    def _capture(self, module: Any, args: Any, output: Any) -> None:
        if isinstance(output, tuple):
            raise ValueError("GroundingLoss needs return_dict=True")
        self._captured = {"class": output.enc_outputs_class, "coords": output.enc_outputs_coord_logits}

    def remove(self) -> None:
        """Detach the hook and restore the model's own loss."""
        self._hook.remove()
        if getattr(self.model, "_loss_function", None) is self:
            del self.model._loss_function

    def encoder_head(self, num_queries: int) -> dict[str, torch.Tensor] | None:
        """Logits and boxes of the top-k encoder proposals (the ones the decoder starts from), with gradients."""
        enc_class, enc_coords = self._captured.get("class"), self._captured.get("coords")
        if enc_class is None or enc_coords is None:
            return None
        top = torch.topk(enc_class.max(-1).values, num_queries, dim=1).indices
        logits = torch.gather(enc_class, 1, top.unsqueeze(-1).expand(-1, -1, enc_class.shape[-1]))
        boxes = torch.gather(enc_coords, 1, top.unsqueeze(-1).expand(-1, -1, 4)).sigmoid()
        return {"logits": logits, "pred_boxes": boxes}

    def __call__(self, logits: torch.Tensor, labels: list[dict[str, torch.Tensor]], device: torch.device,
                 pred_boxes: torch.Tensor, config: Any, label_maps: tuple[torch.Tensor, ...],
                 text_mask: torch.Tensor, outputs_class: torch.Tensor | None = None,
                 outputs_coord: torch.Tensor | None = None, **_: Any,
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[dict[str, Any]] | None]:
        matcher = GroundingDinoHungarianMatcher(class_cost=config.class_cost, bbox_cost=config.bbox_cost,
                                                giou_cost=config.giou_cost)
        criterion = PerImageGroundingLoss(matcher=matcher, focal_alpha=config.focal_alpha,
                                          losses=["labels", "boxes", "cardinality"]).to(device)
        text = {"label_maps": label_maps, "text_mask": text_mask}
        heads: dict[str, dict[str, Any]] = {"": {"logits": logits, "pred_boxes": pred_boxes, **text}}
        auxiliary = None
        if config.auxiliary_loss and outputs_class is not None and outputs_coord is not None:
            auxiliary = [{"logits": c, "pred_boxes": b, **text}
                         for c, b in zip(outputs_class[:-1], outputs_coord[:-1], strict=True)]
            heads.update({f"_{i}": head for i, head in enumerate(auxiliary)})
        encoder = self.encoder_head(config.num_queries) if config.two_stage else None
        if encoder is not None:
            heads["_enc"] = {**encoder, **text}
        weights = {"loss_ce": CLASS_LOSS_WEIGHT, "loss_bbox": config.bbox_loss_coefficient,
                   "loss_giou": config.giou_loss_coefficient}
        loss_dict: dict[str, torch.Tensor] = {}
        total = logits.new_zeros(())
        for suffix, head in heads.items():
            for name, value in criterion(head, labels).items():
                loss_dict[name + suffix] = value
                if name in weights:
                    total = total + weights[name] * value
        self._captured = {}
        return total, loss_dict, auxiliary


def install_grounding_loss(model: Any) -> GroundingLoss:
    """Make ``model`` (a ``GroundingDinoForObjectDetection``) train with :class:`GroundingLoss`."""
    existing = getattr(model, "_loss_function", None)
    if isinstance(existing, GroundingLoss):
        existing.remove()
    return GroundingLoss(model)
