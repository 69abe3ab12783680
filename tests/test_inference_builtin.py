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


FAMILIES = {  # the backends page's names for the families, and their architectures
    "ResNeXt": "resnext",
    "ViT": "vit",
    "I3D": "i3d",
    "C3D": "c3d",
    "DETR": "detr",
    "ConvLSTM": "convlstm",
    "Faster R-CNN": "faster-rcnn-fpn",
}
BACKEND_NAMES = {"openvino": "OpenVINO", "onnxruntime": "onnxruntime", "torch": "PyTorch"}


def test_the_backends_pages_say_which_backend_each_built_in_family_runs_on_by_default():
    pages = ["docs/concepts/backends.md", "docs/tasks/precision.md"]
    by_backend: dict[str, list[str]] = {}
    for family, architecture in FAMILIES.items():
        hints = zoo.default_registry().architecture(architecture).inference
        name = BACKEND_NAMES[hints.backend]
        if hints.memory_format == "channels_last" and hints.backend == "torch":
            name += " in channels_last"
        by_backend.setdefault(name, []).append(family)

    parts = [f"{backend} for {_listed(families)}" for backend, families in by_backend.items()]
    for page in pages:
        text = " ".join((ROOT / page).read_text(encoding="utf-8").split())
        assert "The default float32 path: " + "; ".join(parts) + "." in text, page


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
