"""Calibration and held-out inputs for the int8 benchmarks, made from the I3D sample clip.

No dataset can be downloaded here, so the inputs are the one real video the project ships
(UCF-101's cricket clip, 79 frames) cut into varied pieces: images are frames with a
random crop, flip and brightness; videos are 20-frame stretches treated alike. They are
real pixels with real statistics, which is what calibration needs; the weights the
benchmarks quantize are random ones, so the agreement figures measure int8 arithmetic on
a network of that shape, not on a trained classifier.

    python benchmarks/calibration.py OUT   # OUT/images/*.png (50), OUT/videos/*.gif (15)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "v_CricketShot_g04_c01_rgb.gif"


def frames() -> np.ndarray:
    with Image.open(SAMPLE) as gif:
        pictures = []
        for index in range(gif.n_frames):
            gif.seek(index)
            pictures.append(np.asarray(gif.convert("RGB")))
    return np.stack(pictures)


def varied(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop (at least 60% a side), maybe mirrored, brightened or darkened."""
    height, width = pixels.shape[-3:-1]
    h, w = int(height * rng.uniform(0.6, 1)), int(width * rng.uniform(0.6, 1))
    top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
    crop = pixels[..., top : top + h, left : left + w, :].astype(np.float32)
    if rng.random() < 0.5:
        crop = crop[..., ::-1, :]
    return np.clip(crop * rng.uniform(0.7, 1.3), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--videos", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0, help="another seed: other pieces")
    args = parser.parse_args()
    clip, rng = frames(), np.random.default_rng(args.seed)
    (args.output / "images").mkdir(parents=True, exist_ok=True)
    (args.output / "videos").mkdir(parents=True, exist_ok=True)
    for index in range(args.images):
        picture = varied(clip[rng.integers(0, len(clip))], rng)
        Image.fromarray(picture).save(args.output / "images" / f"{index:03d}.png")
    for index in range(args.videos):
        start = rng.integers(0, len(clip) - 20)
        stretch = varied(clip[start : start + 20], rng)
        pictures = [Image.fromarray(frame) for frame in stretch]
        pictures[0].save(
            args.output / "videos" / f"{index:03d}.gif",
            save_all=True,
            append_images=pictures[1:],
            duration=40,
            loop=0,
        )


if __name__ == "__main__":
    main()
