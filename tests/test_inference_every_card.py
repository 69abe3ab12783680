"""Every registered card, at its architecture's test size, through the predictor.

What the conformance kit will ask of any plugin: a synthetic input of the card's kind
(frames for a video model, an image otherwise, a little larger than the model's size so
that resizing and cropping run) goes in, a result of the card's task comes out.
"""

from __future__ import annotations

import numpy as np
import pytest

import zoo
from zoo.cards import Card
from zoo.inference import Classification, Detections, Features, Forecast
from zoo.registry import Registry
from zoo.small import small_card

RESULTS = {
    "image-classification": Classification,
    "video-classification": Classification,
    "object-detection": Detections,
    "video-forecasting": Forecast,
    "feature-extraction": Features,
}
#: Optical flow (TV-L1 on 256-pixel frames) takes seconds per frame pair.
FLOW = {"i3d-kinetics400-flow", "i3d-kinetics400-two-stream"}


def synthetic_input(card: Card) -> np.ndarray:
    spec = card.inputs[0]
    height, width = spec.size
    shape = (height + 8, width + 16, 3)
    if "T" in spec.layout:
        protocol = spec.sampling_protocol
        frames = (protocol.min_frames or spec.frames) + 1  # one more feeds a flow input
        shape = (frames, *shape)
    return np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize(
    "card",
    [
        pytest.param(card, marks=[pytest.mark.heavy] if card.name in FLOW else [], id=card.name)
        for card in Registry.from_entry_points().cards()
    ],
)
def test_every_built_in_model_at_its_test_size_runs_through_the_predictor(card):
    small = small_card(card)
    predictor = zoo.predictor(small, pretrained=False, backend="torch")

    result = predictor(synthetic_input(small))

    assert isinstance(result, RESULTS[card.task])
    assert result.model == small.name and result.task == card.task
