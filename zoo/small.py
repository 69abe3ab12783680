"""Small models of the same code paths: a card's model at its architecture's test size.

Tests, conformance checks and the export suite build, run and export every
registered model, and must do it in seconds. Each architecture declares
``test_config`` (merged recursively over a card's config: fewer blocks, narrower
layers) and ``test_inputs`` (input fields such as ``size`` and ``frames``
replaced so that the example input fits the small config). :func:`small_card`
applies both and returns a card that validates like any other. It has no
weights (pretrained ones would not fit), no metrics (they were measured on the
real model) and the small model's true parameter count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoo.cards import Card
from zoo.registry import Registry, default_registry


def small_card(card: Card | str, registry: Registry | None = None) -> Card:
    """``card`` at its architecture's test size: same architecture and code, seconds to run."""
    from zoo.loading import count_parameters, empty_model

    registry = registry or default_registry()
    card = registry.card(card) if isinstance(card, str) else card
    architecture = registry.architecture(card.architecture)
    config = merge(card.config, architecture.test_config)
    parameters = count_parameters(empty_model(architecture, config))
    data = {
        **card.to_data(),
        "aliases": [],
        "config": architecture.validate_config(config).model_dump(mode="json"),
        "summary": f"{card.name} at the {architecture.name} test size, random weights",
        "inputs": [
            {**spec.model_dump(mode="json"), **architecture.test_inputs} for spec in card.inputs
        ],
        "weights": [],
        "metrics": [],
        "parameters": parameters,
    }
    return Card.from_data(data, origin=f"small card of {card.name!r}")


def merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied; nested mappings are merged, not replaced."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
