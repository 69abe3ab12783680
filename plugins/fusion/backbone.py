"""The image model inside a fusion model, found through the registry and its FeatureHints.

Everything the fusion models know about their backbone comes from here: its card (the
image input it was trained on), its architecture's builder and config, and the
:class:`zoo.FeatureHints` its plugin declares. No architecture is named and no module
type is checked, so any image model whose plugin declares the hints works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import torch
from pydantic import BaseModel
from torch import Tensor, nn

from zoo.architecture import Architecture, FeatureHints, import_string
from zoo.cards import Card, InputSpec
from zoo.errors import BackboneError
from zoo.registry import current_registry
from zoo.small import merge
from zoo_plugins.fusion import FusionConfig

IMAGE_LAYOUT = "NCHW"


@dataclass(frozen=True)
class Backbone:
    """A zoo image model as a fusion model's backbone, and how to build and read it."""

    card: Card
    architecture: Architecture
    config: BaseModel

    @classmethod
    def of(cls, config: FusionConfig, stacked_frames: int = 1) -> Backbone:
        """The backbone a fusion config names, in the registry of the build in progress.

        ``stacked_frames`` > 1 (early fusion) builds it with that many times the
        channels in its first convolution, through the config field its plugin names.
        """
        registry = current_registry()
        card = registry.card(config.backbone)
        architecture = registry.architecture(card.architecture)
        _check_image_model(card, architecture)
        values = merge(card.config, architecture.test_config if config.small_backbone else {})
        if stacked_frames > 1:
            field = _channels_field(card, architecture)
            values[field] = image_input(card).channels * stacked_frames
        return cls(card, architecture, architecture.validate_config(values))

    @property
    def hints(self) -> FeatureHints:
        return self.architecture.features

    @property
    def image(self) -> InputSpec:
        return image_input(self.card)

    def build(self) -> nn.Module:
        """The image model on the current default device, with its builder's own init."""
        return self.architecture.resolve_builder()(self.config)

    def pooled(self) -> Callable[..., Tensor]:
        """``(model, images) -> (N, D)``: the features the image model's classifier reads."""
        return self.hints.resolve_pooled()

    def feature_width(self, channels: int) -> int:
        """D, the width of the pooled features: declared by the plugin, else measured.

        The measurement runs the pooled features on the meta device (shapes, no
        arithmetic), but its first use in a process imports torch's decompositions,
        seconds of work; so plugins declare ``FeatureHints.pooled_width``, and this is
        the fallback for those that do not, done once per backbone and config.
        """
        hints, architecture = self.hints, self.architecture
        if hints.pooled_width is not None:
            return int(hints.resolve_pooled_width()(self.config))
        return _probe_width(
            architecture.builder,
            hints.pooled or "",
            architecture.config,
            self.config.model_dump_json(),
            (channels, *self.image.size),
        )


@cache
def _probe_width(
    builder: str, pooled: str, schema: type[BaseModel], config: str, shape: tuple[int, ...]
) -> int:
    with torch.device("meta"):
        model = import_string(builder)(schema.model_validate_json(config)).eval()
    return int(import_string(pooled)(model, torch.empty(1, *shape, device="meta")).shape[-1])


def image_input(card: Card) -> InputSpec:
    return card.inputs[0]


def _check_image_model(card: Card, architecture: Architecture) -> None:
    layouts = [spec.layout for spec in card.inputs]
    if layouts != [IMAGE_LAYOUT]:
        raise BackboneError(
            f"backbone {card.name!r} is not an image model: a fusion model needs one input "
            f"of layout {IMAGE_LAYOUT}, found {layouts}"
        )
    if architecture.features.pooled is None:
        raise BackboneError(
            f"backbone {card.name!r} (architecture {architecture.name!r}) declares no pooled "
            "features (FeatureHints.pooled), which every fusion model reads"
        )


def _channels_field(card: Card, architecture: Architecture) -> str:
    hints = architecture.features
    missing = [name for name in ("first_conv", "channels_field") if getattr(hints, name) is None]
    if missing:
        raise BackboneError(
            f"early fusion inflates the first convolution of backbone {card.name!r}, but "
            f"architecture {architecture.name!r} declares no FeatureHints.{' or .'.join(missing)}"
        )
    return hints.channels_field or ""
