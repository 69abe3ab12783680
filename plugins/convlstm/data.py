"""Moving digits: a small, deterministic nowcasting task built from scikit-learn's digits.

Each clip shows handwritten digits (scikit-learn's bundled 8x8 images, upscaled) drifting in
straight lines across a square black canvas and bouncing off its edges, like the paper's
Moving MNIST but generated offline with no download. Pixel values lie in [0, 1]; overlapping
digits combine by maximum.

The 1,797 digit images are split once and for all: every fifth image (index % 5 == 0) is
held out, the rest are for training, so held-out clips show handwriting the model never
saw. A clip set is a pure function of (count, frames, split, seed, sizes).

Uses numpy and scikit-learn only, so it imports no torch.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import numpy as np

Split = Literal["train", "held-out"]
HELD_OUT_EVERY = 5
HELD_OUT_SEED = 2015
CANVAS = 32
DIGIT_SCALE = 2
DIGITS_PER_CLIP = 2
MAX_SPEED = 3.0  # below the room a digit has, so one reflection per step suffices
MIN_SPEED = 1.0


@cache
def digit_images(split: Split, scale: int = DIGIT_SCALE) -> np.ndarray:
    """The split's digit images, ``(count, 8 * scale, 8 * scale)`` float32 in [0, 1]."""
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32) / 16.0
    held_out = np.arange(len(images)) % HELD_OUT_EVERY == 0
    if split not in ("train", "held-out"):
        raise ValueError(f"split must be 'train' or 'held-out', found {split!r}")
    chosen = images[held_out] if split == "held-out" else images[~held_out]
    return np.kron(chosen, np.ones((scale, scale), dtype=np.float32))


def moving_digits(
    count: int,
    frames: int,
    split: Split,
    seed: int,
    *,
    canvas: int = CANVAS,
    digits_per_clip: int = DIGITS_PER_CLIP,
    scale: int = DIGIT_SCALE,
) -> np.ndarray:
    """``count`` clips of ``frames`` frames, ``(count, frames, 1, canvas, canvas)`` float32.

    Each digit starts at a uniform position with a uniform direction and a speed between
    ``MIN_SPEED`` and ``MAX_SPEED`` pixels per frame; positions are rounded to whole pixels.
    """
    images = digit_images(split, scale)
    side = images.shape[-1]
    if side > canvas:
        raise ValueError(f"digits of {side} pixels do not fit a {canvas}-pixel canvas")
    rng = np.random.default_rng(seed)
    clips = np.zeros((count, frames, 1, canvas, canvas), dtype=np.float32)
    for clip in clips:
        for _ in range(digits_per_clip):
            image = images[rng.integers(len(images))]
            for frame, (top, left) in zip(
                clip, _bouncing_path(rng, frames, canvas - side), strict=True
            ):
                window = frame[0, top : top + side, left : left + side]
                np.maximum(window, image, out=window)
    return clips


def _bouncing_path(rng: np.random.Generator, frames: int, room: int) -> np.ndarray:
    """Integer (top, left) positions in ``[0, room]`` of a point bouncing in a square."""
    position = rng.uniform(0, room, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    velocity = rng.uniform(MIN_SPEED, MAX_SPEED) * np.array([np.sin(angle), np.cos(angle)])
    path = np.empty((frames, 2), dtype=np.int64)
    for t in range(frames):
        path[t] = np.rint(position)
        position = position + velocity
        low, high = position < 0, position > room
        position = np.where(low, -position, np.where(high, 2 * room - position, position))
        velocity = np.where(low | high, -velocity, velocity)
    return path
