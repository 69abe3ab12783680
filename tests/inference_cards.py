"""Small versions of the built-in cards: the same architectures, pre-processing rules and
code paths, at sizes that run in well under a second on a CPU."""

from __future__ import annotations

from typing import Any

import numpy as np

import zoo
from zoo.cards import Card

SMALL_CONFIGS: dict[str, dict[str, Any]] = {
    "resnext50_32x4d.tv_in1k": {"layers": [1, 1, 1, 1], "groups": 2, "width_per_group": 8},
    "vit-b16-in1k": {"image_size": 32, "patch_size": 8, "width": 32, "depth": 1, "heads": 2},
    "detr-resnet50-coco": {
        "backbone_layers": [1, 1, 1, 1],
        "d_model": 32,
        "num_heads": 2,
        "ffn_dim": 64,
        "encoder_layers": 1,
        "decoder_layers": 1,
        "num_queries": 10,
    },
    "fpn-resnet50-coco": {
        "backbone": {"layers": [1, 1, 1, 1], "out_channels": 32},
        "min_size": 128,
        "max_size": 213,
        "rpn_pre_nms_top_n": 50,
        "rpn_post_nms_top_n": 50,
        "representation_size": 64,
        "box_score_thresh": 0.0,  # random weights score every class near 1 / 91
        "box_detections_per_img": 20,
    },
    "c3d-sports1m": {"channels": [4, 4, 4, 4, 4, 4, 4, 4], "hidden": 16, "num_classes": 487},
    "i3d-kinetics400-rgb": {"frames": 9, "size": [193, 193]},
}
SMALL_INPUTS: dict[str, dict[str, Any]] = {
    "vit-b16-in1k": {"size": [32, 32], "resize": 36},
    "detr-resnet50-coco": {"resize": 160, "max_size": 266},
    "i3d-kinetics400-rgb": {"size": [193, 193], "resize": 220},
}


def small_card(name: str, **input_changes: Any) -> Card:
    """Built-in card ``name`` with a small config (and smaller input sizes where fixed)."""
    data = zoo.card(name).to_data()
    data["config"] = {**data.get("config", {}), **SMALL_CONFIGS[name]}
    data["inputs"][0].update({**SMALL_INPUTS.get(name, {}), **input_changes})
    data["name"] = f"small-{data['name']}"
    data["aliases"] = []
    return Card.from_data(data)


def frame_difference(frames: np.ndarray) -> np.ndarray:
    """A cheap stand-in for optical flow: red and green differences of consecutive frames.

    uint8 ``(T, H, W, 3)`` -> float32 ``(2, T - 1, H, W)`` in [-1, 1], the contract of
    ``DerivedInput`` functions (named by import string in tests).
    """
    change = np.diff(frames.astype(np.float32), axis=0)[..., :2] / 255
    return np.ascontiguousarray(change.transpose(3, 0, 1, 2))
