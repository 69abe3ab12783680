"""The model code: imported only when a tinyvideo model is built."""

import torch
from torch import nn

from zoo_example_plugin import TinyVideoConfig


class TinyVideo(nn.Module):
    def __init__(self, config: TinyVideoConfig) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(config.in_channels, config.width, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv3d(config.width, 2 * config.width, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(2 * config.width, config.num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """NCTHW video to class logits."""
        return self.head(self.features(video).mean(dim=(2, 3, 4)))


def build(config: TinyVideoConfig) -> TinyVideo:
    return TinyVideo(config)
