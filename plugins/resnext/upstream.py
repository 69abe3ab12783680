"""torchvision's and timm's ResNet/ResNeXt at any config: what the converters read.

Imported by the conformance kit (``Architecture.converter_examples``) and tests
only; torchvision and timm are test dependencies, never needed to load a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo_plugins.resnext import ResNeXtConfig

if TYPE_CHECKING:
    from torch import Tensor

UPSTREAM_CLASSES = 1000  # upstream always builds fc; the converter drops it for a backbone


def torchvision_state(config: ResNeXtConfig) -> dict[str, Tensor]:
    from torchvision.models.resnet import Bottleneck, ResNet

    model = ResNet(
        Bottleneck,
        list(config.layers),
        num_classes=config.num_classes or UPSTREAM_CLASSES,
        groups=config.groups,
        width_per_group=config.width_per_group,
    )
    return model.state_dict()


def timm_state(config: ResNeXtConfig) -> dict[str, Tensor]:
    from timm.models.resnet import Bottleneck, ResNet

    model = ResNet(
        Bottleneck,
        list(config.layers),
        num_classes=config.num_classes or UPSTREAM_CLASSES,
        in_chans=config.in_channels,
        cardinality=config.groups,
        base_width=config.width_per_group,
    )
    return model.state_dict()
