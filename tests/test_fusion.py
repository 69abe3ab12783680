"""Early fusion, late fusion and CNN+LSTM over tiny image backbones of three plugins.

Each property the papers rest on is checked against the image model itself, with the
pretrained weights the fusion model fetched for it: a still clip gives early fusion the
image model's answer; late fusion pools (or concatenates) exactly the image model's
per-frame features; the LSTM reads them in order. The errors name what is missing.
"""

from __future__ import annotations

import pytest
import torch
from fusion_zoo import BACKBONES, FusionZoo, still_clip
from test_weights import hub  # noqa: F401  (fixture)

import zoo
from zoo.architecture import submodule

CLASSIFIERS = {"tiny-resnext": "fc", "tiny-vit": "head", "tiny-image": "classifier"}
"""The image models' own classifier layers: what the test copies into an early fusion head."""


@pytest.fixture
def fusion_zoo(hub) -> FusionZoo:  # noqa: F811
    return FusionZoo(hub)


def frame_features(fusion_zoo: FusionZoo, backbone: str, clip: torch.Tensor) -> torch.Tensor:
    """The image model's pooled features of each frame, one at a time: ``(N, T, D)``."""
    architecture = fusion_zoo.registry.architecture(fusion_zoo.registry.card(backbone).architecture)
    pooled = architecture.features.resolve_pooled()
    image_model = fusion_zoo.reference[backbone]
    frames = [pooled(image_model, clip[:, :, t]) for t in range(clip.shape[2])]
    return torch.stack(frames, dim=1)


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_a_still_video_gives_early_fusion_exactly_the_image_models_answer(fusion_zoo, backbone):
    card = fusion_zoo.fusion_card("early-fusion", backbone, frames=4, num_classes=5)
    model = fusion_zoo.load(card)
    image_model = fusion_zoo.reference[backbone]
    classifier = CLASSIFIERS[backbone]
    model.head.fc.load_state_dict(submodule(image_model, classifier).state_dict())
    image = torch.randn(2, 3, 32, 32)
    moving = torch.stack([image, *torch.randn(3, 2, 3, 32, 32)], dim=2)

    with torch.inference_mode():
        answer = model(still_clip(image, 4))
        expected = image_model(image)
        moved = model(moving)

    torch.testing.assert_close(answer, expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(moved, expected, rtol=1e-2, atol=1e-3)


def test_early_fusions_first_convolution_reads_k_times_three_channels(fusion_zoo):
    model = fusion_zoo.load(fusion_zoo.fusion_card("early-fusion", "tiny-resnext", frames=4))
    image_filters = fusion_zoo.reference["tiny-resnext"].conv1.weight
    conv = model.backbone.conv1

    assert conv.in_channels == 4 * 3
    for t in range(4):
        torch.testing.assert_close(conv.weight[:, 3 * t : 3 * t + 3], image_filters / 4)


@pytest.mark.parametrize(("pooling", "widths"), [("avg", 1), ("max", 1), ("avg+max", 2)])
def test_late_fusion_pools_the_image_models_frame_features_over_time(fusion_zoo, pooling, widths):
    card = fusion_zoo.fusion_card("late-fusion", "tiny-image", pooling=pooling)
    model = fusion_zoo.load(card)
    clip = torch.randn(2, 3, 5, 32, 32)

    with torch.inference_mode():
        features = frame_features(fusion_zoo, "tiny-image", clip)
        pooled = model.forward_features(clip)

    expected = {
        "avg": features.mean(1),
        "max": features.amax(1),
        "avg+max": torch.cat([features.mean(1), features.amax(1)], dim=1),
    }[pooling]
    torch.testing.assert_close(pooled, expected, rtol=1e-5, atol=1e-6)
    assert model.head.fc.in_features == widths * features.shape[-1]


def test_late_fusion_takes_any_clip_length_and_ignores_frame_order(fusion_zoo):
    model = fusion_zoo.load(fusion_zoo.fusion_card("late-fusion", "tiny-vit"))
    clip = torch.randn(2, 3, 7, 32, 32)

    with torch.inference_mode():
        logits = model(clip)
        shuffled = model(clip[:, :, torch.randperm(7)])
        short = model(clip[:, :, :1])

    assert logits.shape == short.shape == (2, 3)
    torch.testing.assert_close(shuffled, logits, rtol=1e-5, atol=1e-6)


def test_late_fusion_concat_keeps_the_frames_in_order_and_their_number_fixed(fusion_zoo):
    card = fusion_zoo.fusion_card("late-fusion-concat", "tiny-resnext", frames=2)
    model = fusion_zoo.load(card)
    clip = torch.randn(2, 3, 2, 32, 32)

    with torch.inference_mode():
        features = frame_features(fusion_zoo, "tiny-resnext", clip)
        concatenated = model.forward_features(clip)
        swapped = model.forward_features(clip.flip(2))

    torch.testing.assert_close(concatenated, features.flatten(1), rtol=1e-5, atol=1e-5)
    assert model.head.fc.in_features == 2 * features.shape[-1]
    assert not torch.allclose(swapped, concatenated)
    with pytest.raises(ValueError, match=r"\(N, 3, 2, H, W\).*fixes the clip length at 2"):
        model(torch.randn(2, 3, 3, 32, 32))


@pytest.mark.parametrize("readout", ["last", "mean"])
def test_the_lstm_reads_the_frame_features_in_order(fusion_zoo, readout):
    card = fusion_zoo.fusion_card(
        "cnn-lstm", "tiny-vit", hidden_size=7, layers=2, bidirectional=True, readout=readout
    )
    model = fusion_zoo.load(card)
    clip = torch.randn(2, 3, 5, 32, 32)

    with torch.inference_mode():
        outputs, (hidden, _) = model.head.lstm(frame_features(fusion_zoo, "tiny-vit", clip))
        summary = model.forward_features(clip)
        reversed_summary = model.forward_features(clip.flip(2))
        longer = model(torch.randn(2, 3, 9, 32, 32))

    if readout == "last":
        # forward direction after the last frame, backward direction after the first one
        expected = torch.cat([outputs[:, -1, :7], outputs[:, 0, 7:]], dim=1)
        torch.testing.assert_close(torch.cat([hidden[-2], hidden[-1]], dim=1), expected)
    else:
        expected = outputs.mean(dim=1)
    torch.testing.assert_close(summary, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(reversed_summary, summary)
    assert model.head.fc.in_features == 2 * 7
    assert longer.shape == (2, 3)


def test_a_clip_the_network_cannot_take_is_refused_clearly(fusion_zoo):
    model = fusion_zoo.load(fusion_zoo.fusion_card("early-fusion", "tiny-image", frames=4))

    with pytest.raises(ValueError, match=r"over tiny-image expects clips of shape \(N, 3, 4, H, W"):
        model(torch.randn(1, 3, 8, 32, 32))
    with pytest.raises(ValueError, match=r"found \(1, 1, 4, 32, 32\)"):
        model(torch.randn(1, 1, 4, 32, 32))


@pytest.mark.parametrize(
    ("architecture", "backbone", "message"),
    [
        ("late-fusion", "tiny-video", r"'tiny-video' is not an image model.*found \['NCTHW'\]"),
        ("cnn-lstm", "tiny-image-bare", r"architecture 'tinyimage-bare'.* no pooled features"),
        (
            "early-fusion",
            "tiny-image-pooled-only",
            r"inflates the first convolution .* no FeatureHints.first_conv or .channels_field",
        ),
    ],
)
def test_a_backbone_lacking_what_the_fusion_needs_is_refused_by_name(
    fusion_zoo, architecture, backbone, message
):
    config = {"backbone": backbone, "num_classes": 3, "frames": 4}
    if architecture != "early-fusion":
        del config["frames"]

    with pytest.raises(zoo.BackboneError, match=message):
        zoo.build(architecture, config, registry=fusion_zoo.registry)


def test_late_fusion_needs_only_the_pooled_features(fusion_zoo):
    config = {"backbone": "tiny-image-pooled-only", "num_classes": 3}

    model = zoo.build("late-fusion", config, registry=fusion_zoo.registry).eval()

    assert model(torch.randn(1, 3, 2, 32, 32)).shape == (1, 3)


def test_an_unknown_backbone_suggests_the_names_that_exist(fusion_zoo):
    with pytest.raises(
        zoo.UnknownNameError, match="unknown model 'tiny-vti'; did you mean 'tiny-vit'"
    ):
        zoo.build(
            "late-fusion", {"backbone": "tiny-vti", "num_classes": 3}, registry=fusion_zoo.registry
        )
