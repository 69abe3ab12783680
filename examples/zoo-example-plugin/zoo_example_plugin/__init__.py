"""A minimal third-party zoo plugin: one architecture and its card."""

from pydantic import BaseModel, ConfigDict, Field

import zoo
from zoo.registry import yaml_cards


class TinyVideoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_classes: int = Field(default=10, ge=1)
    in_channels: int = Field(default=3, ge=1)
    width: int = Field(default=8, ge=1)


@zoo.hookimpl
def zoo_architectures() -> list[zoo.Architecture]:
    return [
        zoo.Architecture(
            name="tinyvideo",
            builder="zoo_example_plugin.model:build",
            config=TinyVideoConfig,
            export=zoo.ExportHints(
                output_names=["logits"],
                dynamic_axes={"video": {0: "batch"}, "logits": {0: "batch"}},
            ),
            # Already tiny; a small config of a bigger model keeps its code, shrinks its sizes.
            test_config={"width": 4},
            summary="A two-layer 3D CNN: the smallest video classifier that shows the contract.",
        )
    ]


@zoo.hookimpl
def zoo_cards():
    return yaml_cards("zoo_example_plugin", "cards")
