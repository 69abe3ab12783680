"""Fusion models through the predictor: each frame is prepared as the backbone's card says.

A fusion card repeats its backbone card's preprocessing, so the predictor must turn a
still video into clips whose every frame is exactly what the image model's predictor
makes of that image; and a card that takes the whole video gets all of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fusion_zoo import FusionZoo
from test_weights import hub  # noqa: F401  (fixture)

from zoo.inference import Classification, predictor
from zoo.inference.decode import read_media
from zoo.inference.sampling import resample

SAMPLE_CLIP = Path(__file__).parent / "data" / "v_CricketShot_g04_c01_rgb.gif"


def test_a_still_video_reaches_the_fusion_model_as_its_frame_reaches_the_image_model(
    hub,  # noqa: F811
):
    fusion_zoo = FusionZoo(hub)
    card = fusion_zoo.fusion_card("early-fusion", "tiny-vit", frames=4)
    fusion = predictor(card, registry=fusion_zoo.registry, backend="torch", device="cpu")
    image = predictor("tiny-vit", registry=fusion_zoo.registry, backend="torch", device="cpu")
    frame = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)

    clip = fusion.preprocess(np.stack([frame] * 6)).tensor
    picture = image.preprocess(frame).tensor
    result = fusion(np.stack([frame] * 6))

    assert clip.shape[1:] == (3, 4, 32, 32)
    for t in range(4):
        torch.testing.assert_close(clip[:, :, t], picture.expand(clip.shape[0], -1, -1, -1))
    with torch.inference_mode():
        expected = fusion.model(clip).softmax(dim=1).mean(dim=0)
    assert isinstance(result, Classification) and result.task == "video-classification"
    assert result.top.index == int(expected.argmax())


def test_a_card_that_takes_the_whole_video_gets_every_frame_at_its_rate(hub):  # noqa: F811
    fusion_zoo = FusionZoo(hub)
    video = {"fps": 5, "temporal": {"protocol": "whole", "min_frames": 1}}
    card = fusion_zoo.fusion_card("cnn-lstm", "tiny-resnext", video=video, hidden_size=4)
    fusion = predictor(card, registry=fusion_zoo.registry, backend="torch", device="cpu")

    prepared = fusion.preprocess(SAMPLE_CLIP)
    result = fusion(SAMPLE_CLIP)

    at_5_fps = len(resample(read_media(SAMPLE_CLIP), 5))  # the clip's 79 frames at 25 fps
    assert at_5_fps < 79 and prepared.tensor.shape == (1, 3, at_5_fps, 32, 32)
    assert result.clips == 1 and len(result.labels) == 3


def test_the_default_onnxruntime_backend_exports_the_fusion_model_from_its_registry(
    hub,  # noqa: F811
):
    fusion_zoo = FusionZoo(hub)
    card = fusion_zoo.fusion_card("late-fusion", "tiny-image")
    clip = np.random.default_rng(1).integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)

    default = predictor(card, registry=fusion_zoo.registry, device="cpu")
    eager = predictor(card, registry=fusion_zoo.registry, backend="torch", device="cpu")

    assert default.backend.describe()["backend"] == "onnxruntime"
    ours, theirs = default(clip), eager(clip)
    assert [label.index for label in ours.labels] == [label.index for label in theirs.labels]
    for mine, reference in zip(ours.labels, theirs.labels, strict=True):
        assert mine.score == pytest.approx(reference.score, rel=1e-4)
