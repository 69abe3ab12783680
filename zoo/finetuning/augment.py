"""Training-time augmentation, read from the card's input spec as the authors trained.

Images: a random resized crop (Szegedy et al.'s Inception crop: a share of the area in
``crop_scale`` and an aspect ratio in [3/4, 4/3], as torchvision and timm draw it) to the
card's size, and a horizontal flip. Videos: the same, with one crop and one flip for
every frame, on a random window of the card's clip length at the card's frame rate.
Evaluation never comes here: it is the predictor's own test-time pre-processing
(:class:`zoo.inference.preprocess.Preprocessor`).

Each sample's randomness comes from its own generator, seeded by (run seed, epoch,
sample index), so an epoch's augmentation does not depend on the number of processes or
loader workers, and a resumed run sees exactly what the uninterrupted one would have.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.cards import Card, InputSpec
from zoo.errors import InputError
from zoo.inference import sampling
from zoo.inference.decode import Media
from zoo.inference.transforms import Normalization, resize, to_channels, to_layout

#: torchvision's RandomResizedCrop: aspect ratios drawn log-uniformly from [3/4, 4/3].
RATIO = (3 / 4, 4 / 3)
ATTEMPTS = 10


def sample_generator(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


class TrainTransform:
    """``(Media, generator) -> `` one augmented model input, in the card's layout, no batch axis."""

    def __init__(self, card: Card, crop_scale: tuple[float, float], hflip: float) -> None:
        self.card = card
        self.spec: InputSpec = card.inputs[0]
        self.video = "T" in self.spec.layout
        self.crop_scale = crop_scale
        self.hflip = hflip
        self.normalization = Normalization(self.spec)

    def __call__(self, media: Media, rng: np.random.Generator) -> Tensor:
        frames = torch.from_numpy(media.read(self._frame_indices(media, rng)))
        top, left, height, width = crop_box(*media.size, self.crop_scale, rng)
        cropped = frames[:, top : top + height, left : left + width].permute(0, 3, 1, 2)
        pixels = resized_to_float(cropped, self.spec)
        if rng.random() < self.hflip:
            pixels = pixels.flip(-1)
        pixels = to_channels(pixels, self.spec)
        rows = pixels[None] if self.video else pixels[:1]
        with torch.no_grad():
            return self.normalization(to_layout(rows, self.spec.layout))[0]

    def _frame_indices(self, media: Media, rng: np.random.Generator) -> np.ndarray:
        """A random window of the clip length at the card's fps; an image model on a video
        trains on one random frame of it."""
        if not self.video:
            return np.array([0 if media.still else int(rng.integers(media.count))])
        if media.still:
            raise InputError(
                media.source,
                f"is a still image; {self.card.name} is a video model and trains on videos",
            )
        kept = sampling.resample(media, self.spec.fps)
        length = self.spec.frames or 1
        if len(kept) >= length:
            start = int(rng.integers(len(kept) - length + 1))
            return kept[start : start + length]
        # Too short: the card's own rule (loop, pad or refuse), as at test time.
        rule = self.spec.sampling_protocol.too_short
        if rule == "error":
            rate = f" at {self.spec.fps:g} fps" if self.spec.fps else ""
            raise InputError(
                media.source,
                f"has {len(kept)} frames{rate}; {self.card.name} trains on clips of {length} "
                "and its card says not to loop or pad shorter videos",
            )
        steps = np.arange(length)
        return kept[steps % len(kept) if rule == "loop" else np.minimum(steps, len(kept) - 1)]


def resized_to_float(frames: Tensor, spec: InputSpec) -> Tensor:
    """uint8 ``(T, 3, h, w)`` -> float ``(T, 3, H, W)`` in [0, 1] at the card's size, with its
    interpolation. Resized while still uint8 (PyTorch's vectorised uint8 kernels, as
    torchvision's transforms use them), converted after: a quarter of the memory traffic."""
    size = tuple(spec.size)
    if tuple(frames.shape[-2:]) == size:
        return frames.float().div_(255)
    if spec.interpolation == "nearest":
        return F.interpolate(frames, size=size, mode="nearest").float().div_(255)
    if spec.interpolation == "bicubic" and not spec.antialias:  # no exact uint8 kernel
        return resize(frames.float().div_(255), spec, spec.size)
    resized = F.interpolate(
        frames.contiguous(memory_format=torch.channels_last),
        size=size,
        mode=spec.interpolation,
        align_corners=False,
        antialias=spec.antialias,
    )
    return resized.float().div_(255).contiguous()


def crop_box(
    height: int, width: int, scale: tuple[float, float], rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random resized crop, drawn as torchvision draws it."""
    area = height * width
    log_ratio = (math.log(RATIO[0]), math.log(RATIO[1]))
    for _ in range(ATTEMPTS):
        target = area * rng.uniform(*scale)
        ratio = math.exp(rng.uniform(*log_ratio))
        crop_width = round(math.sqrt(target * ratio))
        crop_height = round(math.sqrt(target / ratio))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            top = int(rng.integers(height - crop_height + 1))
            left = int(rng.integers(width - crop_width + 1))
            return top, left, crop_height, crop_width
    # Fallback: the whole frame's centre, at the nearest allowed aspect ratio.
    ratio = width / height
    if ratio < RATIO[0]:
        crop_width, crop_height = width, round(width / RATIO[0])
    elif ratio > RATIO[1]:
        crop_height, crop_width = height, round(height * RATIO[1])
    else:
        crop_width, crop_height = width, height
    return (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width
