"""Box formats and the generalised IoU, used by post-processing and the set loss."""

from __future__ import annotations

import torch
from torch import Tensor


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """(cx, cy, w, h) to (x0, y0, x1, y1), in the same units."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise GIoU (Rezatofighi et al. 2019) of xyxy boxes: (N, 4), (M, 4) -> (N, M).

    IoU minus the share of the smallest enclosing box that neither box covers:
    1 for equal boxes, approaching -1 for tiny boxes far apart, and (unlike IoU)
    still informative when boxes do not overlap, which the matcher and loss need.
    """
    area1, area2 = box_area(boxes1), box_area(boxes2)
    top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    overlap = (bottom_right - top_left).clamp(min=0).prod(-1)
    union = area1[:, None] + area2[None, :] - overlap
    iou = overlap / union
    enclosing_top_left = torch.min(boxes1[:, None, :2], boxes2[None, :, :2])
    enclosing_bottom_right = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:])
    enclosing = (enclosing_bottom_right - enclosing_top_left).clamp(min=0).prod(-1)
    return iou - (enclosing - union) / enclosing
