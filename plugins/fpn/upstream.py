"""torchvision's Faster R-CNN and ResNet-FPN at any config: what the converters read.

Imported by the conformance kit (``Architecture.converter_examples``) and tests
only; torchvision's detection models are the source of these layouts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo_plugins.fpn import FasterRCNNConfig, ResNetFPNConfig

if TYPE_CHECKING:
    from torch import Tensor, nn

RETURN_LAYERS = {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}
STAGE_CHANNELS = [256, 512, 1024, 2048]


def pyramid(config: ResNetFPNConfig) -> nn.Module:
    """torchvision's BackboneWithFPN on a frozen-BatchNorm ResNet/ResNeXt body."""
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.resnet import Bottleneck, ResNet
    from torchvision.ops.misc import FrozenBatchNorm2d

    body = ResNet(
        Bottleneck,
        list(config.layers),
        groups=config.groups,
        width_per_group=config.width_per_group,
        norm_layer=FrozenBatchNorm2d,
    )
    return BackboneWithFPN(body, RETURN_LAYERS, STAGE_CHANNELS, config.out_channels)


def detector(config: FasterRCNNConfig) -> nn.Module:
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

    channels, roi = config.backbone.out_channels, config.roi_output_size
    anchors = AnchorGenerator(
        tuple((size,) for size in config.anchor_sizes),
        (config.aspect_ratios,) * len(config.anchor_sizes),
    )
    return FasterRCNN(
        pyramid(config.backbone),
        rpn_anchor_generator=anchors,
        box_head=TwoMLPHead(channels * roi**2, config.representation_size),
        box_predictor=FastRCNNPredictor(config.representation_size, config.num_classes),
    )


def detector_state(config: FasterRCNNConfig) -> dict[str, Tensor]:
    return detector(config).state_dict()


def pyramid_state(config: ResNetFPNConfig) -> dict[str, Tensor]:
    return pyramid(config).state_dict()


def pyramid_in_detector_state(config: ResNetFPNConfig) -> dict[str, Tensor]:
    """A whole detector's checkpoint, from which the pyramid converter takes the backbone."""
    return detector_state(FasterRCNNConfig(backbone=config))
