"""The Vision Transformer (Dosovitskiy et al. 2021, arXiv 2010.11929) as a zoo plugin.

This module only describes the architecture and its cards, so ``zoo list`` never
imports torch; the network lives in :mod:`zoo_plugins.vit.model` and the
upstream layouts (timm, transformers) in :mod:`zoo_plugins.vit.convert`.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

import zoo
from zoo.registry import yaml_cards


class ViTConfig(BaseModel):
    """Hyper-parameters of a ViT classifier; the defaults are ViT-B/16 at 224 pixels.

    ``layer_norm_eps`` differs between ports of the same weights (timm 1e-6,
    transformers 1e-12), so it is part of the config and each card states its own.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: int = Field(default=224, ge=1, description="height and width of the input")
    patch_size: int = Field(default=16, ge=1)
    in_channels: int = Field(default=3, ge=1)
    width: int = Field(default=768, ge=1, description="token dimension")
    depth: int = Field(default=12, ge=1, description="number of transformer blocks")
    heads: int = Field(default=12, ge=1)
    mlp_ratio: float = Field(default=4.0, gt=0, description="MLP hidden size / width")
    num_classes: int = Field(default=1000, ge=0, description="0: no head, return features")
    layer_norm_eps: float = Field(default=1e-6, gt=0)
    qkv_bias: bool = True

    @model_validator(mode="after")
    def _divisible(self) -> Self:
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
        if (self.width * self.mlp_ratio) % 1:
            raise ValueError(
                f"width * mlp_ratio ({self.width} * {self.mlp_ratio}) must be a whole number"
            )
        return self

    @property
    def grid_size(self) -> int:
        """Patches along each side of the image."""
        return self.image_size // self.patch_size

    @property
    def tokens(self) -> int:
        """Sequence length: one class token and one token per patch."""
        return 1 + self.grid_size**2

    @property
    def mlp_width(self) -> int:
        return int(self.width * self.mlp_ratio)


PRESETS: dict[str, dict[str, Any]] = {
    "vit-b16": {},
    "vit-l16": {"width": 1024, "depth": 24, "heads": 16},
}
"""Named sizes from the paper (Table 1), as overrides of :class:`ViTConfig`'s defaults."""


@zoo.hookimpl
def zoo_architectures() -> list[zoo.Architecture]:
    return [
        zoo.Architecture(
            name="vit",
            builder="zoo_plugins.vit.model:build",
            config=ViTConfig,
            converters={
                "timm": "zoo_plugins.vit.convert:from_timm",
                "transformers": "zoo_plugins.vit.convert:from_transformers",
            },
            converter_examples={
                "timm": "zoo_plugins.vit.upstream:timm_state",
                "transformers": "zoo_plugins.vit.upstream:transformers_state",
            },
            export=zoo.ExportHints(
                output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            ),
            features=zoo.FeatureHints(
                pooled="zoo_plugins.vit.model:pooled_features",
                pooled_width="zoo_plugins.vit.model:pooled_width",
                # The last block's normed input: its patch tokens still reach the class
                # token through the last attention. The block's output patch tokens never
                # reach the head (it reads the class token only), so their gradient is zero.
                cam_layer="blocks.-1.norm1",
                cam_tokens=1,
                first_conv="patch_embed.proj",
                channels_field="in_channels",
                classifier="head",
            ),
            test_config={"image_size": 32, "patch_size": 8, "width": 32, "depth": 2, "heads": 2},
            test_inputs={"size": (32, 32)},
            inference=zoo.InferenceHints(
                backend="openvino",
                measured=(
                    "benchmarks/bench_backends.py --family vit: OpenVINO float32 1.36x upstream "
                    "eager against onnxruntime's 1.27x on one CPU thread, interleaved on a loaded "
                    "machine (benchmarks/results/backends.json); onnxruntime runs where OpenVINO "
                    "is not installed"
                ),
            ),
            summary="Vision Transformer: patch embedding, class token, pre-norm blocks",
        )
    ]


@zoo.hookimpl
def zoo_cards() -> list[Any]:
    return yaml_cards("zoo_cards", "vit")
