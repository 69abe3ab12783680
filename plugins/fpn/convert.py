"""Checkpoint converters: torchvision's Faster R-CNN and BackboneWithFPN layouts to the zoo's.

The zoo's module names are torchvision's, so no key is renamed. The converters
check what a key list cannot say clearly: that the file is a detector (or a
backbone) at all, that its body has the config's depth and cardinality, that its
pyramid width and class count match. They drop BatchNorm's ``num_batches_tracked``
counters, which a model trained with plain BatchNorm carries and the frozen
BatchNorm of the zoo's body has no use for. Anything else that does not fit is
reported by the core as missing, unexpected or mis-shaped keys.
"""

from __future__ import annotations

from torch import Tensor

from zoo.errors import WeightsError
from zoo_plugins.fpn import FasterRCNNConfig, ResNetFPNConfig
from zoo_plugins.resnext.convert import from_torchvision as body_from_torchvision
from zoo_plugins.resnext.convert import without_batch_counters

BACKBONE = "backbone."
BODY = "body."
FPN = "fpn."
LAYOUT_HINTS = {
    "module.": "a DataParallel wrapper (keys start with 'module.')",
    "model.": "a training wrapper (keys start with 'model.')",
    "conv1.weight": "a plain ResNet classifier (keys start with 'conv1.')",
    "backbone.0.body.": "DETR's layout (keys start with 'backbone.0.body.')",
    "body.": "a bare torchvision BackboneWithFPN: use the resnet-fpn architecture",
    "backbone.body.": (
        "a torchvision detector (keys start with 'backbone.body.'); for its pyramid alone "
        "use the resnet-fpn architecture with layout 'torchvision-detector'"
    ),
}


def from_torchvision(state: dict[str, Tensor], config: FasterRCNNConfig) -> dict[str, Tensor]:
    """torchvision's ``fasterrcnn_resnet50_fpn`` state dict (or a checkpoint of it), zoo layout."""
    _require_key(state, "rpn.head.cls_logits.weight", "torchvision Faster R-CNN")
    backbone = _strip(state, BACKBONE)
    rest = {key: value for key, value in state.items() if not key.startswith(BACKBONE)}
    classes = rest.get("roi_heads.box_predictor.cls_score.weight")
    if classes is not None and classes.shape[0] != config.num_classes:
        raise WeightsError(
            f"torchvision Faster R-CNN checkpoint has {classes.shape[0]} classes "
            f"(roi_heads.box_predictor.cls_score), config num_classes is {config.num_classes}"
        )
    converted = backbone_from_torchvision(backbone, config.backbone)
    return {**{BACKBONE + key: value for key, value in converted.items()}, **rest}


def backbone_from_torchvision(
    state: dict[str, Tensor], config: ResNetFPNConfig
) -> dict[str, Tensor]:
    """torchvision's ``BackboneWithFPN`` (``resnet_fpn_backbone``) state dict, zoo layout."""
    _require_key(state, "body.conv1.weight", "torchvision BackboneWithFPN")
    pyramid = state.get("fpn.layer_blocks.0.0.weight")
    if pyramid is not None and pyramid.shape[0] != config.out_channels:
        raise WeightsError(
            f"torchvision BackboneWithFPN checkpoint has {pyramid.shape[0]} pyramid channels "
            f"(fpn.layer_blocks.0.0), config out_channels is {config.out_channels}"
        )
    body = without_batch_counters(body_from_torchvision(_strip(state, BODY), config.body()))
    others = {key: value for key, value in state.items() if not key.startswith(BODY)}
    return {**{BODY + key: value for key, value in body.items()}, **others}


def backbone_from_detector(state: dict[str, Tensor], config: ResNetFPNConfig) -> dict[str, Tensor]:
    """The pyramid of a torchvision detector checkpoint: its ``backbone.*`` tensors only."""
    _require_key(state, "backbone.body.conv1.weight", "torchvision detector")
    return backbone_from_torchvision(_strip(state, BACKBONE), config)


def _strip(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {
        key.removeprefix(prefix): value for key, value in state.items() if key.startswith(prefix)
    }


def _require_key(state: dict[str, Tensor], key: str, expected: str) -> None:
    """Fail early, saying what the file looks like, when it is not the layout named."""
    if key in state:
        return
    for start, meaning in LAYOUT_HINTS.items():
        if any(name.startswith(start) for name in state):
            raise WeightsError(f"not a {expected} state dict (no {key!r}); it looks like {meaning}")
    raise WeightsError(
        f"not a {expected} state dict: no {key!r} key (first keys: {sorted(state)[:5]})"
    )
