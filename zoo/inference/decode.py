"""Files and arrays to RGB frames: PyAV for video, Pillow for still images.

PyAV bundles FFmpeg, so mp4, avi, webm, mkv and animated GIF decode with nothing else
installed (torchvision 0.29 no longer decodes video, torchcodec needs the system's FFmpeg
libraries, decord cannot read GIF). Every decoded input becomes one :class:`Media`: uint8
RGB frames ``(T, H, W, 3)`` with their timestamps, whatever it came from. Every way an
input can fail is an :class:`~zoo.errors.InputError` that names the input and what was
expected, so a run over many files reports it on one line and goes on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo.errors import InputError, ZooError
from zoo.media import IMAGE_SUFFIXES

if TYPE_CHECKING:
    from PIL import Image

CHANNELS = (1, 3, 4)
EXPECTED = "an image (jpg, png, ...) or a video (mp4, avi, webm, gif, ...)"
MAX_PIXELS_VARIABLE = "ZOO_MAX_IMAGE_PIXELS"


@dataclass(frozen=True)
class Media:
    """Frames and when they were shown: decoded already, or decoded on demand from a file.

    ``read(indices)`` gives uint8 RGB ``(len(indices), H, W, 3)``. A video file is only
    probed when opened (frame count, times, size); ``read`` decodes it once and keeps
    just the frames asked for, so ten clips of a long film cost ten clips of memory.
    ``times`` holds each frame's time in seconds (None when unknown, as for arrays);
    ``still`` marks a still image, which a video model refuses rather than treating as
    a one-frame video.
    """

    source: str
    count: int
    size: tuple[int, int]
    times: np.ndarray | None = None
    fps: float | None = None
    still: bool = False
    frames: np.ndarray | None = field(default=None, repr=False)
    path: Path | None = None

    def read(self, indices: np.ndarray) -> np.ndarray:
        if self.frames is not None:
            return self.frames[indices]
        if self.path is None:
            raise InputError(self.source, "has neither decoded frames nor a file to decode")
        return decode_frames(self.path, indices, self.source)

    def stream(self, wanted: np.ndarray) -> Iterator[np.ndarray]:
        """The frames at ``wanted`` (sorted, unique) one by one, in order, decoding once.

        Only the frame being handed over exists in memory at full resolution, so a caller
        that shrinks each frame as it comes holds a long video at the size it keeps.
        """
        if self.frames is not None:
            yield from (self.frames[index] for index in wanted)
        elif self.path is None:
            raise InputError(self.source, "has neither decoded frames nor a file to decode")
        else:
            yield from iter_frames(self.path, wanted, self.source)

    def describe(self) -> str:
        if self.still:
            return f"a still image of {self.size[1]}x{self.size[0]} pixels"
        rate = f" at {self.fps:g} fps" if self.fps else ""
        return f"a video of {self.count} frames{rate}"


def in_memory(frames: np.ndarray, source: str, still: bool, **timing: Any) -> Media:
    """Media of frames already decoded, uint8 RGB ``(T, H, W, 3)``."""
    return Media(
        source=source,
        count=len(frames),
        size=(frames.shape[1], frames.shape[2]),
        still=still,
        frames=frames,
        **timing,
    )


def as_media(item: Any) -> Media:
    """Any input the predictor accepts: a path, a PIL image, or a uint8 array or tensor
    (or media already opened)."""
    if isinstance(item, Media):
        return item
    if isinstance(item, str | PathLike):
        return read_media(Path(item))
    if type(item).__module__.startswith("PIL."):
        return media_from_pil(item, source=f"<PIL image {item.width}x{item.height}>")
    if hasattr(item, "numpy") and hasattr(item, "detach"):  # a torch tensor
        item = item.detach().cpu().numpy()
    if isinstance(item, np.ndarray):
        return media_from_array(item)
    raise InputError(
        f"<{type(item).__name__}>",
        "expected a file path, a PIL image, or a uint8 array of frames "
        "(H, W), (H, W, C) or (T, H, W, C)",
    )


def read_media(path: Path) -> Media:
    """Decode a file: a known image suffix with Pillow, anything else with PyAV."""
    if not path.exists():
        raise InputError(str(path), f"no such file; expected {EXPECTED}")
    if path.is_dir():
        raise InputError(str(path), f"is a folder; expected {EXPECTED}")
    if path.stat().st_size == 0:
        raise InputError(str(path), f"is empty (0 bytes); expected {EXPECTED}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return read_image(path)
    return read_video(path)


def read_image(path: Path) -> Media:
    from PIL import Image, UnidentifiedImageError

    try:
        with _pixel_limit(), Image.open(path) as image:
            image.load()
            return media_from_pil(image, source=str(path))
    except Image.DecompressionBombError as error:
        raise InputError(
            str(path),
            f"is too large to decode safely (Pillow: {error}); if you trust the file, raise "
            f"the limit with {MAX_PIXELS_VARIABLE}=PIXELS in the environment (or "
            "PIL.Image.MAX_IMAGE_PIXELS in Python)",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InputError(
            str(path), f"cannot decode as an image (Pillow: {error}); expected {EXPECTED}"
        ) from None


@contextmanager
def _pixel_limit() -> Iterator[None]:
    """Pillow's guard against decompression bombs, raised by ``ZOO_MAX_IMAGE_PIXELS`` if set.

    Pillow warns above ``MAX_IMAGE_PIXELS`` and refuses twice that many pixels; its limit
    is set for this one image and restored after.
    """
    from PIL import Image

    value = os.environ.get(MAX_PIXELS_VARIABLE)
    if value is None:
        yield
        return
    if not value.isdigit() or int(value) < 1:
        raise ZooError(f"{MAX_PIXELS_VARIABLE} is a number of pixels, found {value!r}")
    default, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, int(value)
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = default


def media_from_pil(image: Image.Image, source: str) -> Media:
    """A still image as one RGB frame; gray, palette and alpha images are converted to RGB."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return in_memory(rgb[None].copy(), source, still=True)


