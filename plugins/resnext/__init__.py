"""ResNeXt (Xie et al. 2017) and its cardinality-1 case, ResNet: image classifiers and backbones.

This module only describes the architecture (it imports no torch); the network
itself lives in :mod:`zoo_plugins.resnext.model` and the checkpoint converters
in :mod:`zoo_plugins.resnext.convert`.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

import zoo
from zoo.registry import yaml_cards

STAGES = 4


class ResNeXtConfig(BaseModel):
    """One ResNeXt/ResNet network: depth per stage, cardinality, bottleneck width, head.

    ``groups=1, width_per_group=64`` is the plain ResNet bottleneck; ResNeXt-50
    32x4d is ``groups=32, width_per_group=4``. ``features_only`` turns the
    classifier into a backbone returning the stage outputs chosen by
    ``out_indices`` (0: stem, stride 2; 1..4: layer1..layer4, strides 4, 8, 16, 32),
    the indices timm's ``features_only`` uses.
    """

    model_config = ConfigDict(extra="forbid")

    layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    groups: int = Field(default=1, ge=1, description="cardinality: 32 for ResNeXt")
    width_per_group: int = Field(default=64, ge=1, description="4 for 32x4d, 8 for 32x8d")
    num_classes: int = Field(default=1000, ge=0, description="0: no fc (headless backbone)")
    in_channels: int = Field(default=3, ge=1)
    features_only: bool = Field(
        default=False, description="forward returns the selected stage outputs, not logits"
    )
    out_indices: tuple[int, ...] = Field(
        default=(1, 2, 3, 4), description="stages returned by forward_features (0 is the stem)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if any(blocks < 1 for blocks in self.layers):
            raise ValueError(f"every stage needs at least one block, found layers={self.layers}")
        indices = self.out_indices
        if not indices or list(indices) != sorted(set(indices)):
            raise ValueError(f"out_indices must be non-empty and rising, found {indices}")
        if indices[0] < 0 or indices[-1] > STAGES:
            raise ValueError(f"out_indices must lie in 0..{STAGES}, found {indices}")
        return self

    @property
    def has_classifier(self) -> bool:
        """A features-only backbone or ``num_classes=0`` carries no fc layer."""
        return self.num_classes > 0 and not self.features_only

    @property
    def last_stage(self) -> int:
        """The deepest stage the network needs: all four for a classifier."""
        return self.out_indices[-1] if self.features_only else STAGES


@zoo.hookimpl
def zoo_architectures() -> list[zoo.Architecture]:
    return [
        zoo.Architecture(
            name="resnext",
            builder="zoo_plugins.resnext.model:build",
            config=ResNeXtConfig,
            converters={
                "torchvision": "zoo_plugins.resnext.convert:from_torchvision",
                "timm": "zoo_plugins.resnext.convert:from_timm",
            },
            converter_examples={
                "torchvision": "zoo_plugins.resnext.upstream:torchvision_state",
                "timm": "zoo_plugins.resnext.upstream:timm_state",
            },
            export=zoo.ExportHints(
                output_names=["logits"],
                dynamic_axes={
                    "image": {0: "batch", 2: "height", 3: "width"},
                    "logits": {0: "batch"},
                },
            ),
            features=zoo.FeatureHints(
                pooled="zoo_plugins.resnext.model:pooled_features",
                pooled_width="zoo_plugins.resnext.model:pooled_width",
                cam_layer="layer4",
                first_conv="conv1",
                channels_field="in_channels",
                classifier="fc",
            ),
            test_config={"layers": (1, 1, 1, 1), "groups": 2, "width_per_group": 4},
            test_inputs={"size": (64, 64)},
            inference=zoo.InferenceHints(
                backend="openvino",
                measured=(
                    "benchmarks/bench_backends.py --family resnext: OpenVINO float32 1.63x "
                    "upstream eager against onnxruntime's 1.53x on one CPU thread, interleaved "
                    "on a loaded machine (benchmarks/results/backends.json); onnxruntime runs "
                    "where OpenVINO is not installed"
                ),
            ),
            summary=(
                "ResNeXt (aggregated residual transformations, Xie et al. 2017) and ResNet "
                "(cardinality 1): ImageNet classifiers and multi-scale backbones"
            ),
        )
    ]


@zoo.hookimpl
def zoo_cards() -> list:
    return yaml_cards("zoo_cards", "resnext")
