"""The built-in fusion cards agree with their backbones' cards, and say the head is untrained.

A fusion model sees every frame as its backbone saw images in training, so a card's input
spec must repeat the backbone card's preprocessing; its weights must be exactly the
backbone's. The full-size early fusion model is checked against its image model (heavy).
"""

from __future__ import annotations

import pytest

import zoo
from zoo.registry import Registry

BUILTIN = Registry.from_entry_points()
FUSION_CARDS = [BUILTIN.card(name) for name in BUILTIN.reports["fusion"].cards]
PREPROCESSING = (
    "channels",
    "channel_order",
    "size",
    "resize",
    "crop",
    "interpolation",
    "value_range",
    "mean",
    "std",
    "dynamic_size",
)
"""What each frame goes through before it reaches the backbone: the backbone card's say."""


def test_every_fusion_architecture_has_a_built_in_card():
    assert {card.architecture for card in FUSION_CARDS} == set(
        BUILTIN.reports["fusion"].architectures
    )


@pytest.mark.parametrize("card", FUSION_CARDS, ids=lambda card: card.name)
def test_a_fusion_card_preprocesses_frames_as_its_backbones_card_does(card):
    backbone = BUILTIN.card(card.config["backbone"])
    (video,), (image,) = card.inputs, backbone.inputs

    assert (video.name, video.layout) == ("video", "NCTHW")
    assert image.layout == "NCHW"
    for field in PREPROCESSING:
        assert getattr(video, field) == getattr(image, field), field
    assert video.frames == card.config.get("frames", video.frames)


@pytest.mark.parametrize("card", FUSION_CARDS, ids=lambda card: card.name)
def test_a_fusion_cards_weights_are_its_backbones_and_it_says_its_head_is_untrained(card):
    backbone = BUILTIN.card(card.config["backbone"])
    (part,) = card.weights

    assert (part.model, part.layout, part.prefix) == (backbone.name, "backbone", "")
    assert part.integrity == "model"
    assert (card.datasets, card.license) == (backbone.datasets, backbone.license)
    assert "UNTRAINED" in card.summary
    assert card.metrics == []
    assert card.outputs[0].shape == [card.config["num_classes"]]


@pytest.mark.heavy
def test_the_full_size_early_fusion_model_answers_a_still_clip_as_resnext50_does(tmp_path):
    import torch

    from zoo.weights import save_safetensors

    card = BUILTIN.card("early-fusion-resnext50-10f")
    torch.manual_seed(0)
    image_model = zoo.load(card.config["backbone"], pretrained=False)
    save_safetensors(image_model.state_dict(), tmp_path / "resnext50.safetensors")
    model = zoo.load(card, weights=tmp_path / "resnext50.safetensors", layout="backbone")
    image = torch.randn(1, 3, 224, 224)
    still = image.unsqueeze(2).expand(-1, -1, card.inputs[0].frames, -1, -1)

    with torch.inference_mode():
        fused = model.forward_features(still)
        expected = image_model.forward_pooled(image)

    assert model.backbone.conv1.in_channels == 3 * 10
    torch.testing.assert_close(fused, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("card", FUSION_CARDS, ids=lambda card: card.name)
def test_a_fusion_card_samples_as_its_network_allows(card):
    """Any clip length: the whole video at the card's rate; a fixed one: clips of it."""
    (video,) = card.inputs
    hints = BUILTIN.architecture(card.architecture).export
    dynamic_time = 2 in hints.dynamic_axes["video"]

    assert video.temporal is not None and video.fps is not None
    if dynamic_time:
        assert (video.temporal.protocol, video.temporal.min_frames) == ("whole", 1)
    else:
        assert video.temporal.protocol == "clips" and video.frames == card.config["frames"]
