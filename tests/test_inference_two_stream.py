"""Inputs computed from the frames (two-stream I3D's optical flow), from the card and hints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from media import SAMPLE_CLIP, numbered_frames, sample_frames

import zoo
from zoo.errors import InputError, ZooError
from zoo.inference.decode import as_media
from zoo.inference.preprocess import Preprocessor

DIFFERENCE = zoo.InferenceHints(
    derived_inputs={"flow-xy": zoo.DerivedInput(function="inference_cards:frame_difference", lag=1)}
)
TWO_STREAM = "i3d-kinetics400-two-stream"


def test_a_derived_input_is_computed_from_the_same_frames_the_other_input_sees():
    prepared = Preprocessor(zoo.card(TWO_STREAM), DIFFERENCE)(
        as_media(numbered_frames(12, 224, 224)), normalize=False
    )

    rgb, flow = prepared.inputs["rgb"], prepared.inputs["flow"]
    assert rgb.shape == (1, 3, 11, 224, 224) and flow.shape == (1, 2, 11, 224, 224)
    # rgb shows frames 1..11; field t is the change from frame t to t + 1 (2 / 255 each)
    assert np.rint(rgb[0, 0, :, 0, 0].numpy() * 255 / 2).astype(int).tolist() == list(range(1, 12))
    torch.testing.assert_close(flow, torch.full_like(flow, (2 / 255 + 1) / 2))
    assert prepared.note == "whole video: one clip of 11 frames at 25 fps"


def test_a_derived_input_needs_its_lag_in_extra_frames():
    preprocess = Preprocessor(zoo.card(TWO_STREAM), DIFFERENCE)

    with pytest.raises(InputError, match=r"has 9 frames at 25 fps; .* needs at least 10"):
        preprocess(as_media(numbered_frames(9, 224, 224)))


def test_a_flow_input_without_a_flow_function_is_refused_when_the_predictor_is_built():
    with pytest.raises(ZooError, match="declares no function computing flow-xy"):
        Preprocessor(zoo.card(TWO_STREAM), zoo.InferenceHints())


@pytest.mark.heavy
def test_two_stream_i3d_gets_tvl1_flow_of_the_resized_frames_cropped_as_the_card_says():
    from zoo_plugins.i3d.flow import tvl1_flow

    frames = sample_frames()[:10]
    predictor = zoo.predictor(TWO_STREAM, pretrained=False)

    prepared = predictor.preprocess(frames)  # TV-L1 is slow: compute it once
    result = predictor.postprocess(predictor.forward(prepared.inputs), prepared)

    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    resized = F.interpolate(pixels, size=(256, 256), mode="bilinear", antialias=True)
    uint8 = resized.mul(255).round().byte().permute(0, 2, 3, 1).numpy()  # TV-L1 reads uint8
    flow = torch.from_numpy(tvl1_flow(uint8))[..., 16:240, 16:240]  # (2, 9, 224, 224)
    rgb = resized[1:, :, 16:240, 16:240] * 2 - 1
    torch.testing.assert_close(prepared.inputs["flow"][0], flow, atol=1e-6, rtol=0)
    torch.testing.assert_close(prepared.inputs["rgb"][0], rgb.transpose(0, 1), atol=1e-5, rtol=0)
    assert result.task == "video-classification" and len(result.labels) == 5


@pytest.mark.heavy
def test_the_whole_sample_clip_runs_through_i3d():
    result = zoo.predictor("i3d-kinetics", pretrained=False)(SAMPLE_CLIP)

    assert result.clips == 1 and result.note == "whole video: one clip of 79 frames at 25 fps"
