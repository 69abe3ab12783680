"""Dense windows over a video: every ``stride`` frames, ``window`` frames long, at ``fps``.

The plan is frame indices only (no pixel is touched): the video is resampled to ``fps``
(each tick takes the frame on screen then, as the predictor samples), windows start
every ``stride`` ticks, and only whole windows are kept unless ``pad_last`` adds the tail,
padded as the card says for short clips (``loop`` repeats the tail, ``pad`` its last
frame). Each window reports its first and last frame in the *source* video's numbering
and their presentation times, so a row of features can be put back on the timeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zoo.cards import InputSpec
from zoo.errors import InputError, ZooError
from zoo.inference import sampling
from zoo.inference.decode import Media


@dataclass(frozen=True)
class WindowPlan:
    """``indices`` ``(rows, lag + window)`` into the media's frames, and where each window lies."""

    indices: np.ndarray
    first_frame: np.ndarray
    last_frame: np.ndarray
    first_time: np.ndarray
    last_time: np.ndarray
    fps: float | None

    @property
    def rows(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class WindowOptions:
    """Resolved window options: the card's defaults filled in."""

    window: int
    stride: int
    fps: float | None
    pad_last: bool


def resolve(
    spec: InputSpec,
    *,
    window: int | None,
    stride: int | None,
    fps: float | None,
    pad_last: bool,
    model: str,
) -> WindowOptions:
    """The card's clip length and frame rate where the caller gave none; a stride of one
    window (windows side by side). An image model takes windows of one frame."""
    video_model = "T" in spec.layout
    if not video_model and window not in (None, 1):
        raise ZooError(
            f"{model} is an image model: it takes one frame per row, not --window {window}"
        )
    window = window or (spec.frames if video_model else 1) or 1
    for name, value in (("window", window), ("stride", stride)):
        if value is not None and value < 1:
            raise ZooError(f"{name} must be at least 1 frame, found {value}")
    if fps is not None and not fps > 0:
        raise ZooError(f"fps must be positive, found {fps}")
    if pad_last and spec.sampling_protocol.too_short == "error":
        raise ZooError(
            f"--pad-last: {model}'s card says not to pad clips shorter than {window} frames "
            "(too_short: error)"
        )
    return WindowOptions(window, stride or window, fps or spec.fps, pad_last)


def plan(media: Media, options: WindowOptions, spec: InputSpec, lag: int) -> WindowPlan:
    """The windows of one decoded input; an image is one window of its one frame."""
    if media.still:
        zero = np.zeros(1, dtype=np.int64)
        return WindowPlan(zero[:, None], zero, zero, np.full(1, np.nan), np.full(1, np.nan), None)
    kept = sampling.resample(media, options.fps)
    starts = _starts(len(kept), options, lag, media.source)
    offsets = np.arange(lag + options.window)
    positions = starts[:, None] + offsets
    tail = positions[:, -1] >= len(kept)
    if tail.any():
        positions[tail] = _padded(positions[tail], len(kept), spec.sampling_protocol.too_short)
    indices = kept[positions]
    first, last = indices[:, lag], indices[:, -1]
    return WindowPlan(
        indices=indices,
        first_frame=first,
        last_frame=last,
        first_time=_times(media, first),
        last_time=_times(media, last),
        fps=options.fps or media.fps,
    )


def _starts(available: int, options: WindowOptions, lag: int, source: str) -> np.ndarray:
    length = options.window + lag
    full = np.arange(0, max(available - length + 1, 0), options.stride)
    following = full[-1] + options.stride if len(full) else 0
    if options.pad_last and following < available - lag:
        return np.append(full, following)
    if not len(full):
        rate = f" at {options.fps:g} fps" if options.fps else ""
        raise InputError(
            source,
            f"has {available} frames{rate}, fewer than one window of {length}; "
            "--pad-last (pad_last=True) pads it to one window",
        )
    return full


def _padded(positions: np.ndarray, available: int, too_short: str) -> np.ndarray:
    """Tail windows reaching past the video: the tail looped, or its last frame repeated."""
    if too_short == "loop":
        start = positions[:, :1]
        return start + (positions - start) % (available - start)
    return np.minimum(positions, available - 1)


def _times(media: Media, frames: np.ndarray) -> np.ndarray:
    if media.times is not None:
        return media.times[frames]
    if media.fps:
        return frames / media.fps
    return np.full(len(frames), np.nan)
