"""DETR's set prediction loss, for fine-tuning: Hungarian matching, then per-match losses.

Targets are one dict per image: ``labels`` (K,) class indices (COCO ids for the
COCO head) and ``boxes`` (K, 4) as normalised (cx, cy, w, h), the format the
model predicts. Weights are the paper's: matching cost = 1 x class + 5 x L1
+ 2 x GIoU; loss = 1 x cross-entropy (no-object weighted 0.1) + 5 x L1 + 2 x GIoU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from zoo_plugins.detr.boxes import cxcywh_to_xyxy, generalized_box_iou

Target = Mapping[str, Tensor]
Match = tuple[Tensor, Tensor]


class HungarianMatcher(nn.Module):
    """One-to-one assignment of predictions to targets at minimum total cost, per image.

    The class cost is minus the predicted probability of the target class (the
    paper's approximation of the likelihood, which keeps it commensurable with
    the box costs); the assignment is solved exactly by SciPy's
    ``linear_sum_assignment``. Returns, per image, (prediction indices, target
    indices), sorted by prediction index.
    """

    def __init__(self, cost_class: float = 1.0, cost_bbox: float = 5.0, cost_giou: float = 2.0):
        super().__init__()
        if cost_class == 0 and cost_bbox == 0 and cost_giou == 0:
            raise ValueError("at least one matching cost weight must be non-zero")
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou

    @torch.no_grad()
    def forward(self, outputs: Mapping[str, Tensor], targets: Sequence[Target]) -> list[Match]:
        matches = []
        for logits, boxes, target in zip(outputs["logits"], outputs["boxes"], targets, strict=True):
            cost = self.cost_matrix(logits, boxes, target)
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            matches.append(
                (torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64))
            )
        return matches

    def cost_matrix(self, logits: Tensor, boxes: Tensor, target: Target) -> Tensor:
        """(queries, targets) matching cost of one image."""
        probabilities = logits.float().softmax(-1)[:, target["labels"]]
        target_boxes = target["boxes"].to(boxes.dtype)
        l1 = torch.cdist(boxes, target_boxes, p=1)
        giou = generalized_box_iou(cxcywh_to_xyxy(boxes), cxcywh_to_xyxy(target_boxes))
        return self.cost_bbox * l1 - self.cost_class * probabilities - self.cost_giou * giou


class SetCriterion(nn.Module):
    """Cross-entropy over all queries (unmatched ones target no-object) plus L1 and GIoU
    over matched boxes, each box loss averaged over the number of target boxes.

    Returns the weighted total under ``loss`` and its parts (``loss_ce``,
    ``loss_bbox``, ``loss_giou``); with auxiliary outputs, each decoder layer is
    matched and weighted the same way and its parts get the suffix ``_<layer>``.
    """

    def __init__(
        self,
        num_classes: int = 91,
        matcher: HungarianMatcher | None = None,
        eos_coef: float = 0.1,
        weight_ce: float = 1.0,
        weight_bbox: float = 5.0,
        weight_giou: float = 2.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.matcher = matcher or HungarianMatcher()
        self.weights = {"loss_ce": weight_ce, "loss_bbox": weight_bbox, "loss_giou": weight_giou}
        class_weight = torch.ones(num_classes + 1)
        class_weight[-1] = eos_coef
        self.register_buffer("class_weight", class_weight)

    def forward(self, outputs: Mapping, targets: Sequence[Target]) -> dict[str, Tensor]:
        logits = outputs["logits"]
        if logits.shape[-1] != self.num_classes + 1:
            raise ValueError(
                f"expected logits over {self.num_classes} classes + no-object, "
                f"found {logits.shape[-1]} outputs"
            )
        num_boxes = max(sum(len(target["labels"]) for target in targets), 1)
        losses = self._layer_losses(outputs, targets, num_boxes)
        total = self._weighted(losses)
        for layer, aux in enumerate(outputs.get("aux_outputs", [])):
            aux_losses = self._layer_losses(aux, targets, num_boxes)
            total = total + self._weighted(aux_losses)
            losses.update({f"{name}_{layer}": value for name, value in aux_losses.items()})
        losses["loss"] = total
        return losses

    def _weighted(self, losses: Mapping[str, Tensor]) -> Tensor:
        return sum(self.weights[name] * value for name, value in losses.items())

    def _layer_losses(
        self, outputs: Mapping[str, Tensor], targets: Sequence[Target], num_boxes: int
    ) -> dict[str, Tensor]:
        logits, boxes = outputs["logits"], outputs["boxes"]
        matches = self.matcher(outputs, targets)
        images = torch.cat(
            [torch.full_like(rows, index) for index, (rows, _) in enumerate(matches)]
        )
        queries = torch.cat([rows for rows, _ in matches])
        classes = torch.full(
            logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device
        )
        classes[images, queries] = torch.cat(
            [target["labels"][cols] for target, (_, cols) in zip(targets, matches, strict=True)]
        ).to(logits.device)
        matched = boxes[images, queries]
        target_boxes = torch.cat(
            [target["boxes"][cols] for target, (_, cols) in zip(targets, matches, strict=True)]
        ).to(matched)
        giou = torch.diag(
            generalized_box_iou(cxcywh_to_xyxy(matched), cxcywh_to_xyxy(target_boxes))
        )
        return {
            "loss_ce": F.cross_entropy(logits.transpose(1, 2), classes, self.class_weight),
            "loss_bbox": F.l1_loss(matched, target_boxes, reduction="sum") / num_boxes,
            "loss_giou": (1 - giou).sum() / num_boxes,
        }
