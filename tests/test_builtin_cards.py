"""Every built-in card: valid, loadable plugin, buildable on meta, honest parameter count."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from cdfvd.third_party.i3d import pytorch_i3d as port_i3d
from safetensors import safe_open
from test_c3d import DAVIDEA_SHAPES
from torch import nn

import zoo
from zoo.cards import INTEGRITY_MEANING, Card, Weights
from zoo.loading import count_parameters, empty_model
from zoo.registry import Registry, default_registry
from zoo.weights import bundled_path, convert_state_dict, merge_parts

BUILTIN = Registry.from_entry_points()
CARDS = BUILTIN.cards()


def test_the_built_in_plugins_load_without_errors():
    problems = {name: r.errors for name, r in default_registry().reports.items() if r.errors}

    assert problems == {}
    assert {r.distribution for r in default_registry().reports.values()} == {"zoo-models"}


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card.name)
def test_a_built_in_card_builds_on_meta_with_its_stated_parameter_count(card):
    architecture = zoo.default_registry().architecture(card.architecture)

    model = empty_model(architecture, card.config)

    assert count_parameters(model) == card.parameters


# The input channels of the streams whose checkpoints the I3D port ships.
PORT_I3D_FILES = {"rgb_imagenet.pt": 3, "flow_imagenet.pt": 2}


def timm_model(card: Card, part: Weights) -> nn.Module:
    """The timm model whose weights the card's Hub repo holds (``timm/<model>.<tag>``)."""
    return timm.create_model(part.repo_id.removeprefix("timm/"), pretrained=False)


def torchvision_model(card: Card, part: Weights) -> nn.Module:
    """The torchvision model whose file the card's URL names (``<model>[_<data>]-<hash>.pth``)."""
    stem = part.url.rsplit("/", 1)[1].split("-")[0]
    names = [n for n in torchvision.models.list_models() if stem == n or stem.startswith(f"{n}_")]
    name = max(names, key=len)
    detectors = torchvision.models.list_models(torchvision.models.detection)
    options = {"weights_backbone": None} if name in detectors else {}
    return torchvision.models.get_model(name, weights=None, **options)


def authors_i3d(card: Card, part: Weights) -> nn.Module:
    """The port's network for the stream its file holds (``models/rgb_imagenet.pt``, ...)."""
    channels = PORT_I3D_FILES[part.url.rsplit("/", 1)[1]]
    return port_i3d.InceptionI3d(num_classes=card.config["num_classes"], in_channels=channels)


def davidea_c3d(card: Card, part: Weights) -> dict[str, torch.Tensor]:
    return {key: torch.empty(shape) for key, shape in DAVIDEA_SHAPES.items()}


def bundled_file(card: Card, part: Weights) -> dict[str, torch.Tensor]:
    """The zoo's own file: its header's keys and shapes, read without loading a tensor."""
    with safe_open(bundled_path(part.bundled), framework="pt") as file:
        names = file.keys()  # a safe_open handle is not iterable
        return {key: torch.empty(file.get_slice(key).get_shape()) for key in names}


def zoo_model(card: Card, part: Weights) -> nn.Module:
    """Another zoo model whose weights a part names (a fusion card's backbone), in its layout."""
    source = default_registry().card(part.model)
    return empty_model(default_registry().architecture(source.architecture), source.config)


# Where each (architecture, layout) a built-in card names comes from upstream.
UPSTREAM = {
    **{
        (fusion, "backbone"): zoo_model
        for fusion in ("early-fusion", "late-fusion", "late-fusion-concat", "cnn-lstm")
    },
    ("c3d", "davidea"): davidea_c3d,
    ("convlstm", "zoo"): bundled_file,
    ("faster-rcnn-fpn", "torchvision"): torchvision_model,
    ("i3d", "authors"): authors_i3d,
    ("i3d-two-stream", "authors"): authors_i3d,
    ("resnet-fpn", "torchvision-detector"): torchvision_model,
    ("resnext", "timm"): timm_model,
    ("resnext", "torchvision"): torchvision_model,
    ("vit", "timm"): timm_model,
}
# The Hub's transformers files carry the names transformers 4 wrote, which the installed
# transformers 5 no longer builds in memory; these tests write such files at full size.
CHECKED_ELSEWHERE = {
    ("detr", "transformers"): "test_detr.py::test_card_loads_transformers_file",
    ("vit", "transformers"): "test_vit.py::test_transformers_parity_base",
}
UPSTREAM_CARDS = [
    card
    for card in CARDS
    if not any((card.architecture, part.layout) in CHECKED_ELSEWHERE for part in card.weights)
]


def upstream_state(card: Card, part: Weights) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        upstream = UPSTREAM[card.architecture, part.layout](card, part)
    return upstream.state_dict() if isinstance(upstream, nn.Module) else upstream


def shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(tensor.shape) for key, tensor in state.items()}


def test_every_built_in_weights_layout_is_checked_against_its_upstream():
    layouts = {(card.architecture, part.layout) for card in CARDS for part in card.weights}

    assert layouts - UPSTREAM.keys() - CHECKED_ELSEWHERE.keys() == set()


@pytest.mark.parametrize("card", UPSTREAM_CARDS, ids=lambda card: card.name)
def test_a_built_in_cards_weights_convert_from_its_upstream_model_key_for_key(card):
    """The upstream model the card's source names, converted and put under each part's
    prefix as the loader does, gives exactly the keys and shapes of the card's model."""
    architecture = default_registry().architecture(card.architecture)
    config = architecture.validate_config(card.config)

    parts = [
        (
            part.prefix,
            convert_state_dict(architecture, config, upstream_state(card, part), part.layout),
        )
        for part in card.weights
    ]

    assert shapes(merge_parts(parts)) == shapes(empty_model(architecture, config).state_dict())


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


def test_the_integrity_page_names_every_check_the_cards_use():
    page = (ROOT / "docs" / "concepts" / "weights.md").read_text(encoding="utf-8")
    used = {part.integrity for card in CARDS for part in card.weights}

    for check in sorted(used | set(INTEGRITY_MEANING)):
        assert f"| `{check}` |" in page, f"docs/concepts/weights.md does not explain {check!r}"


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
