"""Faster R-CNN's inference stages: image transform, anchors, RPN, multi-scale RoIAlign, box head.

Every step reproduces torchvision's evaluation arithmetic operation for operation
(same tensor shapes into ``exp``, ``softmax`` and ``topk``), so that the same
weights give the same proposals and detections, not merely close ones: a last-bit
difference in a score can reorder ``topk`` or flip an NMS decision. The generic
box operations (NMS, RoIAlign, clipping) are torchvision's ops.
"""

from __future__ import annotations

import math
from typing import TypedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import (
    batched_nms,
    box_area,
    clip_boxes_to_image,
    remove_small_boxes,
    roi_align,
)

from zoo_plugins.fpn import FasterRCNNConfig

RPN_BOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
ROI_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
BOX_EXP_CLIP = math.log(1000.0 / 16)
"""Largest log-scale a box may grow by when decoded: keeps exp() finite."""

RPN_MIN_BOX_SIZE = 1e-3
DETECTION_MIN_BOX_SIZE = 1e-2
ROI_STRIDES = (4, 8, 16, 32)
"""Strides of P2..P5, the levels RoIAlign pools from."""
CANONICAL_BOX_SIZE = 224
CANONICAL_LEVEL = 4
LEVEL_EPS = 1e-6

ImageSize = tuple[int, int]


class Detection(TypedDict):
    boxes: Tensor
    scores: Tensor
    labels: Tensor


class DetectionTransform(nn.Module):
    """Normalise, resize (shorter side to ``min_size``, longer at most ``max_size``) and batch.

    The batch is zero-padded at the bottom and right to a multiple of
    ``size_divisible`` so that every pyramid level tiles the image exactly;
    ``postprocess`` maps boxes back to each original image.
    """

    def __init__(self, config: FasterRCNNConfig) -> None:
        super().__init__()
        self.min_size = config.min_size
        self.max_size = config.max_size
        self.size_divisible = config.size_divisible
        self.mean = config.image_mean
        self.std = config.image_std

    def forward(
        self, images: Tensor | list[Tensor]
    ) -> tuple[Tensor, list[ImageSize], list[ImageSize]]:
        images = self._as_list(images)
        original_sizes = [(image.shape[-2], image.shape[-1]) for image in images]
        resized = [self._resize(self._normalize(image)) for image in images]
        image_sizes = [(image.shape[-2], image.shape[-1]) for image in resized]
        return self._pad_and_stack(resized), image_sizes, original_sizes

    def postprocess(
        self,
        detections: list[Detection],
        image_sizes: list[ImageSize],
        original_sizes: list[ImageSize],
    ) -> list[Detection]:
        for detection, size, original in zip(detections, image_sizes, original_sizes, strict=True):
            detection["boxes"] = _rescale_boxes(detection["boxes"], size, original)
        return detections

    def _as_list(self, images: Tensor | list[Tensor]) -> list[Tensor]:
        if isinstance(images, Tensor):
            if images.dim() != 4:
                raise ValueError(
                    f"expected a batch (N, {len(self.mean)}, H, W) or a list of "
                    f"({len(self.mean)}, H, W) images, found shape {tuple(images.shape)}"
                )
            images = list(images.unbind(0))
        if not images:
            raise ValueError("expected at least one image, found none")
        for index, image in enumerate(images):
            if image.dim() != 3 or image.shape[0] != len(self.mean):
                raise ValueError(
                    f"image {index}: expected shape ({len(self.mean)}, H, W), "
                    f"found {tuple(image.shape)}"
                )
            if not image.is_floating_point():
                raise TypeError(
                    f"image {index}: expected floating-point values in [0, 1], found {image.dtype}"
                )
        return images

    def _normalize(self, image: Tensor) -> Tensor:
        mean = torch.as_tensor(self.mean, dtype=image.dtype, device=image.device)
        std = torch.as_tensor(self.std, dtype=image.dtype, device=image.device)
        return (image - mean[:, None, None]) / std[:, None, None]

    def _resize(self, image: Tensor) -> Tensor:
        height, width = image.shape[-2:]
        scale = min(self.min_size / min(height, width), self.max_size / max(height, width))
        return F.interpolate(
            image[None],
            scale_factor=scale,
            mode="bilinear",
            recompute_scale_factor=True,
            align_corners=False,
        )[0]

    def _pad_and_stack(self, images: list[Tensor]) -> Tensor:
        stride = self.size_divisible
        height = math.ceil(max(image.shape[-2] for image in images) / stride) * stride
        width = math.ceil(max(image.shape[-1] for image in images) / stride) * stride
        padded = [
            F.pad(image, (0, width - image.shape[-1], 0, height - image.shape[-2]))
            for image in images
        ]
        return torch.stack(padded)


