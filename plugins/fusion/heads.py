"""The new heads: how per-frame features become one vector, then dropout and a linear layer.

Each head has the same two steps, so every fusion model reads alike: ``summarise`` maps
the backbone's features to the vector the classifier reads, ``classify`` maps that vector
to logits. Nothing here is pretrained (there are no public trained heads).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from zoo_plugins.fusion import (
    CNNLSTMConfig,
    FusionConfig,
    LateFusionConcatConfig,
    LateFusionConfig,
)


class Head(nn.Module):
    """Dropout and a linear classifier over features that are already one vector per clip."""

    def __init__(self, config: FusionConfig, width: int) -> None:
        super().__init__()
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(self.summary_width(config, width), config.num_classes)

    @staticmethod
    def summary_width(config: FusionConfig, width: int) -> int:
        """Width of :meth:`summarise`'s output for backbone features of width ``width``."""
        return width

    def summarise(self, features: Tensor) -> Tensor:
        return features

    def classify(self, summary: Tensor) -> Tensor:
        return self.fc(self.dropout(summary))


class TimePooling(Head):
    """Average, max, or both concatenated over time (Ng et al.'s feature pooling)."""

    def __init__(self, config: LateFusionConfig, width: int) -> None:
        super().__init__(config, width)
        self.pooling = config.pooling

    @staticmethod
    def summary_width(config: LateFusionConfig, width: int) -> int:
        return 2 * width if config.pooling == "avg+max" else width

    def summarise(self, features: Tensor) -> Tensor:
        if self.pooling == "avg":
            return features.mean(dim=1)
        if self.pooling == "max":
            return features.amax(dim=1)
        return torch.cat([features.mean(dim=1), features.amax(dim=1)], dim=1)


class TimeConcat(Head):
    """The frames' features side by side, in temporal order (Karpathy et al.'s late fusion)."""

    @staticmethod
    def summary_width(config: LateFusionConcatConfig, width: int) -> int:
        return config.frames * width

    def summarise(self, features: Tensor) -> Tensor:
        return features.flatten(1)


class LSTMReadout(Head):
    """An LSTM over the frame features; its last hidden state or its mean output."""

    def __init__(self, config: CNNLSTMConfig, width: int) -> None:
        super().__init__(config, width)
        self.lstm = nn.LSTM(
            width,
            config.hidden_size,
            num_layers=config.layers,
            bidirectional=config.bidirectional,
            batch_first=True,
        )
        self.readout = config.readout
        self.directions = 2 if config.bidirectional else 1

    @staticmethod
    def summary_width(config: CNNLSTMConfig, width: int) -> int:
        return config.hidden_size * (2 if config.bidirectional else 1)

    def summarise(self, features: Tensor) -> Tensor:
        outputs, (hidden, _) = self.lstm(features)
        if self.readout == "mean":
            return outputs.mean(dim=1)
        # The last layer's final state in each direction: the backward one has read the
        # whole clip too, which the backward half of the last output step has not.
        return hidden[-self.directions :].transpose(0, 1).flatten(1)


HEADS: dict[type[FusionConfig], type[Head]] = {
    LateFusionConfig: TimePooling,
    LateFusionConcatConfig: TimeConcat,
    CNNLSTMConfig: LSTMReadout,
}


def make_head(config: FusionConfig, width: int) -> Head:
    """The head a config asks for, over backbone features of width ``width``."""
    return HEADS.get(type(config), Head)(config, width)
