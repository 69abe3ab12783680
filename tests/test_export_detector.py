"""Faster R-CNN exported whole, NMS included, gives PyTorch's detections on a real image.

The image is the first frame of the I3D sample clip (a cricket shot, 224x224); the
graph is exported at that fixed size. No COCO weights are downloaded: the weights
are random but well-conditioned (unit-gain layers, a class head scaled so that a
handful of boxes clear the 0.05 score threshold with distinct scores), written to
a safetensors file and exported through ``weights=``, as a user's would be.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

import zoo
from zoo.cards import Card
from zoo.exporters.checks import compare, match_rows
from zoo.small import small_card

FRAME = Path(__file__).parent / "data" / "v_CricketShot_g04_c01_rgb.gif"
TOLERANCE = zoo.default_registry().architecture("faster-rcnn-fpn").export.tolerance


def first_frame() -> torch.Tensor:
    """(1, 3, 224, 224) RGB in [0, 1], what the detector's card asks for."""
    pixels = np.asarray(Image.open(FRAME).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(pixels).permute(2, 0, 1)[None].contiguous()


def at_frame_size(card: Card) -> Card:
    data = card.to_data()
    data["inputs"][0]["size"] = list(first_frame().shape[-2:])
    return Card.from_data(data)


def well_conditioned_weights(card: Card, class_scale: float, path: Path) -> Path:
    """Unit-gain random weights whose class head gives a few confident, distinct detections."""
    model = zoo.load(card, pretrained=False)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                module.weight.normal_(0, module.weight[0].numel() ** -0.5, generator=generator)
        model.roi_heads.box_predictor.cls_score.weight.mul_(class_scale)
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, path)
    return path


def detections_of_both(card: Card, weights: Path, folder: Path) -> tuple[list, list]:
    report = zoo.export(card, folder, weights=weights)
    assert report.exporter == "legacy" and report.passed
    image = first_frame()
    session = onnxruntime.InferenceSession(folder / "model.onnx")
    found = session.run(None, {"images": image.numpy()})
    with torch.inference_mode():
        expected = [t.numpy() for t in zoo.load(card, weights=weights)(image)[0].values()]
    return found, expected


def assert_the_same_detections(found: list, expected: list) -> None:
    assert len(expected[0]) > 0, "the image must give detections, or the check proves nothing"
    matched = match_rows(found, expected, [True, True, True])
    differences = [
        compare(name, ours, theirs, TOLERANCE)
        for name, ours, theirs in zip(("boxes", "scores", "labels"), matched, expected, strict=True)
    ]
    assert all(d.passed for d in differences), [d.describe() for d in differences]


def test_the_exported_detector_finds_what_pytorch_finds_on_a_real_image(tmp_path):
    card = at_frame_size(small_card("fpn-resnet50-coco"))
    weights = well_conditioned_weights(card, 2.0, tmp_path / "detector.safetensors")

    found, expected = detections_of_both(card, weights, tmp_path / "out")

    assert_the_same_detections(found, expected)


@pytest.mark.heavy
def test_the_full_size_detector_finds_what_pytorch_finds_on_a_real_image(tmp_path):
    card = at_frame_size(zoo.card("fpn-resnet50-coco"))
    weights = well_conditioned_weights(card, 1.0, tmp_path / "detector.safetensors")

    found, expected = detections_of_both(card, weights, tmp_path / "out")

    assert_the_same_detections(found, expected)
