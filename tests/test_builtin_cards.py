"""Every built-in card: valid, loadable plugin, buildable on meta, honest parameter count."""

from __future__ import annotations

from pathlib import Path

import pytest

import zoo
from zoo.cards import INTEGRITY_MEANING
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


# --- what each card says about its weights' integrity -------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
# Revisions a card may pin, each with how it was verified (none can be looked up from here).
VERIFIED_REVISIONS: dict[str, str] = {}


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card.name)
def test_every_weights_part_states_which_integrity_check_applies(card):
    for part in card.weights:
        assert part.integrity is not None, f"{card.name}: state `integrity:` in its weights"
        assert part.integrity == part.verification()


def test_the_readme_names_every_integrity_check_the_cards_use():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    used = {part.integrity for card in CARDS for part in card.weights}

    for check in sorted(used | set(INTEGRITY_MEANING)):
        assert f"`{check}`" in readme, f"README.md does not name the {check!r} check"


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card.name)
def test_a_pinned_revision_is_one_somebody_verified(card):
    pinned = [part.revision for part in card.weights if part.revision != "main"]

    assert [rev for rev in pinned if rev not in VERIFIED_REVISIONS] == []


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card.name)
def test_dataset_names_survive_yaml_in_one_piece(card):
    for name in card.datasets:
        assert name.count("(") == name.count(")"), f"{card.name}: {name!r} was split by YAML"
        assert name.count("[") == name.count("]"), f"{card.name}: {name!r} was split by YAML"


def test_c3d_states_its_open_channel_order_question_and_the_check_that_settles_it():
    description = default_registry().card("c3d-sports1m").inputs[0].description

    assert "OPEN QUESTION, channel order" in description
    assert "BGR" in description and "mean clip" in description and "image_io.cpp" in description
    assert "RGB 0-255 with no mean" in description
    assert "as RGB and as BGR and compare the top-5" in description
