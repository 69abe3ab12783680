"""The R(2+1)D network (Tran et al. 2018, "A Closer Look at Spatiotemporal Convolutions").

A ResNet-18 for video whose every t x d x d convolution is factorized into a
1 x d x d spatial convolution, BatchNorm and ReLU, and a t x 1 x 1 temporal
convolution (section 3.5). The module names are this plugin's own; the
converter in :mod:`zoo_example_plugin.convert` maps torchvision's checkpoint
onto them.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from zoo_example_plugin import R2Plus1DConfig

STAGE_WIDTHS = (64, 128, 256, 512)
STEM_MID_CHANNELS = 45  # fixed by the released weights, not derived from the paper's rule
IN_CHANNELS = 3


def mid_channels(c_in: int, c_out: int, temporal: int = 3, spatial: int = 3) -> int:
    """The paper's rule: as many parameters as the full t x d x d convolution it replaces.

    M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out)). Both convolutions of a
    block use the count of the block's first one (its input and output widths),
    as the released weights do.
    """
    return (temporal * spatial * spatial * c_in * c_out) // (
        spatial * spatial * c_in + temporal * c_out
    )


class Factorized(nn.Module):
    """A (2+1)D convolution: spatial 1 x k x k, BatchNorm, ReLU, temporal 3 x 1 x 1."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        mid: int,
        *,
        kernel: int = 3,
        stride: int = 1,
        time_stride: int = 1,
    ) -> None:
        super().__init__()
        self.spatial = nn.Conv3d(
            c_in,
            mid,
            (1, kernel, kernel),
            stride=(1, stride, stride),
            padding=(0, kernel // 2, kernel // 2),
            bias=False,
        )
        self.norm = nn.BatchNorm3d(mid)
        self.temporal = nn.Conv3d(
            mid, c_out, (3, 1, 1), stride=(time_stride, 1, 1), padding=(1, 0, 0), bias=False
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.temporal(F.relu(self.norm(self.spatial(x))))


class Projection(nn.Module):
    """The shortcut of a block that changes width or resolution: 1 x 1 x 1 conv and BatchNorm."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, 1, stride=stride, bias=False)
        self.norm = nn.BatchNorm3d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.conv(x))


class Block(nn.Module):
    """A basic residual block of two (2+1)D convolutions; stride 2 halves T, H and W."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        mid = mid_channels(c_in, c_out)
        self.conv1 = Factorized(c_in, c_out, mid, stride=stride, time_stride=stride)
        self.norm1 = nn.BatchNorm3d(c_out)
        self.conv2 = Factorized(c_out, c_out, mid)
        self.norm2 = nn.BatchNorm3d(c_out)
        needs_projection = stride != 1 or c_in != c_out
        self.shortcut = Projection(c_in, c_out, stride) if needs_projection else None

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)))


class R2Plus1D(nn.Module):
    """Stem, four stages of blocks, global average pooling and a linear classifier."""

    def __init__(self, config: R2Plus1DConfig) -> None:
        super().__init__()
        self.stem = Factorized(IN_CHANNELS, STAGE_WIDTHS[0], STEM_MID_CHANNELS, kernel=7, stride=2)
        self.stem_norm = nn.BatchNorm3d(STAGE_WIDTHS[0])
        stages, c_in = [], STAGE_WIDTHS[0]
        for index, (blocks, width) in enumerate(zip(config.layers, STAGE_WIDTHS, strict=True)):
            stride = 1 if index == 0 else 2
            stage = [Block(c_in, width, stride)] + [
                Block(width, width, 1) for _ in range(blocks - 1)
            ]
            stages.append(nn.Sequential(*stage))
            c_in = width
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(c_in, config.num_classes) if config.num_classes is not None else None

    def forward_pooled(self, video: Tensor) -> Tensor:
        """The 512 features of each clip, averaged over time and space: (N, 512)."""
        if video.dim() != 5 or video.shape[1] != IN_CHANNELS:
            raise ValueError(
                f"R(2+1)D expects clips of shape (N, {IN_CHANNELS}, T, H, W) (NCTHW, RGB), "
                f"found {tuple(video.shape)}"
            )
        h = F.relu(self.stem_norm(self.stem(video)))
        for stage in self.stages:
            h = stage(h)
        return h.mean(dim=(2, 3, 4))

    def forward(self, video: Tensor) -> Tensor:
        """Logits (N, num_classes) of clips (N, 3, T, H, W); the features without a classifier."""
        pooled = self.forward_pooled(video)
        return pooled if self.fc is None else self.fc(pooled)


def build(config: R2Plus1DConfig) -> R2Plus1D:
    return R2Plus1D(config)


def pooled_features(model: R2Plus1D, video: Tensor) -> Tensor:
    return model.forward_pooled(video)
