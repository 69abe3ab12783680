"""Full-size built-in models through the predictor on a real picture (random weights)."""

from __future__ import annotations

import pytest
from conftest import ROOT
from media import sample_frames

import zoo
from zoo.inference import Classification, Detections

IMAGE_MODELS = [
    "resnext50_32x4d.tv_in1k",
    "vit-b16-in1k",
    "detr-resnet50-coco",
    "fpn-resnet50-coco",
]


@pytest.mark.heavy
@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_a_real_picture_runs_through_a_full_size_built_in_model(name):
    picture = sample_frames()[40, 10:190]  # 180 x 224, the batsman and the umpire
    predictor = zoo.predictor(name, pretrained=False)

    result = predictor(picture, threshold=0.0)

    card = zoo.card(name)
    assert result.model == card.name and result.input == "<array 180x224x3>"
    if card.task == "object-detection":
        assert isinstance(result, Detections) and result.image_size == (180, 224)
        assert all(0 <= x1 <= x2 <= 224 and 0 <= y1 <= y2 <= 180 for x1, y1, x2, y2 in result.boxes)
        assert result.scores == sorted(result.scores, reverse=True)
    else:
        assert isinstance(result, Classification) and len(result.labels) == 5
        assert result.labels[0].label == card.label_names()[result.labels[0].index]


PAGE_DEFAULTS = {  # the backends page's names for the families, and their architectures
    "ResNeXt": "resnext",
    "ViT": "vit",
    "I3D": "i3d",
    "C3D": "c3d",
    "ConvLSTM": "convlstm",
    "DETR": "detr",
}


def test_the_backends_page_says_which_backend_each_built_in_family_runs_on_by_default():
    readme = " ".join(
        (ROOT / "docs" / "concepts" / "backends.md").read_text(encoding="utf-8").split()
    )
    families = ", ".join(list(PAGE_DEFAULTS)[:-1]) + f" and {list(PAGE_DEFAULTS)[-1]}"
    detector = zoo.default_registry().architecture("faster-rcnn-fpn").inference

    assert f"onnxruntime for {families}; PyTorch in channels_last for Faster R-CNN" in readme
    for architecture in PAGE_DEFAULTS.values():
        assert zoo.default_registry().architecture(architecture).inference.backend == "onnxruntime"
    assert (detector.backend, detector.memory_format) == ("torch", "channels_last")
