"""Every built-in card: valid, loadable plugin, buildable on meta, honest parameter count."""

from __future__ import annotations

import pytest

import zoo
from zoo.loading import count_parameters, empty_model
from zoo.registry import Registry, default_registry

BUILTIN = Registry.from_entry_points()
CARDS = BUILTIN.cards()


def test_the_built_in_plugins_load_without_errors():
    problems = {name: r.errors for name, r in default_registry().reports.items() if r.errors}

    assert problems == {}
    assert {r.distribution for r in default_registry().reports.values()} == {"zoo"}


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card.name)
def test_a_built_in_card_builds_on_meta_with_its_stated_parameter_count(card):
    architecture = zoo.default_registry().architecture(card.architecture)

    model = empty_model(architecture, card.config)

    assert count_parameters(model) == card.parameters


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card.name)
def test_a_built_in_cards_builder_and_converters_import(card):
    architecture = default_registry().architecture(card.architecture)

    assert callable(architecture.resolve_builder())
    for part in card.weights:
        if part.layout != "zoo":
            assert callable(architecture.resolve_converter(part.layout))


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card.name)
def test_a_classifiers_labels_match_its_output(card):
    labels = card.label_names()
    if card.task not in ("image-classification", "video-classification") or labels is None:
        pytest.skip(f"{card.name} is not a classifier with labels")

    assert card.outputs[0].shape == [len(labels)]


@pytest.mark.heavy
@pytest.mark.parametrize("card", CARDS, ids=lambda card: card.name)
def test_a_built_in_model_maps_the_cards_example_input_to_its_output_shape(card):
    import torch

    model = zoo.load(card, pretrained=False)
    inputs = [torch.rand(spec.example_shape(batch=2)) for spec in card.inputs]
    with torch.inference_mode():
        result = model(*inputs)

    if isinstance(result, dict):
        tensors = list(result.values())  # in the card's order; keys may follow upstream's names
    else:
        tensors = result if isinstance(result, (tuple, list)) else [result]
    for spec, tensor in zip(card.outputs, tensors, strict=False):
        if isinstance(tensor, torch.Tensor) and all(isinstance(d, int) for d in spec.shape):
            assert tuple(tensor.shape) == (2, *spec.shape), spec.name
