"""The fusion networks: a zoo image model (``backbone``) and a new head (``head``).

Every model takes clips ``(N, C, T, H, W)`` normalised as its backbone's card says and
returns logits ``(N, num_classes)``. The state dict is ``backbone.*`` (the image model's
own keys, so its checkpoints map onto it) and ``head.*``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from zoo_plugins.fusion import (
    CNNLSTMConfig,
    EarlyFusionConfig,
    FusionConfig,
    LateFusionConcatConfig,
    LateFusionConfig,
)
from zoo_plugins.fusion.backbone import Backbone
from zoo_plugins.fusion.heads import Head, make_head

HEAD_SEED = 0
"""The seed an untrained head is drawn from, so that every load of a card is one model."""


class FusionModel(nn.Module):
    """The backbone on every frame of the clip, the head on the per-frame features.

    ``frames`` is the clip length the config fixes (None: any length).
    """

    def __init__(self, backbone: Backbone, head: Head, frames: int | None) -> None:
        super().__init__()
        self.backbone = backbone.build()
        self.head = head
        self.pooled = backbone.pooled()
        self.channels = backbone.image.channels
        self.frames = frames
        self.backbone_name = backbone.card.name

    def forward_features(self, video: Tensor) -> Tensor:
        """What the classifier reads: ``(N, D')``."""
        self._check_clip(video)
        frames = video.transpose(1, 2).flatten(0, 1)
        features = self.pooled(self.backbone, frames).unflatten(0, (video.shape[0], -1))
        return self.head.summarise(features)

    def forward(self, video: Tensor) -> Tensor:
        return self.head.classify(self.forward_features(video))

    def _check_clip(self, video: Tensor) -> None:
        """Say which clip the model wants before a shape clash deep in the backbone does."""
        frames_ok = self.frames is None or video.shape[2] == self.frames
        if video.dim() == 5 and video.shape[1] == self.channels and frames_ok:
            return
        length = "T" if self.frames is None else str(self.frames)
        fixed = "" if self.frames is None else f"; its config fixes the clip length at {length}"
        raise ValueError(
            f"{type(self).__name__} over {self.backbone_name} expects clips of shape "
            f"(N, {self.channels}, {length}, H, W) (N, C, T, H, W), found "
            f"{tuple(video.shape)}{fixed}"
        )


class EarlyFusion(FusionModel):
    """The clip's K frames stacked along channels, frame-major (channel t * C + c is frame
    t's channel c), into a backbone whose first convolution reads K * C channels."""

    def forward_features(self, video: Tensor) -> Tensor:
        self._check_clip(video)
        return self.head.summarise(self.pooled(self.backbone, video.transpose(1, 2).flatten(1, 2)))


def stacked_frames(config: FusionConfig) -> int:
    """How many frames the backbone's first convolution reads at once: K for early fusion."""
    return config.frames if isinstance(config, EarlyFusionConfig) else 1


def fixed_length(config: FusionConfig) -> int | None:
    """The clip length the config fixes (early fusion's K, the concatenated frames), or None."""
    return config.frames if isinstance(config, EarlyFusionConfig | LateFusionConcatConfig) else None


def resolve_backbone(config: FusionConfig) -> tuple[Backbone, int]:
    """The backbone and the width D of its pooled features, as this config builds it."""
    backbone = Backbone.of(config, stacked_frames(config))
    return backbone, backbone.feature_width(backbone.image.channels * stacked_frames(config))


def _build(kind: type[FusionModel], config: FusionConfig) -> FusionModel:
    backbone, width = resolve_backbone(config)
    return kind(backbone, make_head(config, width), fixed_length(config))


def build_early_fusion(config: EarlyFusionConfig) -> FusionModel:
    return _build(EarlyFusion, config)


def build_late_fusion(config: LateFusionConfig) -> FusionModel:
    return _build(FusionModel, config)


def build_late_fusion_concat(config: LateFusionConcatConfig) -> FusionModel:
    return _build(FusionModel, config)


def build_cnn_lstm(config: CNNLSTMConfig) -> FusionModel:
    return _build(FusionModel, config)


def pooled_features(model: FusionModel, video: Tensor) -> Tensor:
    return model.forward_features(video)


def fresh_head_state(config: FusionConfig, width: int) -> dict[str, Tensor]:
    """``head.*`` drawn from :data:`HEAD_SEED` on the CPU, leaving the global RNG alone."""
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        torch.manual_seed(HEAD_SEED)
        head = make_head(config, width)
    return {f"head.{key}": value for key, value in head.state_dict().items()}
