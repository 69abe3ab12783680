"""A plugin for tests: the ``toy`` architecture, a converter, and no cards of its own."""

from pydantic import BaseModel, ConfigDict

import zoo


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = 4


def build(config: ToyConfig):
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, config.width, 3),
        nn.BatchNorm2d(config.width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(config.width, 4),
    )


def from_prefixed(state: dict, config: ToyConfig) -> dict:
    """An 'upstream' layout that is the zoo layout with every key under ``net.``."""
    return {key.removeprefix("net."): value for key, value in state.items()}


@zoo.hookimpl
def zoo_architectures():
    return [
        zoo.Architecture(
            name="toy",
            builder="toy_plugin:build",
            config=ToyConfig,
            converters={"prefixed": "toy_plugin:from_prefixed"},
        )
    ]
