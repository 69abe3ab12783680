"""Feature Pyramid Networks (Lin et al. 2017) and the paper's detector, Faster R-CNN with FPN.

This module only describes the architectures (it imports no torch). The pyramid
and its ResNet/ResNeXt body live in :mod:`zoo_plugins.fpn.model`, the detector's
transform, region proposal network and box head in :mod:`zoo_plugins.fpn.detection`,
and the checkpoint converters in :mod:`zoo_plugins.fpn.convert`. The key layout is
torchvision's, the most widely used release of these weights.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

import zoo
from zoo.registry import yaml_cards
from zoo_plugins.resnext import ResNeXtConfig

PYRAMID_LEVELS = 5
"""P2..P5 from the backbone stages plus the max-pooled P6 (torchvision's "pool")."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ResNetFPNConfig(BaseModel):
    """A ResNet/ResNeXt body (stages 1..4) under a feature pyramid of ``out_channels`` maps.

    ``groups=1, width_per_group=64`` is ResNet; ResNeXt-50 32x4d is ``groups=32,
    width_per_group=4``. The body's BatchNorm is frozen (fixed affine), as in every
    published FPN detector.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: tuple[int, int, int, int] = Field(
        default=(3, 4, 6, 3), description="bottleneck blocks per stage: (3, 4, 6, 3) is ResNet-50"
    )
    groups: int = Field(default=1, ge=1, description="cardinality: 32 for ResNeXt")
    width_per_group: int = Field(default=64, ge=1)
    in_channels: int = Field(default=3, ge=1)
    out_channels: int = Field(default=256, ge=1, description="channels of every pyramid level")

    @model_validator(mode="after")
    def _positive_depths(self) -> Self:
        if any(blocks < 1 for blocks in self.layers):
            raise ValueError(f"every stage needs at least one block, found layers={self.layers}")
        return self

    def body(self) -> ResNeXtConfig:
        """The headless ResNeXt returning stages 1..4, the pyramid's inputs."""
        return ResNeXtConfig(
            layers=self.layers,
            groups=self.groups,
            width_per_group=self.width_per_group,
            in_channels=self.in_channels,
            num_classes=0,
            features_only=True,
            out_indices=(1, 2, 3, 4),
        )


class FasterRCNNConfig(BaseModel):
    """Faster R-CNN on a feature pyramid, with torchvision's inference defaults.

    The sizes, thresholds and top-n counts are the ones torchvision's
    ``fasterrcnn_resnet50_fpn`` uses at evaluation, which produced the published
    COCO box AP of 37.0.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    backbone: ResNetFPNConfig = Field(default_factory=ResNetFPNConfig)
    num_classes: int = Field(default=91, ge=2, description="including background (index 0)")
    min_size: int = Field(default=800, ge=32, description="shorter side after resizing")
    max_size: int = Field(default=1333, ge=32, description="cap on the longer side")
    size_divisible: int = Field(default=32, ge=1, description="batch padded to a multiple")
    image_mean: tuple[float, ...] = IMAGENET_MEAN
    image_std: tuple[float, ...] = IMAGENET_STD
    anchor_sizes: tuple[int, ...] = Field(
        default=(32, 64, 128, 256, 512), description="one anchor size per pyramid level"
    )
    aspect_ratios: tuple[float, ...] = Field(default=(0.5, 1.0, 2.0), description="height/width")
    rpn_pre_nms_top_n: int = Field(default=1000, ge=1, description="per level, before NMS")
    rpn_post_nms_top_n: int = Field(default=1000, ge=1, description="per image, after NMS")
    rpn_nms_thresh: float = Field(default=0.7, gt=0, le=1)
    rpn_score_thresh: float = Field(default=0.0, ge=0, le=1)
    roi_output_size: int = Field(default=7, ge=1)
    roi_sampling_ratio: int = Field(default=2, ge=0)
    representation_size: int = Field(default=1024, ge=1, description="width of fc6 and fc7")
    box_score_thresh: float = Field(default=0.05, ge=0, le=1)
    box_nms_thresh: float = Field(default=0.5, gt=0, le=1)
    box_detections_per_img: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(self.anchor_sizes) != PYRAMID_LEVELS:
            raise ValueError(
                f"anchor_sizes needs one size per pyramid level ({PYRAMID_LEVELS}), "
                f"found {self.anchor_sizes}"
            )
        channels = self.backbone.in_channels
        for name in ("image_mean", "image_std"):
            if len(getattr(self, name)) != channels:
                raise ValueError(
                    f"{name} needs one value per input channel ({channels}), "
                    f"found {getattr(self, name)}"
                )
        if self.min_size > self.max_size:
            raise ValueError(f"min_size {self.min_size} exceeds max_size {self.max_size}")
        return self


@zoo.hookimpl
def zoo_architectures() -> list[zoo.Architecture]:
    return [
        zoo.Architecture(
            name="faster-rcnn-fpn",
            builder="zoo_plugins.fpn.model:build_faster_rcnn",
            config=FasterRCNNConfig,
            converters={"torchvision": "zoo_plugins.fpn.convert:from_torchvision"},
            converter_examples={"torchvision": "zoo_plugins.fpn.upstream:detector_state"},
            export=zoo.ExportHints(
                output_names=["boxes", "scores", "labels"],
                dynamic_axes={name: {0: "detections"} for name in ("boxes", "scores", "labels")},
                batch=1,
                set_axis="detections",
                # A score leaves ~60 layers, RoIAlign and a softmax: onnxruntime's convolutions,
                # summing in another order, put it ~2e-4 (relative) from PyTorch's.
                tolerance=1e-3,
                exporter="legacy",
                exporter_reason=(
                    "torch.export cannot trace torchvision's batched_nms, whose output size "
                    "depends on the data (pytorch/vision#9306, #9462); the TorchScript "
                    "exporter traces the whole detector, NMS included, at a fixed input size"
                ),
            ),
            test_config={
                "backbone": {"layers": (1, 1, 1, 1)},
                "min_size": 64,
                "max_size": 96,
                "rpn_pre_nms_top_n": 50,
                "rpn_post_nms_top_n": 20,
                "representation_size": 32,
            },
            test_inputs={"size": (48, 64)},
            inference=zoo.InferenceHints(
                memory_format="channels_last",
                measured=(
                    "benchmarks/bench_backends.py --family fpn: the exported graph takes one "
                    "480x640 image (legacy exporter), so torch is the default, in channels_last "
                    "(4% faster than eager in two runs)"
                ),
            ),
            expected_failures={
                "runs_on_openvino": (
                    "OpenVINO 2026.4 keeps a detection from the exported graph that PyTorch "
                    "drops (the small random model's first check: 1 box against 0), so "
                    "OpenVINO is not used for it; Faster R-CNN runs on PyTorch"
                ),
                "exports_to_onnx": (
                    "the legacy exporter traces the detector at one input size and batch 1 "
                    "(torchvision's batched_nms is data-dependent), so the graph is checked "
                    "against PyTorch at batch 1 only, not at two batch sizes"
                ),
            },
            summary=(
                "Faster R-CNN with a feature pyramid (Lin et al. 2017): RPN over five levels, "
                "multi-scale RoIAlign, two-FC box head; torchvision's key layout"
            ),
        ),
        zoo.Architecture(
            name="resnet-fpn",
            builder="zoo_plugins.fpn.model:build_resnet_fpn",
            config=ResNetFPNConfig,
            converters={
                "torchvision": "zoo_plugins.fpn.convert:backbone_from_torchvision",
                "torchvision-detector": "zoo_plugins.fpn.convert:backbone_from_detector",
            },
            converter_examples={
                "torchvision": "zoo_plugins.fpn.upstream:pyramid_state",
                "torchvision-detector": "zoo_plugins.fpn.upstream:pyramid_in_detector_state",
            },
            export=zoo.ExportHints(
                output_names=["p2", "p3", "p4", "p5", "pool"],
                dynamic_axes={
                    "image": {0: "batch", 2: "height", 3: "width"},
                    **{
                        level: {0: "batch", 2: f"{level}_height", 3: f"{level}_width"}
                        for level in ("p2", "p3", "p4", "p5", "pool")
                    },
                },
            ),
            test_config={"layers": (1, 1, 1, 1), "width_per_group": 8},
            test_inputs={"size": (64, 64)},
            summary=(
                "ResNet/ResNeXt feature pyramid (Lin et al. 2017) with frozen BatchNorm: five "
                "maps at strides 4..64; torchvision's key layout"
            ),
        ),
    ]


@zoo.hookimpl
def zoo_cards() -> list:
    return yaml_cards("zoo_cards", "fpn")
