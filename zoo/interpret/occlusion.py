"""Occlusion sensitivity (Zeiler & Fergus 2014) for images and clips, through captum.

A window covering every channel slides over the input's space (and time); at each
position it is replaced by a baseline and the drop of the target class's score is
credited to the pixels (and frames) it covered. It needs no gradients and no hints, so it
works on any classifier the zoo can build, third-party ones included; with
:func:`output_change` as the score it works on models that do not classify (forecasters).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from zoo.errors import InterpretError
from zoo.interpret.tensors import (
    Inputs,
    Scorer,
    Target,
    as_tuple,
    class_scores,
    layout_of,
    map_axes,
    resolve_target,
)

Size = int | Sequence[int]


def occlusion(
    model: Scorer,
    input: Inputs,
    target: Target = None,
    window: Size = 16,
    stride: Size = 8,
    *,
    layout: str | None = None,
    baseline: float = 0.0,
    batch: int = 8,
    progress: bool = False,
) -> Tensor | tuple[Tensor, ...]:
    """The score drop of class ``target`` (default: the top-1) when each region is hidden.

    ``window`` and ``stride`` are in pixels and frames, one per map axis in ``layout``
    order, (T, H, W) for a clip, (H, W) for an image, or one int for every axis. The
    occluded region takes the value ``baseline``: 0 is the mean colour for an input
    normalised with the card's mean and std. ``batch`` occluded copies run per forward.
    Returns (N, H, W) or (N, T, H, W), one map per input for a model with several.
    """
    from captum.attr import Occlusion

    inputs = as_tuple(input)
    layouts = [layout_of(tensor, layout) for tensor in inputs]
    pairs = list(zip(inputs, layouts, strict=True))
    windows = tuple(_spec(tensor, lay, window, "window") for tensor, lay in pairs)
    strides = tuple(_spec(tensor, lay, stride, "stride") for tensor, lay in pairs)
    targets = resolve_target(model, inputs, target)
    attributions = Occlusion(class_scores(model, targets)).attribute(
        inputs,
        sliding_window_shapes=windows,
        strides=strides,
        baselines=(baseline,) * len(inputs),
        target=targets,
        perturbations_per_eval=batch,
        show_progress=progress,
    )
    maps = tuple(
        attribution.detach().mean(dim=lay.index("C"))
        for attribution, lay in zip(attributions, layouts, strict=True)
    )
    return maps if isinstance(input, tuple) else maps[0]


def _spec(tensor: Tensor, layout: str, size: Size, what: str) -> tuple[int, ...]:
    """captum's window (or stride) for one input: the given sizes, every channel at once."""
    axes = map_axes(layout)
    sizes = [size] * len(axes) if isinstance(size, int) else list(size)
    names = "".join(layout[index] for index in axes)
    if len(sizes) != len(axes) or min(sizes) < 1:
        raise InterpretError(
            f"expected the occlusion {what} as one positive size per axis {names} "
            f"(or one int for all), found {size!r}"
        )
    if what == "window":
        too_big = [
            f"{layout[index]}={value} > {tensor.shape[index]}"
            for index, value in zip(axes, sizes, strict=True)
            if value > tensor.shape[index]
        ]
        if too_big:
            raise InterpretError(
                f"the occlusion window is larger than the input {tuple(tensor.shape)} "
                f"({layout}): {', '.join(too_big)}"
            )
    per_axis = dict(zip(axes, sizes, strict=True))
    channels = tensor.shape[layout.index("C")]
    return tuple(per_axis.get(index, channels) for index in range(1, tensor.ndim))


def output_change(model: nn.Module, input: Inputs) -> Callable[..., Tensor]:
    """A one-class score for a model that does not classify: how little its output moves.

    The score of an input is minus the mean squared difference between the model's output
    on it and on ``input``, shape (N, 1), so occlusion of class 0 of this function maps
    where hiding the input changes the output (a forecast, say) the most. Occlusion runs
    several occluded copies per forward, stacked copy after copy; the reference output is
    repeated to match.
    """
    inputs = as_tuple(input)
    with torch.no_grad():
        reference = model(*inputs)
    if not isinstance(reference, Tensor):
        raise InterpretError(
            f"output_change needs a model that returns one tensor, found {type(reference).__name__}"
        )

    def score(*changed: Tensor) -> Tensor:
        output = model(*changed)
        copies = output.shape[0] // reference.shape[0]
        expected = reference.repeat(copies, *([1] * (reference.ndim - 1)))
        return -(output - expected).pow(2).flatten(1).mean(dim=1, keepdim=True)

    return score
