"""Test inputs written for real: videos through PyAV's encoders, images through Pillow."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

DATA = Path(__file__).parent / "data"
SAMPLE_CLIP = DATA / "v_CricketShot_g04_c01_rgb.gif"


def write_video(path: Path, frames: np.ndarray, fps: int, codec: str = "ffv1") -> Path:
    """uint8 RGB ``(T, H, W, 3)`` as a video file; ffv1 is lossless, mpeg4 and vp8 are not."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def numbered_frames(count: int, height: int = 32, width: int = 32) -> np.ndarray:
    """Frames whose every pixel holds the frame's index (times 2), to read the sampling back."""
    values = (np.arange(count, dtype=np.uint8) * 2)[:, None, None, None]
    return np.broadcast_to(values, (count, height, width, 3)).copy()


def sample_frames() -> np.ndarray:
    """The I3D sample clip's frames as Pillow decodes them: uint8 (79, 224, 224, 3)."""
    with Image.open(SAMPLE_CLIP) as gif:
        frames = []
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("RGB")))
    return np.stack(frames)


def write_image(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path
