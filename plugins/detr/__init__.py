"""DETR (Carion et al. 2020): end-to-end object detection with a transformer and set prediction.

This module only describes the architecture (it imports no torch). The network
is in :mod:`zoo_plugins.detr.model`, the checkpoint converters in
:mod:`zoo_plugins.detr.convert`, box post-processing in
:mod:`zoo_plugins.detr.postprocess` and the Hungarian matcher and set loss for
fine-tuning in :mod:`zoo_plugins.detr.loss`.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

import zoo
from zoo.registry import yaml_cards

RESNET50_LAYERS = (3, 4, 6, 3)
RESNET101_LAYERS = (3, 4, 23, 3)


class DetrConfig(BaseModel):
    """One DETR network; the defaults are the paper's DETR-R50 trained on COCO.

    ``num_classes`` counts the class slots without the no-object class, which the
    head adds as its last output: 91 for COCO, whose slot i is COCO category id i.
    ``backbone_layers`` are the bottleneck blocks per ResNet stage: (3, 4, 6, 3)
    is ResNet-50, (3, 4, 23, 3) ResNet-101.
    """

    model_config = ConfigDict(extra="forbid")

    backbone_layers: tuple[int, int, int, int] = RESNET50_LAYERS
    d_model: int = Field(default=256, ge=4)
    num_heads: int = Field(default=8, ge=1)
    ffn_dim: int = Field(default=2048, ge=1)
    encoder_layers: int = Field(default=6, ge=1)
    decoder_layers: int = Field(default=6, ge=1)
    num_queries: int = Field(default=100, ge=1)
    num_classes: int = Field(default=91, ge=1, description="class slots, no-object excluded")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0, description="used in training only")
    aux_outputs: bool = Field(
        default=False, description="also return every decoder layer's predictions (aux losses)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})"
            )
        if self.d_model % 4:
            raise ValueError(
                f"d_model must be a multiple of 4 (sine and cosine features for x and y), "
                f"found {self.d_model}"
            )
        if any(blocks < 1 for blocks in self.backbone_layers):
            raise ValueError(f"every backbone stage needs a block, found {self.backbone_layers}")
        return self


@zoo.hookimpl
def zoo_architectures() -> list[zoo.Architecture]:
    return [
        zoo.Architecture(
            name="detr",
            builder="zoo_plugins.detr.model:build",
            config=DetrConfig,
            converters={
                "authors": "zoo_plugins.detr.convert:from_authors",
                "transformers": "zoo_plugins.detr.convert:from_transformers",
            },
            converter_examples={
                "authors": "zoo_plugins.detr.upstream:authors_state",
                "transformers": "zoo_plugins.detr.upstream:transformers_state",
            },
            # Height and width stay open: the no-mask path it exports serves a batch of
            # equal-sized images, and the predictor batches images of one size together.
            export=zoo.ExportHints(
                output_names=["logits", "boxes"],
                dynamic_axes={
                    "image": {0: "batch", 2: "height", 3: "width"},
                    "logits": {0: "batch"},
                    "boxes": {0: "batch"},
                },
            ),
            test_config={
                "backbone_layers": (1, 1, 1, 1),
                "d_model": 32,
                "num_heads": 4,
                "ffn_dim": 64,
                "encoder_layers": 1,
                "decoder_layers": 1,
            },
            test_inputs={"size": (64, 96)},
            inference=zoo.InferenceHints(
                backend="openvino",
                postprocess="zoo_plugins.detr.postprocess:postprocess",
                memory_format="channels_last",
                measured=(
                    "benchmarks/bench_backends.py --family detr: OpenVINO float32 1.67x upstream "
                    "eager against onnxruntime's 1.12x on one CPU thread, interleaved on a loaded "
                    "machine (benchmarks/results/backends.json); onnxruntime runs where OpenVINO "
                    "is not installed"
                ),
            ),
            summary=(
                "DETR (Carion et al. 2020): ResNet backbone, transformer encoder-decoder and "
                "set prediction of boxes and classes"
            ),
        )
    ]


@zoo.hookimpl
def zoo_cards() -> list:
    return yaml_cards("zoo_cards", "detr")