def read_video(path: Path) -> Media:
    """Probe the first video stream: its frames' presentation times and size, no decoding.

    The demuxer's packets carry the times; the pixels are decoded later, by ``read``.
    """
    with _decoding(path) as container:
        stream = _video_stream(container, path)
        stamps = [packet.pts for packet in container.demux(stream) if packet.size]
        rate = stream.average_rate or stream.guessed_rate
        size, time_base = (stream.height, stream.width), stream.time_base
    if not stamps:
        raise InputError(str(path), f"holds no video frames; expected {EXPECTED}")
    fps = float(Fraction(rate)) if rate else None
    return Media(
        source=str(path),
        count=len(stamps),
        size=size,
        times=_frame_times(stamps, time_base, fps),
        fps=fps,
        path=path,
    )


def decode_frames(path: Path, indices: np.ndarray, source: str) -> np.ndarray:
    """The frames at ``indices`` (presentation order) of a video, decoding it once."""
    wanted = np.unique(indices)
    kept = list(iter_frames(path, wanted, source))
    return np.stack(kept)[np.searchsorted(wanted, indices)]


def iter_frames(path: Path, wanted: np.ndarray, source: str) -> Iterator[np.ndarray]:
    """The frames at ``wanted`` (sorted, unique presentation-order indices), one at a time.

    The video is decoded once from its start; frames not wanted are decoded (a codec
    cannot skip them) but never converted to RGB arrays.
    """
    if not len(wanted):
        return
    given = 0
    decoded = 0
    with _decoding(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if decoded == wanted[given]:
                yield frame.to_ndarray(format="rgb24")
                given += 1
            decoded += 1
            if given == len(wanted):
                return
    raise InputError(
        source,
        f"stops after {decoded} decodable frames, but its container lists more "
        f"(frame {int(wanted[given])} was needed): the file is damaged",
    )


@contextmanager
def _decoding(path: Path) -> Iterator[Any]:
    """``av.open`` with every FFmpeg failure as one InputError naming the file."""
    import av

    try:
        with av.open(str(path)) as container:
            yield container
    except av.FFmpegError as error:
        cause = getattr(error, "strerror", None) or str(error)
        raise InputError(
            str(path), f"cannot decode as a video (PyAV: {cause}); expected {EXPECTED}"
        ) from None


def _video_stream(container: Any, path: Path) -> Any:
    if not container.streams.video:
        raise InputError(str(path), f"holds no video stream; expected {EXPECTED}")
    return container.streams.video[0]


def _frame_times(
    stamps: list[int | None], time_base: Fraction | None, fps: float | None
) -> np.ndarray | None:
    """Presentation times in seconds (packets come in decoding order, so sorted), or evenly
    spaced ones at ``fps`` when the container gives none."""
    known = [stamp for stamp in stamps if stamp is not None]
    if time_base is not None and len(known) == len(stamps):
        return np.sort(np.asarray([float(stamp * time_base) for stamp in known]))
    if fps:
        return np.arange(len(stamps), dtype=np.float64) / fps
    return None


def media_from_array(array: np.ndarray, source: str | None = None) -> Media:
    """uint8 channels-last pixels, as PyAV and Pillow give them.

    ``(H, W)`` or ``(H, W, C)`` is one image, ``(T, H, W, C)`` frames, with C = 1, 3 or 4;
    a 3-D array whose last axis is not a channel count is gray frames ``(T, H, W)``.
    """
    source = source or f"<array {'x'.join(map(str, array.shape))}>"
    if array.dtype != np.uint8:
        raise InputError(source, f"expected uint8 pixel values (0..255), found {array.dtype}")
    still = array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in CHANNELS)
    if array.ndim in (2, 3) and array.shape[-1] not in CHANNELS:
        array = array[..., None]
    frames = array[None] if still else array
    if frames.ndim != 4 or frames.shape[-1] not in CHANNELS:
        raise InputError(
            source,
            "expected uint8 (H, W), (H, W, C), (T, H, W) or (T, H, W, C) with C = 1, 3 or 4 "
            f"channels last, found shape {array.shape}",
        )
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    return in_memory(np.ascontiguousarray(frames[..., :3]), source, still=still)
