"""A generated corpus for the corpus-job tests: many short videos of several containers and
frame rates, images, three damaged files, and two files of one name in different folders;
plus a video whose frame k shows the number k, to read windows back exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from media import write_image, write_video
from PIL import Image

#: (folder, name, codec, fps, frames): 30 videos of four containers and three frame rates.
VIDEOS = [
    *[("clips", f"ffv1-{n:02d}.mkv", "ffv1", 25, 20 + n) for n in range(10)],
    *[("clips", f"mpeg4-{n:02d}.mp4", "mpeg4", 30, 24 + n) for n in range(8)],
    *[("more/deeper", f"vp8-{n:02d}.webm", "libvpx", 12, 18 + n) for n in range(6)],
    *[("more", f"gif-{n:02d}.gif", "gif", 25, 17 + n) for n in range(4)],
    ("clips", "same.mkv", "ffv1", 25, 20),
    ("more", "same.mkv", "ffv1", 30, 21),
]
IMAGES = [("stills", "a.png"), ("stills", "b.jpg"), ("stills/more", "c.png")]
DAMAGED = {
    "damaged/text.mp4": "cannot decode as a video",
    "damaged/truncated.mp4": "cannot decode as a video",
    "damaged/empty.mkv": "is empty (0 bytes)",
}
HEIGHT, WIDTH = 24, 32


def make_corpus(root: Path) -> Path:
    """Write the corpus under ``root``; returns it. Content is random but seeded."""
    rng = np.random.default_rng(7)
    for folder, name, codec, fps, count in VIDEOS:
        (root / folder).mkdir(parents=True, exist_ok=True)
        frames = rng.integers(0, 256, (count, HEIGHT, WIDTH, 3), dtype=np.uint8)
        if codec == "gif":
            write_gif(root / folder / name, frames, fps)
        else:
            write_video(root / folder / name, frames, fps=fps, codec=codec)
    for folder, name in IMAGES:
        (root / folder).mkdir(parents=True, exist_ok=True)
        write_image(root / folder / name, rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8))
    (root / "damaged").mkdir()
    (root / "damaged/text.mp4").write_text("this is not a video\n")
    truncated = write_video(
        root / "damaged/truncated.mp4", rng.integers(0, 256, (20, 24, 32, 3), np.uint8), 25, "mpeg4"
    )
    truncated.write_bytes(truncated.read_bytes()[:300])
    (root / "damaged/empty.mkv").write_bytes(b"")
    return root


def write_gif(path: Path, frames: np.ndarray, fps: int) -> Path:
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
    return path


def counted_frames(count: int, height: int = 16, width: int = 16) -> np.ndarray:
    """Frames whose pixels spell the frame's number k: red k % 256, green k // 256."""
    numbers = np.arange(count)
    values = np.stack([numbers % 256, numbers // 256, np.zeros_like(numbers)], axis=1)
    return np.broadcast_to(values[:, None, None, :], (count, height, width, 3)).astype(np.uint8)


def frame_numbers(pixels: np.ndarray) -> np.ndarray:
    """The numbers that :func:`counted_frames` wrote, read back from uint8 RGB pixels."""
    return pixels[..., 0, 0, 0].astype(np.int64) + 256 * pixels[..., 0, 0, 1].astype(np.int64)
