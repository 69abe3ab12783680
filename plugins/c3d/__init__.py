"""C3D (Tran et al. 2015): eight 3x3x3 convolutions, five max pools, three fully connected layers.

This module imports no torch: listing the zoo reads only the config model and the
import strings below. The network is in :mod:`zoo_plugins.c3d.model`, the upstream
layouts in :mod:`zoo_plugins.c3d.convert`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

import zoo
from zoo.registry import yaml_cards

SPORTS1M_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)
Channels = tuple[
    PositiveInt,
    PositiveInt,
    PositiveInt,
    PositiveInt,
    PositiveInt,
    PositiveInt,
    PositiveInt,
    PositiveInt,
]
# Each pool's (kernel = stride) and padding over (T, H, W), as in the paper and both ports.
POOLS = (
    ((1, 2, 2), (0, 0, 0)),
    ((2, 2, 2), (0, 0, 0)),
    ((2, 2, 2), (0, 0, 0)),
    ((2, 2, 2), (0, 0, 0)),
    ((2, 2, 2), (0, 1, 1)),
)


class C3DConfig(BaseModel):
    """The network's sizes. The defaults are the paper's Sports-1M model.

    The clip size is part of the config because fc6 flattens the last pooled volume:
    its input width is fixed by ``frames`` and ``size``, so the model accepts exactly
    that clip. Small ``channels``/``hidden`` give a model of the same code for fast tests.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: Channels = Field(
        default=SPORTS1M_CHANNELS,
        description="output channels of conv1, conv2, conv3a/b, conv4a/b, conv5a/b",
    )
    hidden: int = Field(default=4096, ge=1, description="width of fc6 and fc7")
    num_classes: int | None = Field(
        default=487,
        ge=1,
        description="fc8 outputs; None drops fc8 and the forward returns the fc7 features",
    )
    frames: int = Field(default=16, ge=1, description="clip length T the model accepts")
    size: int = Field(default=112, ge=1, description="height and width the model accepts")
    in_channels: int = Field(default=3, ge=1)
    dropout: float = Field(default=0.5, ge=0.0, lt=1.0, description="after fc6 and fc7")

    @model_validator(mode="after")
    def _pools_fit(self) -> C3DConfig:
        pooled = pooled_volume(self.frames, self.size)
        if min(pooled) < 1:
            raise ValueError(
                f"a {self.frames}x{self.size}x{self.size} clip pools to {pooled} before fc6; "
                "C3D needs at least 16 frames and 16 pixels so that every pool keeps one cell"
            )
        return self

    @property
    def fc6_inputs(self) -> int:
        """Width of the flattened pool5 output: 512 x 1 x 4 x 4 = 8192 for 16x112x112."""
        t, h, w = pooled_volume(self.frames, self.size)
        return self.channels[-1] * t * h * w


def pooled_volume(frames: int, size: int) -> tuple[int, int, int]:
    """(T, H, W) after pool5, by the max-pool size rule floor((n + 2p - k) / k) + 1."""
    volume = [frames, size, size]
    for kernel, padding in POOLS:
        volume = [
            (n + 2 * p - k) // k + 1 if n + 2 * p >= k else 0
            for n, k, p in zip(volume, kernel, padding, strict=True)
        ]
    t, h, w = volume
    return t, h, w


@zoo.hookimpl
def zoo_architectures() -> list[zoo.Architecture]:
    return [
        zoo.Architecture(
            name="c3d",
            builder="zoo_plugins.c3d.model:build",
            config=C3DConfig,
            converters={
                "davidea": "zoo_plugins.c3d.convert:from_davidea",
                "mmaction2": "zoo_plugins.c3d.convert:from_mmaction2",
            },
            converter_examples={
                "davidea": "zoo_plugins.c3d.upstream:davidea_state",
                "mmaction2": "zoo_plugins.c3d.upstream:mmaction2_state",
            },
            # fc6 flattens the pool5 volume, so the clip length stays the config's: batch only.
            export=zoo.ExportHints(
                output_names=["logits"],
                dynamic_axes={"video": {0: "batch"}, "logits": {0: "batch"}},
            ),
            features=zoo.FeatureHints(
                pooled="zoo_plugins.c3d.model:pooled_features",
                cam_layer="conv5b",
                first_conv="conv1",
                classifier="fc8",
            ),
            test_config={"channels": (4, 8, 8, 8, 16, 16, 16, 16), "hidden": 32},
            inference=zoo.InferenceHints(
                backend="openvino",
                measured=(
                    "benchmarks/bench_backends.py --family c3d: OpenVINO float32 1.33x upstream "
                    "eager against onnxruntime's 0.83x on one CPU thread, interleaved on a loaded "
                    "machine (benchmarks/results/backends.json); onnxruntime runs where OpenVINO "
                    "is not installed"
                ),
            ),
            summary="C3D: 3D ConvNet on 16x112x112 clips (Tran et al. 2015), returns logits",
        )
    ]


@zoo.hookimpl
def zoo_cards() -> list:
    return yaml_cards("zoo_cards", "c3d")
