"""ResNeXt (Xie et al. 2017, arXiv 1611.05431) in plain PyTorch, ResNet as its cardinality-1 case.

Module names follow torchvision's (and timm's) ResNet so their checkpoints map
key for key: ``conv1``, ``bn1``, ``layer1``..``layer4`` of bottleneck blocks
(``conv1``, ``bn1``, ``conv2`` grouped, ``bn2``, ``conv3``, ``bn3``,
``downsample.0``, ``downsample.1``) and ``fc``. The stride sits on the 3x3
convolution ("ResNet v1.5"), as in both upstreams and every checkpoint they publish.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo_plugins.resnext import ResNeXtConfig

NormLayer = Callable[[int], nn.Module]
EXPANSION = 4
STAGE_PLANES = (64, 128, 256, 512)
STEM_CHANNELS = 64


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters, as detection backbones use.

    The four tensors are persistent buffers under torchvision's names, so a
    BatchNorm checkpoint loads into it once ``num_batches_tracked`` is dropped
    (see :func:`zoo_plugins.resnext.convert.without_batch_counters`).
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 grouped (the aggregated transformations), 1x1 expand, plus shortcut."""

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int,
        config: ResNeXtConfig,
        norm_layer: NormLayer,
    ) -> None:
        super().__init__()
        width = planes * config.width_per_group // 64 * config.groups
        out_channels = planes * EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = norm_layer(width)
        self.conv2 = nn.Conv2d(
            width, width, 3, stride=stride, padding=1, groups=config.groups, bias=False
        )
        self.bn2 = norm_layer(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = norm_layer(out_channels)
        self.downsample = (
            nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                norm_layer(out_channels),
            )
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(out))
        out += x if self.downsample is None else self.downsample(x)
        return F.relu(out, inplace=True)


class ResNeXt(nn.Module):
    """ResNeXt/ResNet classifier, or a backbone returning its stage outputs.

    ``norm_layer`` lets detection models use :class:`FrozenBatchNorm2d`; the key
    layout is the same for any norm with BatchNorm's buffer names.
    """

    def __init__(self, config: ResNeXtConfig, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        self.config = config
        self.conv1 = nn.Conv2d(
            config.in_channels, STEM_CHANNELS, 7, stride=2, padding=3, bias=False
        )
        self.bn1 = norm_layer(STEM_CHANNELS)
        in_channels = STEM_CHANNELS
        for index in range(config.last_stage):
            planes = STAGE_PLANES[index]
            stride = 1 if index == 0 else 2
            stage = self._stage(in_channels, planes, stride, config.layers[index], norm_layer)
            self.add_module(f"layer{index + 1}", stage)
            in_channels = planes * EXPANSION
        self.fc = nn.Linear(in_channels, config.num_classes) if config.has_classifier else None
        self._init_weights()

    def _stage(
        self, in_channels: int, planes: int, stride: int, blocks: int, norm_layer: NormLayer
    ) -> nn.Sequential:
        first = Bottleneck(in_channels, planes, stride, self.config, norm_layer)
        rest = [
            Bottleneck(planes * EXPANSION, planes, 1, self.config, norm_layer)
            for _ in range(blocks - 1)
        ]
        return nn.Sequential(first, *rest)

    def _init_weights(self) -> None:
        """He init for convolutions (the paper's); skipped on meta, where weights get assigned."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and not module.weight.is_meta:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    @property
    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{index + 1}") for index in range(self.config.last_stage)]

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"ResNeXt expects images of shape (batch, {self.config.in_channels}, height, "
                f"width), found {tuple(x.shape)}"
            )

    def _stem(self, x: Tensor) -> Tensor:
        return F.relu(self.bn1(self.conv1(x)), inplace=True)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The outputs of the stages in ``config.out_indices`` (0 is the stem), in order."""
        self._check_input(x)
        wanted = self.config.out_indices
        x = self._stem(x)
        features = [x] if 0 in wanted else []
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        for index, stage in enumerate(self.stages[: wanted[-1]], start=1):
            x = stage(x)
            if index in wanted:
                features.append(x)
        return features

    def forward_pooled(self, x: Tensor) -> Tensor:
        """The last stage averaged over space, ``(N, 2048)``: what the classifier reads."""
        self._check_input(x)
        x = F.max_pool2d(self._stem(x), kernel_size=3, stride=2, padding=1)
        for stage in self.stages:
            x = stage(x)
        return x.mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        if self.config.features_only:
            return self.forward_features(x)
        pooled = self.forward_pooled(x)
        return pooled if self.fc is None else self.fc(pooled)


def build(config: ResNeXtConfig) -> ResNeXt:
    return ResNeXt(config)


def pooled_features(model: ResNeXt, image: Tensor) -> Tensor:
    return model.forward_pooled(image)


def pooled_width(config: ResNeXtConfig) -> int:
    """The width of :meth:`ResNeXt.forward_pooled`: the last stage built (or the stem)."""
    stages = config.last_stage
    return STAGE_PLANES[stages - 1] * EXPANSION if stages else STEM_CHANNELS