def _rescale_boxes(boxes: Tensor, size: ImageSize, original: ImageSize) -> Tensor:
    """Boxes in the resized image's pixels to the original image's (ratios in float32)."""
    ratio_height, ratio_width = (
        torch.tensor(old, dtype=torch.float32, device=boxes.device)
        / torch.tensor(new, dtype=torch.float32, device=boxes.device)
        for old, new in zip(original, size, strict=True)
    )
    x1, y1, x2, y2 = boxes.unbind(1)
    return torch.stack(
        (x1 * ratio_width, y1 * ratio_height, x2 * ratio_width, y2 * ratio_height), 1
    )


def decode_boxes(deltas: Tensor, references: Tensor, weights: tuple[float, ...]) -> Tensor:
    """Apply ``(dx, dy, dw, dh)`` deltas (R, K*4) to reference boxes (R, 4): (R, K*4) boxes.

    The R-CNN parametrisation: centre shifts relative to the reference size, log-scale
    size changes (clamped so exp() stays finite), each divided by its weight.
    """
    references = references.to(deltas.dtype)
    widths = references[:, 2] - references[:, 0]
    heights = references[:, 3] - references[:, 1]
    centre_x = references[:, 0] + 0.5 * widths
    centre_y = references[:, 1] + 0.5 * heights
    weight_x, weight_y, weight_w, weight_h = weights
    dx = deltas[:, 0::4] / weight_x
    dy = deltas[:, 1::4] / weight_y
    dw = torch.clamp(deltas[:, 2::4] / weight_w, max=BOX_EXP_CLIP)
    dh = torch.clamp(deltas[:, 3::4] / weight_h, max=BOX_EXP_CLIP)
    predicted_x = dx * widths[:, None] + centre_x[:, None]
    predicted_y = dy * heights[:, None] + centre_y[:, None]
    half_w = torch.tensor(0.5, dtype=deltas.dtype, device=deltas.device) * (
        torch.exp(dw) * widths[:, None]
    )
    half_h = torch.tensor(0.5, dtype=deltas.dtype, device=deltas.device) * (
        torch.exp(dh) * heights[:, None]
    )
    corners = (
        predicted_x - half_w,
        predicted_y - half_h,
        predicted_x + half_w,
        predicted_y + half_h,
    )
    return torch.stack(corners, dim=2).flatten(1)


