"""An image model's weights as a fusion model's: the ``backbone`` layout.

A card's weights part ``{model: resnext50_32x4d.tv_in1k, layout: backbone}`` hands this
converter that model's pretrained state dict, fetched, verified and converted to the zoo
layout as its own card says. ``zoo.load(card, weights=file, layout="backbone")`` does the
same with any image model's zoo-layout file.
"""

from __future__ import annotations

from torch import Tensor

from zoo.errors import WeightsError
from zoo_plugins.fusion import FusionConfig
from zoo_plugins.fusion.backbone import Backbone
from zoo_plugins.fusion.model import fresh_head_state, resolve_backbone, stacked_frames

PREFIX = "backbone."


def from_backbone(state: dict[str, Tensor], config: FusionConfig) -> dict[str, Tensor]:
    """The backbone's tensors under ``backbone.``, its first convolution inflated for early
    fusion, and the head drawn from a fixed seed (no public trained heads exist)."""
    backbone, width = resolve_backbone(config)
    frames = stacked_frames(config)
    if frames > 1:
        key = f"{backbone.hints.first_conv}.weight"
        state = {**state, key: inflate(_tensor(state, key, backbone.card.name), frames)}
    return {
        **{f"{PREFIX}{key}": value for key, value in state.items()},
        **fresh_head_state(config, width),
    }


def backbone_example(config: FusionConfig) -> dict[str, Tensor]:
    """An image model's own state dict, as a ``{model: ..., layout: backbone}`` weights part
    hands it over: the example the conformance kit proves this converter with."""
    return Backbone.of(config).build().state_dict()


def inflate(weight: Tensor, frames: int) -> Tensor:
    """Filters over C channels to filters over ``frames`` x C frame-major channels.

    Repeating each filter once per frame and dividing by the number of frames makes a
    still clip (every frame the same image) give exactly the image filter's response.
    """
    return weight.repeat(1, frames, *([1] * (weight.dim() - 2))) / frames


def _tensor(state: dict[str, Tensor], key: str, model: str) -> Tensor:
    if key not in state:
        raise WeightsError(
            f"the weights of {model} have no {key!r}, the first convolution its plugin "
            f"declares (FeatureHints.first_conv); found {len(state)} keys such as "
            f"{sorted(state)[:3]}"
        )
    return state[key]
