"""Checkpoint converters: torchvision's and timm's ResNet/ResNeXt layouts to the zoo's.

torchvision and timm name these networks' tensors the same way, and the zoo's
module names follow them, so no key is renamed. The converters still earn their
place: they check the checkpoint against the config (blocks per stage,
cardinality, width, classes) and say in those terms what does not fit, instead of
a list of missing keys; they drop what a backbone config does not hold (``fc``,
stages past the last one used); and they add BatchNorm's ``num_batches_tracked``
counters that old torchvision checkpoints, saved before the counter existed, lack.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from zoo.errors import WeightsError
from zoo_plugins.resnext import STAGES, ResNeXtConfig

COUNTER = "num_batches_tracked"
FOREIGN_PREFIXES = {
    "module.": "a DataParallel wrapper (keys start with 'module.')",
    "backbone.": "a detection model (keys start with 'backbone.')",
    "resnet.": "the transformers layout (keys start with 'resnet.')",
    "model.": "a training wrapper (keys start with 'model.')",
}
STAGE_KEY = re.compile(r"^layer(\d)\.(\d+)\.")


def from_torchvision(state: dict[str, Tensor], config: ResNeXtConfig) -> dict[str, Tensor]:
    """torchvision's ``models.resnet50``/``resnext50_32x4d``/... state dict, zoo layout out."""
    return _to_zoo(state, config, "torchvision")


def from_timm(state: dict[str, Tensor], config: ResNeXtConfig) -> dict[str, Tensor]:
    """timm's ``resnet50``/``resnext50_32x4d``/... state dict (full or ``features_only``)."""
    return _to_zoo(state, config, "timm")


def without_batch_counters(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state without BatchNorm's step counters, for a model built on FrozenBatchNorm2d."""
    return {key: value for key, value in state.items() if not key.endswith(COUNTER)}


def _to_zoo(state: dict[str, Tensor], config: ResNeXtConfig, layout: str) -> dict[str, Tensor]:
    _reject_foreign_layout(state, layout)
    _check_architecture(state, config, layout)
    kept = {key: value for key, value in state.items() if _belongs(key, config)}
    return _with_batch_counters(kept)


def _reject_foreign_layout(state: dict[str, Tensor], layout: str) -> None:
    if "conv1.weight" in state:
        return
    for prefix, meaning in FOREIGN_PREFIXES.items():
        if any(key.startswith(prefix) for key in state):
            raise WeightsError(
                f"not a {layout} ResNet/ResNeXt state dict: no 'conv1.weight' key; "
                f"it looks like {meaning}"
            )
    raise WeightsError(
        f"not a {layout} ResNet/ResNeXt state dict: no 'conv1.weight' key "
        f"(first keys: {sorted(state)[:5]})"
    )


def _check_architecture(state: dict[str, Tensor], config: ResNeXtConfig, layout: str) -> None:
    """Compare blocks per stage, grouped-conv shape and classes with the config, in its terms."""
    problems = []
    for stage in range(1, config.last_stage + 1):
        found = _blocks_in_stage(state, stage)
        expected = config.layers[stage - 1]
        if found != expected:
            problems.append(f"layer{stage} has {found} blocks, config layers expects {expected}")
    grouped = state.get("layer1.0.conv2.weight")
    if grouped is not None:
        width = config.width_per_group * config.groups
        expected_shape = (width, width // config.groups, 3, 3)
        if tuple(grouped.shape) != expected_shape:
            problems.append(
                f"layer1.0.conv2.weight has shape {tuple(grouped.shape)}, config "
                f"(groups={config.groups}, width_per_group={config.width_per_group}) "
                f"expects {expected_shape}"
            )
    classifier = state.get("fc.weight")
    if config.has_classifier and classifier is not None and len(classifier) != config.num_classes:
        found = len(classifier)
        problems.append(f"fc has {found} classes, config num_classes is {config.num_classes}")
    if problems:
        raise WeightsError(f"{layout} checkpoint does not fit {config!r}: " + "; ".join(problems))


def _blocks_in_stage(state: dict[str, Tensor], stage: int) -> int:
    blocks = {
        int(match.group(2))
        for key in state
        if (match := STAGE_KEY.match(key)) and int(match.group(1)) == stage
    }
    return len(blocks)


def _belongs(key: str, config: ResNeXtConfig) -> bool:
    """Whether the zoo model built from ``config`` holds ``key``'s module at all."""
    if key.startswith("fc."):
        return config.has_classifier
    match = STAGE_KEY.match(key)
    if match and int(match.group(1)) <= STAGES:
        return int(match.group(1)) <= config.last_stage
    return True


def _with_batch_counters(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Add a zero ``num_batches_tracked`` beside every BatchNorm that lacks one."""
    counters = {
        key.removesuffix("running_mean") + COUNTER: torch.tensor(0, dtype=torch.long)
        for key in state
        if key.endswith("running_mean")
    }
    return {**counters, **state}
