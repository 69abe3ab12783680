"""Small models whose right explanation is known, for the interpretation tests.

- :class:`QuadrantNet` and :class:`SpanNet` see only one image quadrant or one time span
  of a clip (their input is masked), so any correct attribution lies there.
- :class:`SquareNet` is trained here, in seconds, to tell noise with a bright square from
  noise alone: a trained model whose evidence (the square) is at a known place.
  :func:`inflate` turns it into a clip model that scores the average of its frames.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SIZE = 24
SQUARE = 5


class QuadrantNet(nn.Module):
    """Two class scores that depend only on the top-right quadrant of a 3x32x32 image.

    Positive weights keep Grad-CAM's channel weights and activations positive for class 0,
    so the map is not zero by the sign of a random initialisation.
    """

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU())
        self.head = nn.Linear(8, 2)
        with torch.no_grad():
            self.features[0].weight.copy_(torch.rand(8, 3, 3, 3, generator=generator))
            self.head.weight.copy_(torch.tensor([[1.0] * 8, [-1.0] * 8]))

    def forward(self, image: Tensor) -> Tensor:
        mask = torch.zeros_like(image)
        mask[..., :16, 16:] = 1
        return self.head(self.features(image * mask).mean(dim=(2, 3)))


class SpanNet(nn.Module):
    """Two class scores of a (3, 16, 16, 16) clip that depend only on frames 8 to 11."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.features = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1, bias=False), nn.ReLU())
        self.head = nn.Linear(8, 2)
        with torch.no_grad():
            self.features[0].weight.copy_(torch.rand(8, 3, 3, 3, 3, generator=generator))
            self.head.weight.copy_(torch.tensor([[1.0] * 8, [-1.0] * 8]))

    def forward(self, clip: Tensor) -> Tensor:
        mask = torch.zeros_like(clip)
        mask[:, :, 8:12] = 1
        return self.head(self.features(clip * mask).mean(dim=(2, 3, 4)))


class SquareNet(nn.Module):
    """conv-pool-conv, global average, linear: class 1 = "a bright square is in the image"."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(16, 2)

    def forward(self, image: Tensor) -> Tensor:
        return self.head(self.body(image).mean(dim=(2, 3)))


class SquareClipNet(nn.Module):
    """SquareNet on every frame of an (N, 3, T, H, W) clip, scores averaged over time."""

    def __init__(self, image_net: SquareNet) -> None:
        super().__init__()
        conv1, _, _, conv2, _ = image_net.body
        self.body = nn.Sequential(
            _frame_conv(conv1), nn.ReLU(), nn.MaxPool3d((1, 2, 2)), _frame_conv(conv2), nn.ReLU()
        )
        self.head = image_net.head

    def forward(self, clip: Tensor) -> Tensor:
        return self.head(self.body(clip).mean(dim=(2, 3, 4)))


def inflate(image_net: SquareNet) -> SquareClipNet:
    return SquareClipNet(image_net).eval()


def _frame_conv(conv: nn.Conv2d) -> nn.Conv3d:
    """A (1, k, k) 3-D convolution that applies the 2-D one to each frame."""
    inflated = nn.Conv3d(conv.in_channels, conv.out_channels, (1, *conv.kernel_size))
    inflated.padding = (0, *conv.padding)
    with torch.no_grad():
        inflated.weight.copy_(conv.weight[:, :, None])
        inflated.bias.copy_(conv.bias)
    return inflated


def square_images(count: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Noise in [0, 0.5]; half the images get a 5x5 square of 1.0 at a random place.

    Returns pixels (count, 3, 24, 24), labels (1 = square) and each square's top-left
    corner (row, column), (-1, -1) where there is none.
    """
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.rand(count, 3, SIZE, SIZE, generator=generator) * 0.5
    labels = torch.arange(count) % 2
    corners = torch.randint(0, SIZE - SQUARE + 1, (count, 2), generator=generator)
    corners[labels == 0] = -1
    for index in torch.nonzero(labels).flatten():
        row, column = corners[index].tolist()
        pixels[index, :, row : row + SQUARE, column : column + SQUARE] = 1.0
    return pixels, labels, corners


@cache
def trained_square_net(steps: int = 60, seed: int = 0) -> SquareNet:
    """A few seconds of Adam on fresh batches, once per test run (callers must not change
    it); the tests check the accuracy it reaches."""
    torch.manual_seed(seed)
    model = SquareNet()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(steps):
        pixels, labels, _ = square_images(64, seed=1000 + step)
        loss = F.cross_entropy(model(pixels), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()
