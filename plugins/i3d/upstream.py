"""The authors' I3D port (piergiaj/pytorch-i3d, shipped in cd-fvd): what the converters read.

Imported by the conformance kit (``Architecture.converter_examples``) and tests
only; cd-fvd is a test dependency, never needed to load a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo_plugins.i3d import I3DConfig, TwoStreamI3DConfig

if TYPE_CHECKING:
    from torch import Tensor

STREAMS = {"rgb": 3, "flow": 2}


def authors_state(config: I3DConfig) -> dict[str, Tensor]:
    from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d

    return InceptionI3d(num_classes=config.num_classes, in_channels=config.in_channels).state_dict()


def two_stream_authors_state(config: TwoStreamI3DConfig) -> dict[str, Tensor]:
    """Both streams in one state dict, under ``rgb.`` and ``flow.``, as the converter reads it."""
    return {
        f"{stream}.{key}": tensor
        for stream, channels in STREAMS.items()
        for key, tensor in authors_state(config.stream(channels)).items()
    }
