"""Which frames a model sees: the card's frame rate, clip length and test protocol, as indices.

Everything here maps a decoded video to integer frame indices ``(clips, length)``; no pixel
is touched, so the plan is cheap to compute and easy to test. The rules follow the card's
:class:`~zoo.cards.TemporalSampling`, and mmaction2's test-time ``SampleFrames`` for evenly
spaced clips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zoo.cards import InputSpec, TemporalSampling
from zoo.errors import InputError, ZooError
from zoo.inference.decode import Media

#: Frames an image classifier sees of a video (evenly spaced), as TSN's 25-segment test.
FRAMEWISE_FRAMES = 25
#: Slack when comparing timestamps, far below any frame interval.
TIME_EPS = 1e-6


def resample(media: Media, fps: float | None) -> np.ndarray:
    """Indices of the frames shown at ``fps``: each tick takes the frame on screen then.

    A video at a higher rate drops frames, one at a lower rate repeats them; without a
    target rate or timestamps every frame is kept.
    """
    count = media.count
    if fps is None or media.times is None or count == 1:
        return np.arange(count)
    times = media.times
    step = float(np.median(np.diff(times))) or 1.0 / fps
    duration = times[-1] - times[0] + step
    ticks = max(1, int(np.ceil(duration * fps - TIME_EPS)))  # ticks before the video ends
    targets = times[0] + np.arange(ticks) / fps
    indices = np.searchsorted(times, targets + TIME_EPS, side="right") - 1
    return np.clip(indices, 0, count - 1)


def plan_clips(
    available: int,
    spec: InputSpec,
    *,
    clips: int | None = None,
    lag: int = 0,
    source: str = "<input>",
    model: str = "the model",
) -> np.ndarray:
    """Windows ``(clips, length)`` of positions in ``range(available)`` for a video input.

    ``lag`` extra frames are added to each window for inputs derived from frame pairs
    (optical flow from T + 1 frames gives T fields). ``clips`` overrides the card's count.
    """
    protocol = spec.sampling_protocol
    frames = spec.frames or 1
    if protocol.protocol == "clips":
        length = frames + lag
        return _evenly_spaced(available, length, clips or protocol.clips, protocol, source, model)
    minimum = (protocol.min_frames or frames) + lag
    if available < minimum:
        window = _too_short(available, minimum, protocol, source, model, spec)
    elif protocol.protocol == "last":
        window = np.arange(max(0, available - frames - lag), available)
    else:
        window = np.arange(available)
    return window[None]


def plan_framewise(available: int, count: int | None = None) -> np.ndarray:
    """``count`` evenly spaced single frames ``(count, 1)`` for an image model on a video."""
    count = min(count or FRAMEWISE_FRAMES, available)
    return _offsets(available, 1, count)[:, None]


def _evenly_spaced(
    available: int,
    length: int,
    clips: int,
    protocol: TemporalSampling,
    source: str,
    model: str,
) -> np.ndarray:
    windows = _offsets(available, length, clips)[:, None] + np.arange(length)
    if available >= length:
        return windows
    if protocol.too_short == "error":
        raise InputError(
            source,
            f"has {available} frames; {model} takes clips of {length} frames "
            "and its card says not to loop or pad shorter videos",
        )
    if protocol.too_short == "loop":
        return windows % available
    return np.minimum(windows, available - 1)


def _offsets(available: int, length: int, clips: int) -> np.ndarray:
    """mmaction2's test-mode clip starts: the centres of ``clips`` equal segments."""
    if available < length:
        return np.zeros(clips, dtype=np.int64)
    interval = (available - length + 1) / clips
    return (np.arange(clips) * interval + interval / 2).astype(np.int64)


def _too_short(
    available: int,
    minimum: int,
    protocol: TemporalSampling,
    source: str,
    model: str,
    spec: InputSpec,
) -> np.ndarray:
    if protocol.too_short == "error":
        rate = f" at {spec.fps:g} fps" if spec.fps else ""
        raise InputError(
            source,
            f"has {available} frames{rate}; {model} needs at least {minimum} "
            f"(the shortest clip it takes)",
        )
    if protocol.too_short == "loop":
        return np.arange(minimum) % available
    return np.minimum(np.arange(minimum), available - 1)


@dataclass(frozen=True)
class TimeWindow:
    """One window of a whole video run in pieces: model frames ``[start, stop)``, of which
    the output steps ``[first, last)`` (counted in the window; ``last`` None: to its end)
    are kept."""

    start: int
    stop: int
    first: int
    last: int | None


def plan_time_windows(count: int, stride: int, context: int, limit: int) -> list[TimeWindow]:
    """Windows of at most ``limit`` frames whose kept output steps tile a ``count``-frame
    video's, each step kept from the one window where it sees no edge but the video's own.

    Windows start at multiples of ``stride`` and their lengths are congruent to ``count``
    modulo ``stride`` (see :class:`~zoo.architecture.TimeReduction`). Step ``t`` (of the
    whole video) is kept from a window ``[start, stop)`` when ``start`` is 0 or
    ``t * stride - context >= start``, and ``stop`` is ``count`` or
    ``(t + 1) * stride + context <= stop``.
    """
    length = limit - (limit - count) % stride
    if length < 2 * (context + stride):
        raise ZooError(
            f"windows of {limit} frames are too short for a network whose outputs need "
            f"{context} frames of context on each side at a stride of {stride}: give at "
            f"least {2 * (context + stride) + stride - 1} frames"
        )
    windows, start, kept = [], 0, 0  # kept: the first step no window has kept yet
    while True:
        stop = min(count, start + length)
        first = kept - start // stride
        if stop == count:
            windows.append(TimeWindow(start, stop, first, None))
            return windows
        kept_to = (stop - context) // stride  # steps t < kept_to end context before stop
        windows.append(TimeWindow(start, stop, first, kept_to - start // stride))
        kept = kept_to
        start = (kept * stride - context) // stride * stride
