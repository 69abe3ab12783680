"""A small zoo for the fusion tests: tiny image backbones whose weights the test makes itself.

Three backbones of three plugins (the built-in ResNeXt and ViT at small configs, and the
third-party ``tinyimage``) each get a card whose weights sit on the loopback Hub with
their sha256, so a fusion card's ``{model: <backbone>}`` part goes through the zoo's
real fetch-and-verify path. ``reference`` holds each image model with exactly the
served weights, to compare the fusion models against.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import fusion_image_plugin
import torch
from conftest import cards_plugin
from hub_server import LoopbackHub
from safetensors.torch import save as save_bytes
from torch import nn

import zoo
from zoo.cards import Card
from zoo.loading import count_parameters, empty_model
from zoo.registry import Registry, using_registry
from zoo_plugins import fusion, resnext, vit

IMAGE_INPUT = {
    "name": "image",
    "layout": "NCHW",
    "channels": 3,
    "size": [32, 32],
    "resize": 36,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
}
BACKBONES: dict[str, tuple[str, dict[str, Any]]] = {
    "tiny-resnext": (
        "resnext",
        {"layers": [1, 1, 1, 1], "groups": 2, "width_per_group": 4, "num_classes": 5},
    ),
    "tiny-vit": (
        "vit",
        {"image_size": 32, "patch_size": 8, "width": 32, "depth": 2, "heads": 2, "num_classes": 5},
    ),
    "tiny-image": ("tinyimage", {"width": 6, "num_classes": 5}),
}
"""Backbone card name -> (architecture, config); every one takes 3x32x32 images."""
FIXED_LENGTH = ("early-fusion", "late-fusion-concat")
PLUGINS = {"resnext": resnext, "vit": vit, "fusion": fusion, "tinyimage": fusion_image_plugin}


def card(name: str, architecture: str, config: dict[str, Any], **fields: Any) -> Card:
    data = {
        "name": name,
        "architecture": architecture,
        "config": config,
        "task": "image-classification",
        "summary": f"{name}, for the fusion tests",
        "inputs": [IMAGE_INPUT],
        "outputs": [{"name": "logits", "shape": [5]}],
        "parameters": 1,
        "license": "mit",
        **fields,
    }
    return Card.from_data(data, origin=name)


@dataclass
class FusionZoo:
    """The registry, the Hub serving the backbones' weights, and the image models themselves."""

    hub: LoopbackHub
    registry: Registry = field(init=False)
    reference: dict[str, nn.Module] = field(default_factory=dict)
    cards: list[Card] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name, (architecture, config) in BACKBONES.items():
            self._publish(name, architecture, config)
        self.cards += [
            card("tiny-image-bare", "tinyimage-bare", {}),
            card("tiny-image-pooled-only", "tinyimage-pooled-only", {}),
            card("tiny-unpublished", "tinyimage", {}),
            card(
                "tiny-video",
                "tinyimage",
                {},
                inputs=[{**IMAGE_INPUT, "layout": "NCTHW", "frames": 4}],
            ),
        ]
        self.registry = self._registry()

    def _publish(self, name: str, architecture: str, config: dict[str, Any]) -> None:
        torch.manual_seed(len(self.reference))
        model = zoo.build(self._architecture(architecture), config).eval()
        for key, buffer in model.named_buffers():  # BatchNorm statistics that matter in eval
            if key.endswith("running_mean"):
                buffer.normal_(0.0, 0.1)
            elif key.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
        data = save_bytes({key: value.contiguous() for key, value in model.state_dict().items()})
        self.hub.commit(f"tests/{name}", {"model.safetensors": data})
        digest = hashlib.sha256(data).hexdigest()
        weights = {"repo_id": f"tests/{name}", "sha256": digest}
        self.reference[name] = model
        self.cards.append(card(name, architecture, config, weights=weights))

    @staticmethod
    def _architecture(name: str) -> zoo.Architecture:
        plugin = {"resnext": resnext, "vit": vit}.get(name, fusion_image_plugin)
        return next(a for a in plugin.zoo_architectures() if a.name == name)

    def _registry(self) -> Registry:
        return Registry.from_plugins({**PLUGINS, "cards": cards_plugin("cards", *self.cards)})

    def fusion_card(
        self,
        architecture: str,
        backbone: str,
        frames: int = 4,
        video: dict[str, Any] | None = None,
        **config: Any,
    ) -> Card:
        """A fusion card over ``backbone`` with its pretrained weights, registered here.

        Its input is the backbone's, as a clip of ``frames``, with ``video``'s fields on top.
        """
        config = {"backbone": backbone, "num_classes": 3, **config}
        if architecture in FIXED_LENGTH:
            config["frames"] = frames
        image = self.registry.card(backbone).inputs[0]
        data = {
            "name": f"{architecture}-{backbone}",
            "architecture": architecture,
            "config": config,
            "task": "video-classification",
            "summary": "a fusion model for the tests",
            "inputs": [
                {
                    **image.model_dump(),
                    "name": "video",
                    "layout": "NCTHW",
                    "frames": frames,
                    **(video or {}),
                }
            ],
            "outputs": [{"name": "logits", "shape": [config["num_classes"]]}],
            "weights": [{"model": backbone, "layout": "backbone"}],
            "parameters": self.parameters(architecture, config),
            "license": "mit",
        }
        made = Card.from_data(data, origin=data["name"])
        self.cards.append(made)
        self.registry = self._registry()
        return made

    def parameters(self, architecture: str, config: dict[str, Any]) -> int:
        with using_registry(self.registry):
            return count_parameters(empty_model(self.registry.architecture(architecture), config))

    def load(self, card: Card | str, **options: Any) -> nn.Module:
        return zoo.load(card, registry=self.registry, **options)


def still_clip(image: torch.Tensor, frames: int) -> torch.Tensor:
    """``(N, C, H, W)`` images as clips ``(N, C, T, H, W)`` in which nothing moves."""
    return image.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()