class AnchorGenerator(nn.Module):
    """One anchor size per pyramid level, at every aspect ratio, on every feature-map cell.

    Anchors are computed in forward (they depend on the padded batch size), so the
    module has no state and nothing is left on the meta device after loading.
    """

    def __init__(self, sizes: tuple[int, ...], aspect_ratios: tuple[float, ...]) -> None:
        super().__init__()
        self.sizes = sizes
        self.aspect_ratios = aspect_ratios

    @property
    def anchors_per_location(self) -> int:
        return len(self.aspect_ratios)

    def cell_anchors(self, size: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Zero-centred anchors (A, 4) of one size, rounded to whole pixels."""
        scales = torch.as_tensor([size], dtype=dtype, device=device)
        ratios = torch.as_tensor(self.aspect_ratios, dtype=dtype, device=device)
        height_ratios = torch.sqrt(ratios)
        width_ratios = 1 / height_ratios
        widths = (width_ratios[:, None] * scales[None, :]).view(-1)
        heights = (height_ratios[:, None] * scales[None, :]).view(-1)
        return (torch.stack([-widths, -heights, widths, heights], dim=1) / 2).round()

    def forward(self, batch_size: torch.Size, pyramid: list[Tensor]) -> Tensor:
        """Anchors (sum of H*W*A over levels, 4) in (y, x, anchor) order per level."""
        dtype, device = pyramid[0].dtype, pyramid[0].device
        per_level = []
        for size, feature in zip(self.sizes, pyramid, strict=True):
            grid_height, grid_width = feature.shape[-2:]
            stride_y = batch_size[0] // grid_height
            stride_x = batch_size[1] // grid_width
            shifts_x = torch.arange(0, grid_width, dtype=torch.int32, device=device) * stride_x
            shifts_y = torch.arange(0, grid_height, dtype=torch.int32, device=device) * stride_y
            shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
            shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
            cell = self.cell_anchors(size, dtype, device)
            per_level.append((shifts.view(-1, 1, 4) + cell.view(1, -1, 4)).reshape(-1, 4))
        return torch.cat(per_level)


class RPNHead(nn.Module):
    """A shared 3x3 conv + ReLU, then per-anchor objectness and box deltas (1x1 convs)."""

    def __init__(self, channels: int, anchors_per_location: int) -> None:
        super().__init__()
        # Nested one-element Sequential: torchvision's key layout ``conv.0.0``.
        self.conv = nn.Sequential(
            nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True))
        )
        self.cls_logits = nn.Conv2d(channels, anchors_per_location, 1)
        self.bbox_pred = nn.Conv2d(channels, anchors_per_location * 4, 1)

    def forward(self, pyramid: list[Tensor]) -> tuple[Tensor, Tensor, list[int]]:
        """Objectness (N, total) and deltas (N, total, 4) in anchor order, and count per level."""
        objectness, deltas, counts = [], [], []
        for feature in pyramid:
            hidden = self.conv(feature)
            logits = _anchor_major(self.cls_logits(hidden), 1)
            objectness.append(logits.flatten(1))
            deltas.append(_anchor_major(self.bbox_pred(hidden), 4))
            counts.append(logits.shape[1])
        return torch.cat(objectness, dim=1), torch.cat(deltas, dim=1), counts


def _anchor_major(prediction: Tensor, values: int) -> Tensor:
    """(N, A*values, H, W) to (N, H*W*A, values): the order the anchors are generated in."""
    batch, _, height, width = prediction.shape
    prediction = prediction.view(batch, -1, values, height, width).permute(0, 3, 4, 1, 2)
    return prediction.reshape(batch, -1, values)


class RegionProposalNetwork(nn.Module):
    """Proposals: decode every anchor, keep the top-n per level, clip, per-level NMS, top-n."""

    def __init__(self, config: FasterRCNNConfig) -> None:
        super().__init__()
        self.anchor_generator = AnchorGenerator(config.anchor_sizes, config.aspect_ratios)
        self.head = RPNHead(
            config.backbone.out_channels, self.anchor_generator.anchors_per_location
        )
        self.pre_nms_top_n = config.rpn_pre_nms_top_n
        self.post_nms_top_n = config.rpn_post_nms_top_n
        self.nms_thresh = config.rpn_nms_thresh
        self.score_thresh = config.rpn_score_thresh

    def forward(
        self, pyramid: list[Tensor], batch_size: torch.Size, image_sizes: list[ImageSize]
    ) -> list[Tensor]:
        objectness, deltas, counts = self.head(pyramid)
        anchors = self.anchor_generator(batch_size, pyramid)
        images = objectness.shape[0]
        boxes = decode_boxes(deltas.reshape(-1, 4), anchors.repeat(images, 1), RPN_BOX_WEIGHTS)
        boxes = boxes.view(images, -1, 4)
        return self._select(boxes, objectness, counts, image_sizes)

    def _select(
        self, boxes: Tensor, objectness: Tensor, counts: list[int], image_sizes: list[ImageSize]
    ) -> list[Tensor]:
        """Per image, the proposals that survive top-n per level, clipping and per-level NMS."""
        device = objectness.device
        levels = torch.cat(
            [
                torch.full((count,), level, dtype=torch.int64, device=device)
                for level, count in enumerate(counts)
            ]
        )
        top = self._top_per_level(objectness, counts)
        rows = torch.arange(objectness.shape[0], device=device)[:, None]
        scores = torch.sigmoid(objectness[rows, top])
        levels = levels.expand_as(objectness)[rows, top]
        boxes = boxes[rows, top]
        return [
            self._select_in_image(*selected)
            for selected in zip(boxes, scores, levels, image_sizes, strict=True)
        ]

    def _top_per_level(self, objectness: Tensor, counts: list[int]) -> Tensor:
        """Indices (N, k) of the ``pre_nms_top_n`` highest logits of each level, level by level."""
        indices, offset = [], 0
        for level_logits in objectness.split(counts, dim=1):
            keep = min(self.pre_nms_top_n, level_logits.shape[1])
            indices.append(level_logits.topk(keep, dim=1).indices + offset)
            offset += level_logits.shape[1]
        return torch.cat(indices, dim=1)

    def _select_in_image(
        self, boxes: Tensor, scores: Tensor, levels: Tensor, image_size: ImageSize
    ) -> Tensor:
        boxes = clip_boxes_to_image(boxes, image_size)
        keep = remove_small_boxes(boxes, RPN_MIN_BOX_SIZE)
        boxes, scores, levels = boxes[keep], scores[keep], levels[keep]
        keep = torch.where(scores >= self.score_thresh)[0]
        boxes, scores, levels = boxes[keep], scores[keep], levels[keep]
        keep = batched_nms(boxes, scores, levels, self.nms_thresh)[: self.post_nms_top_n]
        return boxes[keep]


def multiscale_roi_align(
    pyramid: list[Tensor], proposals: list[Tensor], output_size: int, sampling_ratio: int
) -> Tensor:
    """RoIAlign each box on the level its size selects (FPN paper, equation 1).

    A box of side ``sqrt(wh)`` goes to level ``floor(4 + log2(sqrt(wh) / 224))``,
    clamped to P2..P5; ``spatial_scale`` is that level's inverse stride. (torchvision
    infers each scale as the feature/image size ratio rounded to a power of two, which
    equals these strides whenever the largest resized image is at least 75 pixels high.)
    """
    sides = torch.sqrt(torch.cat([box_area(boxes) for boxes in proposals]))
    eps = torch.tensor(LEVEL_EPS, dtype=sides.dtype, device=sides.device)
    lowest = int(math.log2(ROI_STRIDES[0]))
    levels = torch.floor(CANONICAL_LEVEL + torch.log2(sides / CANONICAL_BOX_SIZE) + eps)
    levels = torch.clamp(levels, min=lowest, max=lowest + len(ROI_STRIDES) - 1).to(torch.int64)
    levels = levels - lowest
    rois = torch.cat(
        [
            torch.cat([torch.full_like(boxes[:, :1], image), boxes], dim=1)
            for image, boxes in enumerate(proposals)
        ]
    )
    pooled = pyramid[0].new_zeros((rois.shape[0], pyramid[0].shape[1], output_size, output_size))
    for level, (feature, stride) in enumerate(zip(pyramid, ROI_STRIDES, strict=True)):
        in_level = torch.where(levels == level)[0]
        pooled[in_level] = roi_align(
            feature,
            rois[in_level],
            output_size=output_size,
            spatial_scale=1.0 / stride,
            sampling_ratio=sampling_ratio,
        )
    return pooled


class TwoMLPHead(nn.Module):
    """The box head of FPN's Fast R-CNN: two 1024-d fully connected layers with ReLU."""

    def __init__(self, in_features: int, representation_size: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_features, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)

    def forward(self, pooled: Tensor) -> Tensor:
        return F.relu(self.fc7(F.relu(self.fc6(pooled.flatten(1)), inplace=True)), inplace=True)


