"""Every shipped label set against an independent copy, entry by entry.

A label set shifted by one keeps its length and every test that counts classes green,
while the model names every prediction wrongly. torchvision's weights metadata is an
independent copy available offline: ImageNet-1k (``ResNet50_Weights``), Kinetics-400
(``R3D_18_Weights``) and the 91 COCO category slots (``FasterRCNN_ResNet50_FPN_Weights``).
The checkpoints that use them share torchvision's order: timm's and transformers'
ImageNet heads, the I3D authors' Kinetics-400 label map (alphabetical, as torchvision's),
and DETR and torchvision's detectors, whose class index is the COCO category id.
"""

from __future__ import annotations

import pytest
from torchvision.models import ResNet50_Weights
from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights
from torchvision.models.video import R3D_18_Weights

import zoo
from zoo.labels import load_label_set

TORCHVISION = {
    "imagenet1k": ResNet50_Weights.IMAGENET1K_V1,
    "kinetics400": R3D_18_Weights.KINETICS400_V1,
    "coco91": FasterRCNN_ResNet50_FPN_Weights.COCO_V1,
}


@pytest.mark.parametrize("name", TORCHVISION)
def test_a_label_set_equals_torchvisions_copy_entry_by_entry(name):
    ours = load_label_set(name)
    theirs = TORCHVISION[name].meta["categories"]

    differences = [(i, a, b) for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
    assert differences == []


def test_the_coco_labels_are_indexed_by_category_id_as_detr_and_the_detectors_answer():
    """COCO's own annotation ids (instances_val2017.json), where 12, 26, 29, ... are unused."""
    labels = load_label_set("coco91")
    ids = {1: "person", 3: "car", 13: "stop sign", 18: "dog", 44: "bottle", 90: "toothbrush"}

    assert {index: labels[index] for index in ids} == ids
    assert [labels[index] for index in (0, 12, 26)] == ["__background__", "N/A", "N/A"]
    detr = zoo.card("detr-resnet50-coco")
    assert detr.labels == "coco91" and detr.outputs[0].shape[-1] == len(labels) + 1  # no-object


def test_sports1m_pins_first_middle_and_last_class_of_the_c3d_ports_label_file():
    """DavideA/c3d-pytorch's labels.txt, which the C3D card's weights come with."""
    labels = load_label_set("sports1m")

    assert len(labels) == zoo.card("c3d-sports1m").outputs[0].shape[-1] == 487
    assert (labels[0], labels[243], labels[486]) == (
        "boomerang",
        "weight pulling",
        "model aircraft",
    )
    assert labels[100:103] == ["yağlı güreş", "amateur wrestling", "greco-roman wrestling"]


def test_kinetics600_is_the_authors_alphabetical_map_with_600_distinct_classes():
    """No offline copy independent of the I3D authors' label_map_600.txt is installed: this
    holds its order (alphabetical, as the map is) and size, so a shifted line shows."""
    labels = load_label_set("kinetics600")

    assert len(set(labels)) == len(labels) == 600
    assert labels == sorted(labels)
    assert (labels[0], labels[-1]) == ("abseiling", "zumba")
