"""The C3D network in plain PyTorch.

Module names follow the common PyTorch port (DavideA/c3d-pytorch: ``conv1``, ``conv2``,
``conv3a`` … ``conv5b``, ``fc6`` … ``fc8``), so its checkpoint maps onto this one key for
key. Unlike that port, the forward returns logits, not softmax probabilities.
"""

from __future__ import annotations

from torch import Tensor, nn

from zoo_plugins.c3d import POOLS, C3DConfig

CONV_NAMES = ("conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")
# The pool that follows each convolution, by its number; conv3a, conv4a and conv5a have none.
POOL_AFTER = {"conv1": 1, "conv2": 2, "conv3b": 3, "conv4b": 4, "conv5b": 5}


class C3D(nn.Module):
    """Conv3d(3x3x3, padding 1) + ReLU blocks with max pools, then fc6, fc7 (ReLU, dropout), fc8."""

    def __init__(self, config: C3DConfig) -> None:
        super().__init__()
        self.clip_shape = (config.in_channels, config.frames, config.size, config.size)
        widths = (config.in_channels, *config.channels)
        for name, c_in, c_out in zip(CONV_NAMES, widths[:-1], widths[1:], strict=True):
            self.add_module(name, nn.Conv3d(c_in, c_out, kernel_size=3, padding=1))
        for number, (kernel, padding) in enumerate(POOLS, start=1):
            self.add_module(f"pool{number}", nn.MaxPool3d(kernel, stride=kernel, padding=padding))
        self.fc6 = nn.Linear(config.fc6_inputs, config.hidden)
        self.fc7 = nn.Linear(config.hidden, config.hidden)
        self.fc8 = (
            nn.Linear(config.hidden, config.num_classes) if config.num_classes is not None else None
        )
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(config.dropout)

    def forward_pooled(self, video: Tensor) -> Tensor:
        """The fc7 activations ``(N, hidden)``: the features C3D's authors describe clips with."""
        self._check_clip(video)
        h = video
        for name in CONV_NAMES:
            h = self.relu(getattr(self, name)(h))
            if name in POOL_AFTER:
                h = getattr(self, f"pool{POOL_AFTER[name]}")(h)
        h = self.dropout(self.relu(self.fc6(h.flatten(1))))
        return self.dropout(self.relu(self.fc7(h)))

    def forward(self, video: Tensor) -> Tensor:
        """Logits (N, num_classes) of clips (N, C, T, H, W); fc7 features if there is no fc8."""
        h = self.forward_pooled(video)
        return h if self.fc8 is None else self.fc8(h)

    def _check_clip(self, video: Tensor) -> None:
        """fc6 fixes the clip size, so any other size is an error here, not a shape clash later."""
        if video.dim() != 5 or tuple(video.shape[1:]) != self.clip_shape:
            channels, frames, height, width = self.clip_shape
            raise ValueError(
                f"C3D expects clips of shape (N, {channels}, {frames}, {height}, {width}) "
                f"(N, C, T, H, W), found {tuple(video.shape)}; fc6 takes the flattened "
                f"pool5 volume, so the clip length and frame size are fixed by the config "
                f"(frames={frames}, size={height})"
            )


def build(config: C3DConfig) -> C3D:
    return C3D(config)


def pooled_features(model: C3D, video: Tensor) -> Tensor:
    return model.forward_pooled(video)
