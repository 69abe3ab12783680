"""Small cards: a card's model at its architecture's test size, valid like any card."""

from __future__ import annotations

import types

import pytest
from conftest import card_data, cards_plugin

import zoo
from zoo.errors import CardError
from zoo.loading import count_parameters, empty_model
from zoo.registry import Registry
from zoo.small import merge, small_card

BUILTIN = Registry.from_entry_points()


@pytest.mark.parametrize("card", BUILTIN.cards(), ids=lambda card: card.name)
def test_every_small_card_is_a_smaller_valid_card_of_the_same_architecture(card):
    small = small_card(card, BUILTIN)
    architecture = BUILTIN.architecture(card.architecture)

    assert small.name == card.name and small.architecture == card.architecture
    assert small.parameters == count_parameters(empty_model(architecture, small.config))
    assert small.parameters <= card.parameters
    assert small.weights == [] and small.metrics == [] and small.aliases == []
    assert [spec.name for spec in small.inputs] == [spec.name for spec in card.inputs]
    for spec in small.inputs:
        for field, value in architecture.test_inputs.items():
            assert getattr(spec, field) == (tuple(value) if isinstance(value, list) else value)


def test_a_nested_config_is_merged_not_replaced():
    small = small_card("fpn-resnet50-coco", BUILTIN)

    assert small.config["backbone"]["layers"] == [1, 1, 1, 1]
    assert small.config["backbone"]["out_channels"] == 256
    assert small.config["num_classes"] == 91
    assert merge({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5}}) == {
        "a": {"b": 5, "c": 2},
        "d": 3,
    }


def test_an_architecture_without_a_test_config_keeps_the_cards(toy_plugin):
    card = card_data(config={"width": 6})
    registry = Registry.from_plugins({"toy": toy_plugin, "cards": cards_plugin("c", card)})

    small = small_card("toy-small", registry)

    assert small.config == {"width": 6}
    assert small.inputs == registry.card("toy-small").inputs


def test_a_misspelt_test_input_field_is_an_error_not_ignored(toy_plugin):
    typo = zoo.Architecture(
        name="toy", builder="toy_plugin:build", config=toy_plugin.ToyConfig, test_inputs={"szie": 4}
    )
    plugin = types.ModuleType("typo")
    plugin.zoo_architectures = zoo.hookimpl(lambda: [typo])
    registry = Registry.from_plugins({"typo": plugin, "cards": cards_plugin("c", card_data())})

    with pytest.raises(CardError, match=r"small card of 'toy-small': inputs.0.szie: Extra inputs"):
        small_card("toy-small", registry)
