"""R(2+1)D (Tran et al. 2018) as a third-party zoo plugin: the package to copy for your own.

This module is what ``zoo list`` imports, so it holds data only: the config model
and the two hooks. It must not import torch; the network (:mod:`.model`), the
converter from torchvision's layout (:mod:`.convert`) and the upstream reference
(:mod:`.upstream`) are named by import string and imported when a model is built.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

import zoo
from zoo.registry import yaml_cards

R2PLUS1D_18_LAYERS = (2, 2, 2, 2)


class R2Plus1DConfig(BaseModel):
    """Blocks per stage and classes; the defaults are R(2+1)D-18 on Kinetics-400.

    The stage widths (64, 128, 256, 512) and the stem are those of the paper's
    ResNet-18 family and of torchvision's weights, so they are not configurable:
    ``layers=(3, 4, 6, 3)`` gives R(2+1)D-34, ``(1, 1, 1, 1)`` a small model of the
    same code for tests.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = Field(
        default=R2PLUS1D_18_LAYERS, description="residual blocks in each of the four stages"
    )
    num_classes: int | None = Field(
        default=400,
        ge=1,
        description="classifier outputs; None drops the classifier and returns the 512 features",
    )


@zoo.hookimpl
def zoo_architectures() -> list[zoo.Architecture]:
    return [
        zoo.Architecture(
            name="r2plus1d",
            builder="zoo_example_plugin.model:build",
            config=R2Plus1DConfig,
            converters={"torchvision": "zoo_example_plugin.convert:from_torchvision"},
            converter_examples={"torchvision": "zoo_example_plugin.upstream:torchvision_state"},
            test_config={"layers": [1, 1, 1, 1]},
            test_inputs={"frames": 4, "size": [32, 32]},
            export=zoo.ExportHints(
                output_names=["logits"],
                dynamic_axes={
                    "video": {0: "batch", 2: "frames", 3: "height", 4: "width"},
                    "logits": {0: "batch"},
                },
            ),
            features=zoo.FeatureHints(
                pooled="zoo_example_plugin.model:pooled_features",
                cam_layer="stages.3",
                first_conv="stem.spatial",
                classifier="fc",
            ),
            summary=(
                "R(2+1)D (Tran et al. 2018): a video ResNet whose 3x3x3 convolutions are "
                "factorized into a 1x3x3 spatial and a 3x1x1 temporal one"
            ),
        )
    ]


@zoo.hookimpl
def zoo_cards() -> list:
    return yaml_cards("zoo_example_plugin", "cards")
