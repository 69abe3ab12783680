"""Grad-CAM (Selvaraju et al. 2017) for image CNNs, video CNNs and vision transformers.

The method itself is captum's ``LayerGradCam``: captum (BSD-3, from the PyTorch team)
treats any number of trailing axes alike, so a 3-D CNN's layer of shape (N, C, T, H, W)
gives one map per time step with no special code, and the same library serves occlusion
and the FGSM/PGD attacks. pytorch-grad-cam's advantage, its reshape helpers for
transformers, is one small module here (:class:`TokenGrid`), so one dependency does it all.

What stays here is what captum leaves to the caller: choosing the layer (the plugin's
:class:`~zoo.FeatureHints`), turning a token sequence into its patch grid, and upsampling
the coarse map onto the input's (time and) space axes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.architecture import submodule
from zoo.errors import InterpretError
from zoo.interpret.tensors import (
    Inputs,
    Target,
    as_tuple,
    class_scores,
    describe,
    hints_of,
    layout_of,
    map_shape,
    resolve_target,
)

UPSAMPLING = {1: "linear", 2: "bilinear", 3: "trilinear"}


def grad_cam(
    model: nn.Module,
    input: Inputs,
    target: Target = None,
    layer: str | nn.Module | None = None,
    *,
    tokens: int | None = None,
    layout: str | None = None,
    positive: bool = True,
) -> Tensor:
    """Grad-CAM of class ``target`` (default: the top-1), as a map over the input's axes.

    ``layer`` is a module or a dotted path (``"layer4"``, ``"blocks.-1.norm1"``); by
    default the plugin's ``cam_layer``. ``tokens`` says the layer emits a token sequence
    (N, tokens + h*w, C) whose ``tokens`` leading entries are not spatial (default: the
    plugin's ``cam_tokens``). Returns (N, H, W) for images and (N, T, H, W) for clips (axes
    in ``layout`` order, channels dropped), on the first input's axes when the model takes
    several. ``positive`` keeps only evidence for the class, as the paper does; a map that
    is then zero everywhere (common with random weights) means the layer holds none, and
    ``positive=False`` shows the signed map.
    """
    from captum.attr import LayerGradCam

    inputs = as_tuple(input)
    size = map_shape(inputs[0], layout_of(inputs[0], layout))
    module, tokens, name = target_layer(model, layer, tokens)
    targets = resolve_target(model, inputs, target)
    with _as_grid(module, tokens) as grid_layer:
        cam = LayerGradCam(class_scores(model, targets), grid_layer).attribute(
            inputs, target=targets, relu_attributions=positive
        )
    return _upsample(cam.detach(), size, name)


class TokenGrid(nn.Module):
    """(N, k + h*w, C) tokens -> (N, C, h, w): the patch tokens laid out as the image was cut.

    Patch embeddings flatten the grid row by row, so the reshape is exact for any ViT. An
    output that already has its spatial axes (a convolution's, when the caller names one
    inside a transformer) passes through unchanged.
    """

    def __init__(self, leading: int) -> None:
        super().__init__()
        self.leading = leading

    def forward(self, sequence: Tensor) -> Tensor:
        if sequence.ndim != 3:
            return sequence
        patches = sequence[:, self.leading :]
        side = round(patches.shape[1] ** 0.5)
        if side * side != patches.shape[1]:
            raise InterpretError(
                f"expected tokens (N, {self.leading} + h*w, C) on a square patch grid, found "
                f"{tuple(sequence.shape)}"
            )
        return patches.transpose(1, 2).unflatten(2, (side, side))


@contextmanager
def _as_grid(module: nn.Module, tokens: int | None) -> Iterator[nn.Module]:
    """The module captum should watch: ``module`` itself, or a grid view of its tokens.

    For a token layer, a forward hook routes the patch tokens through :class:`TokenGrid`
    and back, so the model's output depends on the grid's output and captum's gradients
    with respect to it are the gradients with respect to the patch tokens.
    """
    if tokens is None:
        yield module
        return
    grid = TokenGrid(tokens)

    def through_grid(_module: nn.Module, _args: object, output: Tensor) -> Tensor:
        laid_out = grid(output)
        if output.ndim != 3:
            return laid_out
        return torch.cat([output[:, :tokens], laid_out.flatten(2).transpose(1, 2)], dim=1)

    handle = module.register_forward_hook(through_grid)
    try:
        yield grid
    finally:
        handle.remove()


def target_layer(
    model: nn.Module, layer: str | nn.Module | None, tokens: int | None = None
) -> tuple[nn.Module, int | None, str]:
    """The module Grad-CAM watches, its leading non-spatial tokens, and its name.

    ``layer`` None means the plugin's ``cam_layer``; a named layer in a model whose plugin
    declares ``cam_tokens`` is read as a token sequence too (every block emits one).
    """
    if isinstance(layer, nn.Module):
        return layer, tokens, type(layer).__name__
    hints = hints_of(model)
    path = layer if layer is not None else hints.cam_layer if hints is not None else None
    if path is None:
        raise InterpretError(
            f"{describe(model)} declares no Grad-CAM layer (FeatureHints.cam_layer); "
            "name one with layer= (`--layer` on the command line), or use occlusion, "
            "which needs none"
        )
    if tokens is None and hints is not None:
        tokens = hints.cam_tokens
    try:
        return submodule(model, path), tokens, path
    except ValueError as error:
        raise InterpretError(str(error)) from None


def _upsample(cam: Tensor, size: tuple[int, ...], layer: object) -> Tensor:
    """(N, 1, *coarse) -> (N, *size): the layer's map stretched over the input's axes."""
    coarse = tuple(cam.shape[2:])
    if cam.ndim != len(size) + 2 or len(size) not in UPSAMPLING:
        raise InterpretError(
            f"Grad-CAM needs a layer output with the input's {len(size)} map axes, "
            f"(N, C, {', '.join('?' * len(size))}); {layer} gives (N, 1, "
            f"{', '.join(map(str, coarse))}) after summing channels: pick a convolutional "
            "layer (or name tokens= for a token sequence)"
        )
    return F.interpolate(cam, size=size, mode=UPSAMPLING[len(size)], align_corners=False)[:, 0]
