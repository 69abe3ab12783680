"""Registry behaviour with plugins registered in the test itself."""

from __future__ import annotations

import types

import pytest
from conftest import card_data, cards_plugin

import zoo
from zoo.registry import Registry


def registry_of(**plugins: object) -> Registry:
    return Registry.from_plugins(plugins)


def test_a_plugin_registers_architectures_and_cards(toy_plugin):
    registry = registry_of(toy=toy_plugin, cards=cards_plugin("cards", card_data()))

    assert registry.architecture("toy").builder == "toy_plugin:build"
    assert [card.name for card in registry.cards()] == ["toy-small"]
    assert registry.reports["toy"].hooks == ["zoo_architectures"]
    assert registry.reports["cards"].cards == ["toy-small"]
    assert all(not report.errors for report in registry.reports.values())


def test_aliases_and_qualified_names_resolve_to_the_same_card(toy_plugin):
    registry = registry_of(toy=toy_plugin, cards=cards_plugin("cards", card_data()))

    assert registry.card("toy") is registry.card("toy-small") is registry.card("cards:toy-small")


def test_an_unknown_name_suggests_the_closest(toy_plugin):
    registry = registry_of(toy=toy_plugin, cards=cards_plugin("cards", card_data()))

    with pytest.raises(zoo.UnknownNameError, match="did you mean 'toy-small'") as caught:
        registry.card("toy-smal")
    assert caught.value.suggestions[0] == "toy-small"


def test_patterns_task_and_architecture_filter_the_listing(toy_plugin):
    detector = card_data(name="toy-detector", aliases=[], task="object-detection")
    registry = registry_of(toy=toy_plugin, cards=cards_plugin("cards", card_data(), detector))

    assert [c.name for c in registry.cards("toy-d*")] == ["toy-detector"]
    assert [c.name for c in registry.cards("toy")] == ["toy-small"]  # matched by alias
    assert [c.name for c in registry.cards(task="object-detection")] == ["toy-detector"]
    assert [c.name for c in registry.cards(architecture="toy")] == ["toy-detector", "toy-small"]


def test_an_unknown_task_or_architecture_filter_is_an_error_listing_the_known_ones(toy_plugin):
    registry = registry_of(toy=toy_plugin, cards=cards_plugin("cards", card_data()))

    with pytest.raises(zoo.UnknownNameError, match=r"unknown task 'video'.*video-classification"):
        registry.cards(task="video")
    with pytest.raises(zoo.UnknownNameError, match=r"unknown architecture 'tyo'.*known.*: toy"):
        registry.cards(architecture="tyo")


def test_a_plugin_whose_hook_raises_is_reported_and_the_rest_works(toy_plugin):
    broken = types.ModuleType("broken")

    @zoo.hookimpl
    def zoo_cards():
        raise RuntimeError("card folder missing")

    broken.zoo_cards = zoo_cards

    with pytest.warns(zoo.ZooPluginWarning, match="card folder missing"):
        registry = registry_of(
            toy=toy_plugin, broken=broken, cards=cards_plugin("cards", card_data())
        )
    assert registry.reports["broken"].errors == [
        "hook zoo_cards raised RuntimeError: card folder missing"
    ]
    assert registry.card("toy-small").name == "toy-small"


def test_an_invalid_card_is_reported_with_its_field_path_and_its_siblings_register(toy_plugin):
    bad = card_data(name="toy-bad", aliases=[], inputs=[{"layout": "NCHW", "channels": 3}])

    with pytest.warns(zoo.ZooPluginWarning, match=r"inputs\.0\.size: Field required"):
        registry = registry_of(toy=toy_plugin, cards=cards_plugin("cards", bad, card_data()))
    assert registry.reports["cards"].cards == ["toy-small"]
    with pytest.raises(zoo.UnknownNameError):
        registry.card("toy-bad")


def test_a_card_for_an_unregistered_architecture_is_reported_not_fatal(toy_plugin):
    orphan = card_data(name="orphan", aliases=[], architecture="missing-arch")

    with pytest.warns(zoo.ZooPluginWarning, match="unknown architecture 'missing-arch'"):
        registry = registry_of(toy=toy_plugin, cards=cards_plugin("cards", orphan, card_data()))
    assert [card.name for card in registry.cards()] == ["toy-small"]


def test_a_card_whose_config_does_not_fit_the_architecture_is_reported(toy_plugin):
    wrong = card_data(name="toy-wrong", aliases=[], config={"widht": 4})

    with pytest.warns(zoo.ZooPluginWarning, match=r"toy-wrong.*widht"):
        registry = registry_of(toy=toy_plugin, cards=cards_plugin("cards", wrong))
    assert registry.cards() == []


def test_a_name_claimed_twice_is_never_resolved_silently(toy_plugin):
    first = cards_plugin("first", card_data())
    second = cards_plugin("second", card_data(summary="Another toy with the same name."))

    with pytest.warns(zoo.ZooPluginWarning, match="claimed by several registrations"):
        registry = registry_of(toy=toy_plugin, first=first, second=second)
    with pytest.raises(zoo.AmbiguousNameError, match="first:toy-small, second:toy-small"):
        registry.card("toy-small")
    assert registry.card("second:toy-small").summary == "Another toy with the same name."
    assert registry.card("first:toy").summary == "A toy model for tests."


def test_an_alias_that_shadows_another_cards_name_is_a_collision(toy_plugin):
    shadow = card_data(name="toy-other", aliases=["toy-small"])

    with pytest.warns(zoo.ZooPluginWarning, match="'toy-small' is claimed"):
        registry = registry_of(toy=toy_plugin, cards=cards_plugin("cards", card_data(), shadow))
    with pytest.raises(zoo.AmbiguousNameError):
        registry.card("toy-small")
    assert registry.card("toy-other").name == "toy-other"


def test_two_plugins_with_the_same_architecture_name_make_it_ambiguous(toy_plugin):
    import toy_plugin as twin_source

    twin = types.ModuleType("twin")
    twin.zoo_architectures = twin_source.zoo_architectures

    with pytest.warns(zoo.ZooPluginWarning, match="architecture name 'toy'"):
        registry = registry_of(toy=toy_plugin, twin=twin)
    with pytest.raises(zoo.AmbiguousNameError):
        registry.architecture("toy")
    assert registry.architecture("twin:toy").name == "toy"


def test_a_hook_with_an_unknown_name_is_a_registration_error():
    typo = types.ModuleType("typo")

    @zoo.hookimpl
    def zoo_card():
        return []

    typo.zoo_card = zoo_card

    with pytest.warns(zoo.ZooPluginWarning, match="unknown hooks"):
        registry = registry_of(typo=typo)
    assert registry.reports["typo"].status == "failed"


def test_a_hook_returning_the_wrong_type_is_reported(toy_plugin):
    odd = types.ModuleType("odd")

    @zoo.hookimpl
    def zoo_architectures():
        return [{"name": "not-an-architecture"}]

    odd.zoo_architectures = zoo_architectures

    with pytest.warns(zoo.ZooPluginWarning, match="expected Architecture"):
        registry = registry_of(odd=odd)
    assert registry.architectures() == []
