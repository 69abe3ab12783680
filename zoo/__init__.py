"""zoo: a plugin-based model zoo for PyTorch video and vision models.

    >>> import zoo
    >>> zoo.list_models("i3d*")
    >>> model = zoo.load("i3d-kinetics")                # card -> verified weights -> eval model
    >>> model = zoo.load("i3d-kinetics", pretrained=False)

Importing zoo does not import torch; building a model does.
"""

from __future__ import annotations

from zoo.architecture import Architecture, ExportHints, FeatureHints
from zoo.cards import Card
from zoo.errors import (
    AmbiguousNameError,
    CardError,
    UnknownNameError,
    WeightsError,
    ZooError,
    ZooWarning,
)
from zoo.hookspecs import hookimpl
from zoo.loading import build, load
from zoo.registry import ZooPluginWarning, default_registry

__all__ = [
    "AmbiguousNameError",
    "Architecture",
    "Card",
    "CardError",
    "ExportHints",
    "FeatureHints",
    "UnknownNameError",
    "WeightsError",
    "ZooError",
    "ZooPluginWarning",
    "ZooWarning",
    "build",
    "card",
    "hookimpl",
    "list_models",
    "load",
]


def list_models(
    pattern: str | None = None, *, task: str | None = None, architecture: str | None = None
) -> list[str]:
    """Names of the registered models, filtered by an fnmatch ``pattern`` like ``"i3d*"``."""
    cards = default_registry().cards(pattern, task=task, architecture=architecture)
    return [card.name for card in cards]


def card(name: str) -> Card:
    """The validated card of a model, by name, alias or ``plugin:name``."""
    return default_registry().card(name)
