"""What every interpretation method needs to know about its input: axes, targets, hints.

The methods take the model's own input (a tensor, or a tuple for models with several
inputs such as two-stream I3D) in a layout like the card's (``NCHW``, ``NCTHW``,
``NTCHW``). Their maps cover the first input's axes other than N and C, in layout order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

import torch
from torch import Tensor, nn

from zoo.architecture import FeatureHints
from zoo.errors import InterpretError
from zoo.loading import architecture_of

Inputs: TypeAlias = Tensor | tuple[Tensor, ...]
Scorer: TypeAlias = nn.Module | Callable[..., Tensor]  # a model, or any function of its inputs
Target: TypeAlias = int | Sequence[int] | Tensor | None
DEFAULT_LAYOUTS = {4: "NCHW", 5: "NCTHW"}


def as_tuple(inputs: Inputs) -> tuple[Tensor, ...]:
    return inputs if isinstance(inputs, tuple) else (inputs,)


def layout_of(tensor: Tensor, layout: str | None) -> str:
    """The given layout after checking it fits, or the usual one for the tensor's rank."""
    if layout is None:
        if tensor.ndim not in DEFAULT_LAYOUTS:
            raise InterpretError(
                f"expected an image batch (N, C, H, W) or a clip batch (N, C, T, H, W), "
                f"found shape {tuple(tensor.shape)}; pass layout= for other layouts"
            )
        return DEFAULT_LAYOUTS[tensor.ndim]
    if len(layout) != tensor.ndim or layout[0] != "N" or "C" not in layout:
        raise InterpretError(
            f"layout {layout!r} does not fit an input of shape {tuple(tensor.shape)}"
        )
    return layout


def map_axes(layout: str) -> list[int]:
    """Positions of the axes a map covers: every axis but the batch and the channels."""
    return [index for index, axis in enumerate(layout) if axis not in "NC"]


def map_shape(tensor: Tensor, layout: str) -> tuple[int, ...]:
    return tuple(tensor.shape[index] for index in map_axes(layout))


def hints_of(model: nn.Module) -> FeatureHints | None:
    architecture = architecture_of(model)
    return None if architecture is None else architecture.features


def describe(model: nn.Module) -> str:
    architecture = architecture_of(model)
    return f"architecture {architecture.name!r}" if architecture else type(model).__name__


def predicted_classes(model: Scorer, inputs: tuple[Tensor, ...]) -> Tensor:
    """The top-1 class of each sample: the target when the caller names none."""
    with torch.no_grad():
        return scores_of(model(*inputs)).argmax(dim=1)


def scores_of(output: Tensor) -> Tensor:
    """The model's class scores, checked: interpretation needs one score per class."""
    if not isinstance(output, Tensor) or output.ndim != 2:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise InterpretError(
            f"expected a classifier's scores (N, classes), found an output of {shape}; "
            "Grad-CAM, occlusion and attacks explain one class score"
        )
    return output


def resolve_target(model: Scorer, inputs: tuple[Tensor, ...], target: Target) -> Tensor:
    """One class index per sample, from an int, a sequence, a tensor or None (the top-1)."""
    batch = inputs[0].shape[0]
    if target is None:
        return predicted_classes(model, inputs)
    targets = torch.as_tensor(target, dtype=torch.long, device=inputs[0].device).reshape(-1)
    if targets.numel() == 1:
        return targets.expand(batch).clone()
    if targets.numel() != batch:
        raise InterpretError(
            f"expected one target or one per sample ({batch}), found {targets.numel()}"
        )
    return targets


def class_scores(model: Scorer, targets: Tensor) -> Callable[..., Tensor]:
    """The model's forward, checked once per call: scores (N, classes) that hold the targets.

    The methods hand this to captum instead of the bare model, so that a forecaster or a
    target past the last class is refused in words rather than by an indexing error.
    """

    def forward(*inputs: Tensor) -> Tensor:
        scores = scores_of(model(*inputs))
        outside = targets[(targets < 0) | (targets >= scores.shape[1])]
        if outside.numel():
            raise InterpretError(
                f"target class {int(outside[0])} is out of range: the model scores "
                f"{scores.shape[1]} classes (0 to {scores.shape[1] - 1})"
            )
        return scores

    return forward
