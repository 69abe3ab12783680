"""Training augmentation follows the card: a window of the clip length at the card's frame
rate, one crop and one flip for every frame, and each sample's draw fixed by its seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.cards import Card
from zoo.finetuning.augment import TrainTransform, crop_box, sample_generator
from zoo.inference.decode import in_memory


def video_card(frames: int = 4, fps: float | None = 15.0) -> Card:
    return Card.from_data(
        {
            "name": "clip-model",
            "architecture": "any",
            "task": "video-classification",
            "summary": "for the augmentation tests",
            "inputs": [
                {
                    "name": "video",
                    "layout": "NCTHW",
                    "channels": 3,
                    "frames": frames,
                    "fps": fps,
                    "size": [8, 8],
                }
            ],
            "outputs": [{"name": "logits", "shape": [2]}],
            "parameters": 1,
            "license": "mit",
        }
    )


def numbered_video(count: int, fps: float, height: int = 24, width: int = 32):
    """Frame k: every pixel k * 4 (a number that survives resizing), at ``fps``."""
    values = (np.arange(count, dtype=np.uint8) * 4)[:, None, None, None]
    frames = np.broadcast_to(values, (count, height, width, 3)).copy()
    return in_memory(frames, "numbered", still=False, times=np.arange(count) / fps, fps=fps)


def test_a_window_is_the_clip_length_of_consecutive_frames_at_the_cards_rate():
    transform = TrainTransform(video_card(frames=4, fps=15.0), (0.5, 1.0), hflip=0.0)

    for seed in range(20):
        clip = transform(numbered_video(40, fps=30.0), sample_generator(seed, 0, 0))
        shown = (clip[0, :, 0, 0] * 255 / 4).round().long()  # (C, T, H, W): frame numbers
        assert clip.shape == (3, 4, 8, 8)
        assert torch.equal(shown.diff(), torch.full((3,), 2))  # every other frame: 30 -> 15 fps


def test_every_frame_of_a_clip_gets_the_same_crop_and_flip():
    rng = np.random.default_rng(0)
    pattern = rng.integers(0, 200, (24, 32, 3), dtype=np.uint8)
    frames = np.stack([pattern + k for k in range(6)]).astype(np.uint8)
    media = in_memory(frames, "pattern", still=False, times=np.arange(6) / 15.0, fps=15.0)
    transform = TrainTransform(video_card(frames=6), (0.2, 1.0), hflip=0.5)

    for seed in range(10):
        clip = transform(media, sample_generator(seed, 1, 3))
        shifted = clip - clip[:, :1]  # frame k is frame 0 plus k / 255 everywhere
        expected = torch.arange(6.0).view(1, 6, 1, 1) / 255
        torch.testing.assert_close(shifted, expected.expand_as(shifted), atol=2e-3, rtol=0)


def test_a_sample_is_augmented_alike_whenever_its_seed_epoch_and_index_agree():
    transform = TrainTransform(video_card(), (0.08, 1.0), hflip=0.5)
    media = numbered_video(40, fps=30.0)

    first = transform(media, sample_generator(7, 2, 11))
    again = transform(media, sample_generator(7, 2, 11))
    next_epoch = transform(media, sample_generator(7, 3, 11))

    assert torch.equal(first, again)
    assert not torch.equal(first, next_epoch)


@pytest.mark.parametrize("size", [(24, 32), (300, 40), (40, 300)])
def test_a_random_resized_crop_stays_inside_the_frame_and_in_its_share_of_the_area(size):
    height, width = size
    for seed in range(200):
        top, left, crop_height, crop_width = crop_box(
            height, width, (0.25, 0.75), np.random.default_rng(seed)
        )
        assert top >= 0 and top + crop_height <= height
        assert left >= 0 and left + crop_width <= width
        share = crop_height * crop_width / (height * width)
        ratio = crop_width / crop_height
        fallback = top == (height - crop_height) // 2 and left == (width - crop_width) // 2
        assert fallback or (0.2 <= share <= 0.8 and 0.7 <= ratio <= 1.4)
