"""Which features a row gets: ``pooled``, ``logits`` or any module's output, pooled.

``pooled`` is what the classifier reads (the plugin's ``FeatureHints.pooled``, as
``zoo embed`` gives it); ``logits`` the model's own output; a module path (as
``zoo explain --layer``: ``Mixed_4f``, ``layer4``, ``blocks.-1``) that module's output,
pooled by ``avg`` or ``max`` over its spatial (and remaining temporal) axes, or kept
whole (``none``, flattened). A module's output laid out ``(N, C, [T,] H, W)`` is pooled
over every axis after C; a token sequence ``(N, L, C)`` over its tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from zoo.architecture import Architecture, submodule
from zoo.cards import Card
from zoo.errors import ZooError

Pool = Literal["avg", "max", "none"]
POOLS = ("avg", "max", "none")
#: Rows in, float32 features ``(N, D)`` out.
Extractor = Callable[[dict[str, Tensor]], np.ndarray]


def check_layer(card: Card, architecture: Architecture, layer: str, pool: str) -> None:
    """Refuse, before any work, a layer the model does not have or cannot give."""
    if pool not in POOLS:
        raise ZooError(f"unknown pool {pool!r}; expected one of {', '.join(POOLS)}")
    if layer == "pooled":
        if architecture.features.pooled is None:
            raise ZooError(
                f"{card.name}: architecture {architecture.name!r} declares no pooled features "
                "(FeatureHints.pooled); choose --layer logits or a module path"
            )
        return
    if layer == "logits":
        if card.task == "object-detection":
            raise ZooError(
                f"{card.name} is a detector, whose outputs are boxes per image, not one row "
                "per input; choose --layer pooled or a module path"
            )
        return
    from zoo.loading import empty_model

    try:
        submodule(empty_model(architecture, card.config), layer)
    except ValueError as error:
        raise ZooError(f"--layer {layer}: {error}") from None


def needs_module(layer: str) -> bool:
    """Whether the layer is read from the PyTorch module (anything but the logits)."""
    return layer != "logits"


def extractor(predictor: Any, layer: str, pool: str) -> Extractor:
    """The function computing one batch's features with ``predictor``'s model."""
    if layer == "logits":
        return lambda inputs: _logits(predictor, inputs)
    backend = predictor.torch_backend()
    if layer == "pooled":
        pooled = predictor.architecture.features.resolve_pooled()
        return lambda inputs: _as_rows(backend.call(pooled, inputs))
    module = submodule(backend.module, layer)
    return lambda inputs: _pooled(_module_output(backend, module, inputs), pool)


def _logits(predictor: Any, inputs: dict[str, Tensor]) -> np.ndarray:
    from zoo.inference import postprocess

    raw = predictor.forward(inputs)
    rows = postprocess.standardize(raw, inputs, predictor.card, predictor.architecture)
    if isinstance(rows, list):
        raise ZooError(
            f"{predictor.card.name} ({predictor.card.task}) gives boxes per image, not a row "
            "of logits; use --layer pooled or a module path for its features"
        )
    if isinstance(rows, dict):
        rows = next(iter(rows.values()))
    return _as_rows(rows)


def _module_output(backend: Any, module: torch.nn.Module, inputs: dict[str, Tensor]) -> Tensor:
    captured: list[Tensor] = []

    def keep(_: Any, __: Any, output: Any) -> None:
        captured.append(output[0] if isinstance(output, tuple | list) else output)

    handle = module.register_forward_hook(keep)
    try:
        backend.call(lambda model, *tensors: model(*tensors), inputs)
    finally:
        handle.remove()
    return captured[0]


def _pooled(output: Tensor, pool: str) -> np.ndarray:
    output = output.float()
    if pool == "none" or output.dim() == 2:
        return _as_rows(output.flatten(1))
    axes = (1,) if output.dim() == 3 else tuple(range(2, output.dim()))
    pooled = output.mean(dim=axes) if pool == "avg" else output.amax(dim=axes)
    return _as_rows(pooled)


def _as_rows(features: Tensor) -> np.ndarray:
    return features.detach().float().cpu().reshape(len(features), -1).numpy()