class BoxPredictor(nn.Module):
    """Class logits and class-specific box deltas for each RoI."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_features, num_classes)
        self.bbox_pred = nn.Linear(in_features, num_classes * 4)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        return self.cls_score(features), self.bbox_pred(features)


class RoIHeads(nn.Module):
    """Pool each proposal, classify it, refine its box per class, then per-class NMS."""

    def __init__(self, config: FasterRCNNConfig) -> None:
        super().__init__()
        pooled_features = config.backbone.out_channels * config.roi_output_size**2
        self.box_head = TwoMLPHead(pooled_features, config.representation_size)
        self.box_predictor = BoxPredictor(config.representation_size, config.num_classes)
        self.output_size = config.roi_output_size
        self.sampling_ratio = config.roi_sampling_ratio
        self.score_thresh = config.box_score_thresh
        self.nms_thresh = config.box_nms_thresh
        self.detections_per_img = config.box_detections_per_img

    def forward(
        self, pyramid: list[Tensor], proposals: list[Tensor], image_sizes: list[ImageSize]
    ) -> list[Detection]:
        pooled = multiscale_roi_align(pyramid, proposals, self.output_size, self.sampling_ratio)
        logits, deltas = self.box_predictor(self.box_head(pooled))
        counts = [boxes.shape[0] for boxes in proposals]  # traced, not a constant, when exported
        boxes = decode_boxes(deltas, torch.cat(proposals), ROI_BOX_WEIGHTS)
        boxes = boxes.reshape(-1, logits.shape[-1], 4)
        scores = F.softmax(logits, -1)
        return [
            self._detect(*per_image)
            for per_image in zip(
                boxes.split(counts), scores.split(counts), image_sizes, strict=True
            )
        ]

    def _detect(self, boxes: Tensor, scores: Tensor, image_size: ImageSize) -> Detection:
        """Every (proposal, class) pair above the score threshold, then per-class NMS."""
        boxes = clip_boxes_to_image(boxes, image_size)
        labels = torch.arange(scores.shape[-1], device=scores.device).view(1, -1).expand_as(scores)
        # Column 0 is the background class: never a detection.
        boxes = boxes[:, 1:].reshape(-1, 4)
        scores = scores[:, 1:].reshape(-1)
        labels = labels[:, 1:].reshape(-1)
        keep = torch.where(scores > self.score_thresh)[0]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = remove_small_boxes(boxes, DETECTION_MIN_BOX_SIZE)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
        return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}
