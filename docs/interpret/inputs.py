"""Write the inputs of the interpretation pictures (docs/tasks/interpretation.md) into a folder.

    python docs/interpret/inputs.py OUT

OUT/frame.png        frame 40 of the sample clip (tests/data, UCF-101 "CricketShot")
OUT/clean/*.png      every 4th frame of the clip
OUT/noised/*.png     the same frames with Gaussian noise (sigma 25 grey levels, seed 0)
OUT/digits.gif       ten frames of two moving digits (held-out digits, seed 7), the task the
                     shipped ConvLSTM was trained on
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from zoo_plugins.convlstm.data import moving_digits

CLIP = Path(__file__).resolve().parents[2] / "tests" / "data" / "v_CricketShot_g04_c01_rgb.gif"


def clip_frames(out: Path) -> None:
    rng = np.random.default_rng(0)
    (out / "clean").mkdir(parents=True, exist_ok=True)
    (out / "noised").mkdir(parents=True, exist_ok=True)
    with Image.open(CLIP) as gif:
        for index, frame in enumerate(ImageSequence.Iterator(gif)):
            rgb = np.asarray(frame.convert("RGB"))
            if index == 40:
                Image.fromarray(rgb).save(out / "frame.png")
            if index % 4 == 0:
                noised = np.clip(rgb + rng.normal(0, 25, rgb.shape), 0, 255).astype(np.uint8)
                Image.fromarray(rgb).save(out / "clean" / f"{index:02d}.png")
                Image.fromarray(noised).save(out / "noised" / f"{index:02d}.png")


def digits_clip(out: Path) -> None:
    frames = moving_digits(1, 10, "held-out", seed=7)[0, :, 0]
    images = [Image.fromarray((f * 255).round().astype(np.uint8)) for f in frames]
    images[0].save(out / "digits.gif", save_all=True, append_images=images[1:], duration=100)


if __name__ == "__main__":
    target = Path(sys.argv[1])
    clip_frames(target)
    digits_clip(target)
