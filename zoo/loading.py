"""From a card (or an architecture and config) to a ready ``nn.Module``.

With weights, the model is built on the meta device and its parameters are the
tensors read from the memory-mapped safetensors file (``assign=True``): no
random initialisation and one copy of the weights in memory. Floating-point
tensors take the architecture's dtype (or ``dtype=``), whatever the file
stores, so a float16 file does not silently make a float16 model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from zoo import weights as weight_store
from zoo.architecture import Architecture
from zoo.cards import Card
from zoo.errors import ArgumentError, OptionError, PluginError, WeightsError, ZooError
from zoo.registry import Registry, default_registry, using_registry
from zoo.weights import (
    HF_HUB_PREFIX,
    ModelWeights,
    WeightsFile,
    WeightsPart,
    convert_state_dict,
    merge_parts,
    read_state_dict,
)
from zoo.weights.folder import folder_source

if TYPE_CHECKING:
    import torch
    from torch import nn

ARCHITECTURE_ATTRIBUTE = "zoo_architecture"
FLOAT_DTYPES = ("float32", "bfloat16", "float16", "float64")


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

    The model is returned in **training mode**, as a freshly made ``nn.Module``
    (and timm's ``create_model``) is, because ``build`` is the entry point for
    training and fine-tuning; call ``.eval()`` before inference.
    :func:`load` returns eval mode instead.
    """
    device, dtype = checked_placement(device, dtype)
    if isinstance(architecture, str):
        architecture = (registry or default_registry()).architecture(architecture)
    validated = architecture.validate_config(config)
    parts = [] if weights is None else [WeightsFile(Path(weights), layout)]
    with using_registry(registry) if registry else nullcontext():
        model = _build_from_parts(architecture, validated, parts, dtype)
    return _place(model, device, dtype).train()


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
    repository that holds a zoo card (README.md) and ``model.safetensors``; a name
    with a ``/`` (``"out/"``) loads a folder holding ``card.yaml`` and
    ``model.safetensors``, as ``zoo convert`` and ``zoo finetune`` write.
    Otherwise every weights part of the card is fetched (once), verified,
    converted from its layout and put under its prefix (a part that names
    another zoo model is that model's weights, fetched the same way).

    The model is returned in **eval mode**, ready for inference, as
    transformers' ``from_pretrained`` does; :func:`build` returns training mode.
    ``dtype`` is a floating-point ``torch.dtype`` or its name (``"float16"``);
    ``device`` must exist here (:func:`checked_placement`).
    """
    if not isinstance(name, str | Card):
        raise ArgumentError(
            f"zoo.load expects a model name (str) or a zoo.Card, found {type(name).__name__}"
        )
    if layout is not None and weights is None:
        raise ArgumentError(
            f"layout={layout!r} describes a weights= file; the card's own weights carry "
            "their layout"
        )
    if weights is not None and not isinstance(weights, str | PathLike):
        raise ArgumentError(
            f"weights= is a path to a safetensors file, found {type(weights).__name__}"
        )
    device, dtype = checked_placement(device, dtype)
    registry = registry or default_registry()
    wanted = pretrained and weights is None
    hub_weights: WeightsFile | None = None
    local = folder_source(name, weights, pretrained)
    if local is not None:
        card, weights = local
    elif isinstance(name, str) and name.startswith(HF_HUB_PREFIX):
        spec = name.removeprefix(HF_HUB_PREFIX)
        card, hub_weights = weight_store.fetch_hub_repo(spec, with_weights=wanted)
    else:
        card = name if isinstance(name, Card) else registry.card(name)
    architecture = registry.architecture(card.architecture)
    config = architecture.validate_config(card.config)
    parts: list[WeightsPart]
    if weights is not None:
        parts = [WeightsFile(Path(weights), layout or "zoo")]
    elif not pretrained:
        parts = []
    elif hub_weights is not None:
        parts = [hub_weights]
    else:
        version = registry.plugin_version(architecture)
        parts = weight_store.fetch(card, architecture, registry, plugin_version=version)
    with using_registry(registry):
        model = _build_from_parts(architecture, config, parts, dtype)
    return _place(model, device, dtype).eval()


def checked_placement(device: Any, dtype: Any) -> tuple[Any, Any]:
    """``device`` and ``dtype`` as torch takes them, or an OptionError naming what they may be.

    A dtype is a floating-point ``torch.dtype`` or its name (``"float16"``); a device is
    one that exists here (``"cuda"`` without a GPU is refused before anything is built).
    """
    import torch

    if isinstance(dtype, str) and dtype in FLOAT_DTYPES:
        dtype = getattr(torch, dtype)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise OptionError(
            f"{{dtype}} is a floating-point torch.dtype or one of {', '.join(FLOAT_DTYPES)}, "
            f"found {dtype!r}",
            "dtype",
        )
    if device is not None:
        from zoo.inference.backends import pick_device

        if not isinstance(device, str | torch.device):
            raise OptionError(
                f"{{device}} is a device name such as 'cpu' or 'cuda:0', found {device!r}",
                "device",
            )
        device = pick_device(device)
    return device, dtype


def empty_model(
    architecture: Architecture, config: Mapping[str, Any] | BaseModel | None
) -> nn.Module:
    """The model on the meta device: its structure and parameter count, without memory."""
    import torch

    with torch.device("meta"):
        return run_builder(architecture, architecture.validate_config(config))


def run_builder(architecture: Architecture, config: BaseModel) -> nn.Module:
    """The plugin's builder; whatever it raises becomes one PluginError naming it.

    The model remembers its architecture (:func:`architecture_of`), so that tools that
    work on any model (Grad-CAM's default layer, embeddings) read the plugin's
    :class:`~zoo.FeatureHints` instead of testing the model's class.
    """
    builder = architecture.resolve_builder()
    try:
        model = builder(config)
    except ZooError:
        raise
    except Exception as error:  # the plugin's builder may fail in any way
        raise PluginError(
            f"the builder of architecture {architecture.name!r} ({architecture.builder}) "
            f"failed: {type(error).__name__}: {error}"
        ) from error
    setattr(model, ARCHITECTURE_ATTRIBUTE, architecture)
    return model


def architecture_of(model: Any) -> Architecture | None:
    """The architecture that built ``model`` through :func:`build` or :func:`load`, if any."""
    found = getattr(model, ARCHITECTURE_ATTRIBUTE, None)
    return found if isinstance(found, Architecture) else None


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


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


def _build_from_parts(
    architecture: Architecture,
    config: BaseModel,
    parts: Sequence[WeightsPart],
    dtype: torch.dtype | None = None,
) -> nn.Module:
    """Without parts, the builder's own init; with parts, meta build + strict assignment."""
    if not parts:
        return run_builder(architecture, config)
    model = empty_model(architecture, config)
    names = ", ".join(_describe(part) for part in parts)
    state = _floats_as(_merged_state(architecture, config, parts), model.state_dict(), dtype)
    assign_state_dict(model, state, origin=names)
    return model


def _merged_state(
    architecture: Architecture, config: BaseModel, parts: Sequence[WeightsPart]
) -> dict[str, Any]:
    """Every part read (another model's weights: merged in its own layout first), converted
    from its layout and put under its prefix."""
    converted = []
    for part in parts:
        if isinstance(part, ModelWeights):
            source_config = part.architecture.validate_config(part.card.config)
            state = _merged_state(part.architecture, source_config, part.parts)
        else:
            state = read_state_dict(part.path)
        state = convert_state_dict(architecture, config, state, part.layout, _describe(part))
        converted.append((part.prefix, state))
    return merge_parts(converted)


def _describe(part: WeightsPart) -> str:
    if isinstance(part, ModelWeights):
        return f"the weights of {part.card.name} (layout {part.layout!r})"
    return f"{part.path} (layout {part.layout!r})"


def _floats_as(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    dtype: torch.dtype | None,
) -> dict[str, torch.Tensor]:
    """Floating-point tensors in ``dtype``, else in the dtype the architecture built them in.

    Tensors already in that dtype stay the memory-mapped ones; only the others
    are copied. Non-float tensors (counters, indices) are left as they are.
    """
    result = {}
    for key, tensor in state.items():
        reference = expected.get(key)
        wanted = dtype if dtype is not None else getattr(reference, "dtype", None)
        floats = reference is not None and reference.is_floating_point()
        if floats and tensor.is_floating_point() and wanted is not None and tensor.dtype != wanted:
            tensor = tensor.to(wanted)
        result[key] = tensor
    return result


def _place(model: nn.Module, device: Any, dtype: Any) -> nn.Module:
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model


def _tensors(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [*model.named_parameters(), *model.named_buffers()]


def _preview(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{f', … ({len(items) - limit} more)' if len(items) > limit else ''}]"
