"""From a card (or an architecture and config) to a ready ``nn.Module``.

With weights, the model is built on the meta device and its parameters are the
tensors read from the memory-mapped safetensors file (``assign=True``): no
random initialisation and one copy of the weights in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from zoo import weights as weight_store
from zoo.architecture import Architecture
from zoo.cards import Card
from zoo.errors import WeightsError
from zoo.registry import Registry, default_registry

if TYPE_CHECKING:
    import torch
    from torch import nn

HF_HUB_PREFIX = "hf-hub:"


def build(
    architecture: str | Architecture,
    config: Mapping[str, Any] | BaseModel | None = None,
    *,
    weights: str | PathLike[str] | None = None,
    layout: str = "zoo",
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    registry: Registry | None = None,
) -> nn.Module:
    """Build an architecture from a config; with ``weights``, fill it from that file.

    ``layout`` names the key layout of ``weights`` (``"zoo"`` or one of the
    architecture's converters, such as ``"timm"``), converted in memory.
    """
    if isinstance(architecture, str):
        architecture = (registry or default_registry()).architecture(architecture)
    validated = architecture.validate_config(config)
    if weights is None:
        model = architecture.resolve_builder()(validated)
    else:
        model = _build_with_weights(architecture, validated, Path(weights), layout)
    return _place(model, device, dtype)


def load(
    name: str | Card,
    *,
    pretrained: bool = True,
    weights: str | PathLike[str] | None = None,
    layout: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    registry: Registry | None = None,
) -> nn.Module:
    """The model a card describes, with its pretrained weights unless ``pretrained=False``.

    ``weights`` overrides the card's source with a local safetensors file in
    ``layout`` (default ``"zoo"``). ``"hf-hub:org/repo[@revision]"`` loads a
    repository that holds a zoo card (README.md) and ``model.safetensors``.
    The model is returned in eval mode.
    """
    registry = registry or default_registry()
    source: tuple[Path, str] | None = None
    if isinstance(name, str) and name.startswith(HF_HUB_PREFIX):
        card, hub_file = weight_store.fetch_hub_repo(name.removeprefix(HF_HUB_PREFIX))
        source = (hub_file, "zoo")
    else:
        card = name if isinstance(name, Card) else registry.card(name)
    if weights is not None:
        source = (Path(weights), layout or "zoo")
    elif not pretrained:
        source = None
    elif source is None:
        source = weight_store.fetch(card)
    path, file_layout = source or (None, "zoo")
    architecture = registry.architecture(card.architecture)
    model = build(
        architecture, card.config, weights=path, layout=file_layout, device=device, dtype=dtype
    )
    return model.eval()


def empty_model(
    architecture: Architecture, config: Mapping[str, Any] | BaseModel | None
) -> nn.Module:
    """The model on the meta device: its structure and parameter count, without memory."""
    import torch

    with torch.device("meta"):
        return architecture.resolve_builder()(architecture.validate_config(config))


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, memory-mapped; a damaged file is a WeightsError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(
            f"{path} is not a readable safetensors file ({error}); "
            "it may be truncated or not a safetensors file at all"
        ) from None


def convert_state_dict(
    architecture: Architecture, config: BaseModel, state: dict[str, Any], layout: str
) -> dict[str, Any]:
    if layout == "zoo":
        return state
    return architecture.resolve_converter(layout)(state, config)


def assign_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], origin: str) -> None:
    """Strict, complete assignment: every key matched, every shape equal, nothing left on meta."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{key}: expected {tuple(expected[key].shape)}, found {tuple(state[key].shape)}"
        for key in sorted(set(expected) & set(state))
        if expected[key].shape != state[key].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_preview(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches {_preview(mismatched)}")
    if problems:
        raise WeightsError(f"{origin} does not fit the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True, assign=True)
    left_on_meta = [name for name, tensor in _tensors(model) if tensor.is_meta]
    if left_on_meta:
        raise WeightsError(
            f"after loading {origin}, tensors outside the state dict are still on the meta "
            f"device: {_preview(left_on_meta)}; the architecture must compute them in forward "
            "or make them persistent buffers"
        )


def _build_with_weights(
    architecture: Architecture, config: BaseModel, path: Path, layout: str
) -> nn.Module:
    state = convert_state_dict(architecture, config, read_state_dict(path), layout)
    model = empty_model(architecture, config)
    assign_state_dict(model, state, origin=f"{path} (layout {layout!r})")
    return model


def _place(model: nn.Module, device: Any, dtype: Any) -> nn.Module:
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model


def _tensors(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [*model.named_parameters(), *model.named_buffers()]


def _preview(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{f', … ({len(items) - limit} more)' if len(items) > limit else ''}]"
