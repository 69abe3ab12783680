"""The feature pyramid on a ResNet/ResNeXt body, and Faster R-CNN assembled on top of it.

Module names follow torchvision's detection models (``body``, ``fpn.inner_blocks``,
``fpn.layer_blocks``; ``backbone``, ``rpn``, ``roi_heads``), so torchvision's
checkpoints load key for key.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from zoo_plugins.fpn import FasterRCNNConfig, ResNetFPNConfig
from zoo_plugins.fpn.detection import (
    Detection,
    DetectionTransform,
    RegionProposalNetwork,
    RoIHeads,
)
from zoo_plugins.resnext.model import FrozenBatchNorm2d, ResNeXt

LEVEL_NAMES = ("0", "1", "2", "3", "pool")
"""torchvision's names for P2..P5 and the max-pooled P6."""

BOTTLENECK_EXPANSION = 4
BASE_WIDTH = 64


class FeaturePyramid(nn.Module):
    """Top-down pathway with lateral connections (Lin et al. 2017, section 3).

    Each backbone stage gets a 1x1 lateral projection to a common width; the
    coarser merged map is upsampled (nearest) and added; a 3x3 convolution then
    smooths each merged map. The coarsest output, subsampled by 2, is the extra
    level the RPN uses for the largest anchors.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        # One-element Sequentials: torchvision's Conv2dNormActivation without norm, key ``N.0``.
        self.inner_blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, out_channels, 1)) for channels in in_channels
        )
        self.layer_blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, padding=1)) for _ in in_channels
        )

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        merged = self.inner_blocks[-1](features[-1])
        outputs = [self.layer_blocks[-1](merged)]
        for index in range(len(features) - 2, -1, -1):
            lateral = self.inner_blocks[index](features[index])
            top_down = F.interpolate(merged, size=lateral.shape[-2:], mode="nearest")
            merged = lateral.add_(top_down)
            outputs.insert(0, self.layer_blocks[index](merged))
        # A 1x1 max pool with stride 2 is every other pixel: a strided view, no index bookkeeping.
        outputs.append(outputs[-1][..., ::2, ::2])
        return outputs


class ResNetFPN(nn.Module):
    """A ResNet/ResNeXt body with frozen BatchNorm under a five-level feature pyramid.

    Takes normalised images ``(N, C, H, W)`` and returns the pyramid as an ordered
    dict ``{"0": P2, "1": P3, "2": P4, "3": P5, "pool": P6}`` at strides 4..64.
    """

    def __init__(self, config: ResNetFPNConfig) -> None:
        super().__init__()
        self.in_channels = config.in_channels
        self.body = ResNeXt(config.body(), norm_layer=FrozenBatchNorm2d)
        stage_channels = [BASE_WIDTH * BOTTLENECK_EXPANSION * 2**stage for stage in range(4)]
        self.fpn = FeaturePyramid(stage_channels, config.out_channels)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"expected images of shape (N, {self.in_channels}, H, W), "
                f"found {tuple(images.shape)}"
            )
        return dict(zip(LEVEL_NAMES, self.fpn(self.body.forward_features(images)), strict=True))


class FasterRCNN(nn.Module):
    """Faster R-CNN with FPN (Lin et al. 2017, section 5), inference only.

    Takes RGB images with values in [0, 1], either a list of ``(C, H, W)`` tensors
    of any sizes or one ``(N, C, H, W)`` batch, and returns one dict per image with
    ``boxes`` (x1, y1, x2, y2 in pixels of that image), ``scores`` and ``labels``
    (COCO category ids for the 91-way model), best first per class after NMS.
    """

    def __init__(self, config: FasterRCNNConfig) -> None:
        super().__init__()
        self.transform = DetectionTransform(config)
        self.backbone = ResNetFPN(config.backbone)
        self.rpn = RegionProposalNetwork(config)
        self.roi_heads = RoIHeads(config)

    def forward(self, images: Tensor | list[Tensor]) -> list[Detection]:
        batch, image_sizes, original_sizes = self.transform(images)
        pyramid = list(self.backbone(batch).values())
        proposals = self.rpn(pyramid, batch.shape[-2:], image_sizes)
        detections = self.roi_heads(pyramid[:-1], proposals, image_sizes)
        return self.transform.postprocess(detections, image_sizes, original_sizes)


def build_resnet_fpn(config: ResNetFPNConfig) -> ResNetFPN:
    return ResNetFPN(config)


def build_faster_rcnn(config: FasterRCNNConfig) -> FasterRCNN:
    return FasterRCNN(config)
