"""A whole video too long to run at once, run in windows that give the whole-video answer.

A card whose test protocol is ``whole`` (I3D) classifies a video as one clip, and a clip's
activations grow with its length: a few minutes of video exhaust a large machine. Past the
predictor's ``max_frames``, the video runs in overlapping windows (decoded once, frames
shrunk as they come, :mod:`zoo.inference.streaming`) and the network's per-time outputs
are combined as the network itself combines them, which its plugin declares
(:class:`~zoo.architecture.TimeReduction`). Each kept output sees exactly the frames, and
the padding, it sees in the whole video, so the result is the whole-video result up to
the order of floating-point additions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from zoo.architecture import TimeReduction, import_string
from zoo.errors import InputError
from zoo.inference import sampling
from zoo.inference.decode import Media
from zoo.inference.preprocess import Prepared, Preprocessor
from zoo.inference.streaming import WindowFrames, window_batches

#: The longest whole-video clip run at once, in model frames; longer videos run in windows.
#: Measured with I3D on a 720p video (benchmarks/bench_corpus.py): peak RSS 1.87 GiB with
#: windows of 192 frames, 2.05 GiB with 256. Each window after the first adds only the
#: steps its context leaves (I3D: 10 of its 23 at 192 frames), so a larger ``max_frames``
#: computes less twice when memory allows.
MAX_FRAMES = 192


@dataclass(frozen=True)
class LongVideo:
    """A decoded-on-demand video that will run in windows, and its frames at the card's rate."""

    media: Media
    kept: np.ndarray


def too_long(preprocessor: Preprocessor, media: Media, max_frames: int) -> LongVideo | None:
    """The video as a :class:`LongVideo` when the card runs it whole and it has more than
    ``max_frames`` model frames (frames at the card's rate, less the derived inputs' lag)."""
    spec = preprocessor.specs[0]
    if media.still or not preprocessor.video or spec.sampling_protocol.protocol != "whole":
        return None
    kept = sampling.resample(media, spec.fps)
    return LongVideo(media, kept) if len(kept) - preprocessor.lag > max_frames else None


def run_in_windows(
    video: LongVideo,
    preprocessor: Preprocessor,
    backend: Any,
    hints: TimeReduction | None,
    max_frames: int,
) -> tuple[Tensor, Prepared]:
    """The network's output for the whole video ``(1, ...)``, and what the result reports."""
    media, lag = video.media, preprocessor.lag
    count = len(video.kept) - lag
    if hints is None:
        raise InputError(
            media.source,
            f"has {count} frames at the card's rate, more than max_frames={max_frames} run "
            f"whole, and {preprocessor.card.architecture!r} declares no "
            "InferenceHints.time_reduction to run it in windows; raise max_frames "
            "(--max-frames) to run it whole",
        )
    plan = sampling.plan_time_windows(count, hints.stride, hints.context, max_frames)
    windows = [video.kept[window.start : window.stop + lag] for window in plan]
    per_time = import_string(hints.per_time)
    transform = preprocessor.frame_transform(preprocessor.geometries(media))
    frames = WindowFrames(media, windows, transform)
    kept: list[Tensor] = []
    batches = window_batches(preprocessor, media, windows, batch_size=1, frames=frames)
    for window, prepared in zip(plan, batches, strict=True):
        outputs = backend.call(per_time, prepared.inputs).float().cpu()
        kept.append(outputs[:, window.first : window.last])
    steps = sum(part.shape[1] for part in kept)
    combined = _reduce(torch.cat(kept, dim=1), hints.reduce)
    rate = f" at {preprocessor.specs[0].fps:g} fps" if preprocessor.specs[0].fps else ""
    note = (
        f"whole video: one clip of {count} frames{rate}, run in {len(plan)} overlapping "
        f"windows of at most {max_frames} frames whose per-time outputs were combined "
        f"({hints.reduce} of {steps} steps) as the network combines them over the whole video"
    )
    summary = Prepared(
        source=media.source,
        inputs={},
        geometry=preprocessor.geometries(media)[preprocessor.specs[0].name],
        rows=1,
        frames_used=len(np.unique(video.kept)),
        note=note,
    )
    return combined, summary


def _reduce(outputs: Tensor, reduce: str) -> Tensor:
    if reduce == "mean":
        return outputs.mean(dim=1)
    if reduce == "sum":
        return outputs.sum(dim=1)
    return outputs.amax(dim=1)
