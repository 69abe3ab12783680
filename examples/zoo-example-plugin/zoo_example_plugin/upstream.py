"""torchvision's R(2+1)D, the upstream this plugin converts from and is proved against.

Imported only by tests and by the conformance kit (``zoo.testing``), never when
a model is loaded: torchvision is a test dependency of this package, not a
runtime one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo_example_plugin import R2Plus1DConfig

if TYPE_CHECKING:
    from torch import Tensor, nn

UPSTREAM_CLASSES = 400  # torchvision always builds a classifier; a features-only config drops it


def torchvision_model(config: R2Plus1DConfig) -> nn.Module:
    """torchvision's VideoResNet with (2+1)D blocks and the config's blocks per stage."""
    from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D, R2Plus1dStem, VideoResNet

    return VideoResNet(
        BasicBlock,
        [Conv2Plus1D] * 4,
        list(config.layers),
        R2Plus1dStem,
        num_classes=config.num_classes or UPSTREAM_CLASSES,
    )


def torchvision_state(config: R2Plus1DConfig) -> dict[str, Tensor]:
    """A state dict in torchvision's layout: what the converter check of ``zoo.testing`` feeds."""
    return torchvision_model(config).state_dict()
