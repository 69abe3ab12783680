"""Decoded media -> the model's input tensors, every step read from the card.

The card says what the model eats (layout, clip length, frame rate and test protocol,
resize, crop, value range, mean/std, channel order); the architecture's inference hints
add only what a card cannot say, such as the function computing optical flow. Nothing
here reads model code, as torchvision's ``weights.transforms()`` and unlike a hand-written
script per model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from zoo.architecture import DerivedInput, InferenceHints, import_string
from zoo.cards import Card, InputSpec
from zoo.errors import InputError, OptionError, ZooError
from zoo.inference import sampling
from zoo.inference.decode import Media
from zoo.inference.transforms import (
    RESIZE_CHUNK,
    Geometry,
    Normalization,
    crop,
    frame_pixels,
    gather_rows,
    plan_geometry,
    to_layout,
)

T = TypeVar("T")
#: Decoded uint8 frames ``(T, H, W, 3)`` -> each input's pixels ``(T, C, h, w)``.
FrameTransform = Callable[[Tensor], dict[str, Tensor]]


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class Prepared:
    """One input, ready for the model: a tensor per card input, rows first.

    Rows are what the model runs as a batch: the clips of a video, the frames of a video
    given to an image classifier (``framewise``), or the one image. ``inputs`` are the
    model's inputs, or pixels in [0, 1] when prepared with ``normalize=False``.
    ``geometry`` maps the (first) input's pixels back to the original image.
    """

    source: str
    inputs: dict[str, Tensor]
    geometry: Geometry
    rows: int
    frames_used: int
    framewise: bool = False
    note: str = ""
    normalized: bool = True

    @property
    def tensor(self) -> Tensor:
        """The input tensor of a single-input model."""
        if len(self.inputs) != 1:
            raise ValueError(
                f"this model takes {len(self.inputs)} inputs ({', '.join(self.inputs)}); "
                "use .inputs[name]"
            )
        return next(iter(self.inputs.values()))


def check_clips(card: Card, clips: int | None) -> None:
    """Refuse a clip count for a model that averages no clips (or frames): it would be ignored.

    Clips apply to a video model that samples several (``temporal.protocol: clips``) and
    to an image classifier run frame by frame on a video.
    """
    if clips is None:
        return
    spec = card.inputs[0]
    if spec.frames is None:
        if card.task == "image-classification":
            return
        sees = f"takes still images ({card.task})"
    else:
        protocol = spec.sampling_protocol.protocol
        if protocol == "clips":
            return
        sees = {
            "whole": "sees the whole video as one clip",
            "last": f"sees the last {spec.frames} frames",
        }[protocol]
        sees = f"is a video model that {sees}"
    raise OptionError(
        f"{{clips}} sets how many clips (or frames) are averaged, and {card.name} {sees}; "
        "drop {clips}",
        "clips",
    )


def check_max_frames(card: Card, max_frames: int | None) -> None:
    """Refuse a longest clip for a model that does not run whole videos: it would be ignored."""
    if max_frames is None:
        return
    spec = card.inputs[0]
    if spec.frames is not None and spec.sampling_protocol.protocol == "whole":
        return
    raise OptionError(
        f"{{max_frames}} is the longest clip a whole-video model runs at once, and "
        f"{card.name} does not run whole videos; drop {{max_frames}}",
        "max_frames",
    )


class Preprocessor:
    """The card's pre-processing as a callable: ``Media -> Prepared``."""

    def __init__(self, card: Card, hints: InferenceHints, *, clips: int | None = None) -> None:
        check_clips(card, clips)
        self.card = card
        self.specs = list(card.inputs)
        self.derived = {
            spec.name: hints.derived_inputs[spec.channel_order]
            for spec in self.specs
            if spec.channel_order in hints.derived_inputs
        }
        self._check_derived(hints)
        self.lag = max((derived.lag for derived in self.derived.values()), default=0)
        self.clips = clips
        self.normalizations = {spec.name: Normalization(spec) for spec in self.specs}
        self.video = "T" in self.specs[0].layout

    def _check_derived(self, hints: InferenceHints) -> None:
        for spec in self.specs:
            if spec.channel_order == "flow-xy" and spec.name not in self.derived:
                raise ZooError(
                    f"{self.card.name}: input {spec.name!r} is optical flow, but architecture "
                    f"{self.card.architecture!r} declares no function computing flow-xy "
                    f"(InferenceHints.derived_inputs has {sorted(hints.derived_inputs)})",
                )

    def __call__(self, media: Media, *, normalize: bool = True) -> Prepared:
        windows, note = self._windows(media)
        unique, positions = np.unique(windows, return_inverse=True)
        geometries = self.geometries(media)
        pixels = self._decoded(media, unique, geometries)
        return self.assemble(
            media,
            pixels,
            positions.reshape(windows.shape),
            geometries,
            normalize=normalize,
            note=note,
            frames_used=len(unique),
        )

    def geometries(self, media: Media) -> dict[str, Geometry]:
        """Each input's resize and crop for frames of this media's size."""
        return {
            spec.name: plan_geometry(spec, *media.size, source=media.source) for spec in self.specs
        }

    def frame_transform(self, geometries: dict[str, Geometry]) -> FrameTransform:
        """uint8 frames ``(T, H, W, 3)`` -> each input's pixels ``(T, C, h, w)``, as kept.

        A computed input (optical flow) keeps whole resized frames, cropped after the
        computation; every other input keeps only its crop.
        """

        def transform(frames: Tensor) -> dict[str, Tensor]:
            return {
                spec.name: frame_pixels(
                    frames, spec, geometries[spec.name], cropped=spec.name not in self.derived
                )
                for spec in self.specs
            }

        return transform

    def _decoded(
        self, media: Media, unique: np.ndarray, geometries: dict[str, Geometry]
    ) -> dict[str, Tensor]:
        """The frames at ``unique`` as each input's pixels, decoded and shrunk a chunk at a time."""
        transform = self.frame_transform(geometries)
        parts: dict[str, list[Tensor]] = {spec.name: [] for spec in self.specs}
        for chunk in chunked(media.stream(unique), RESIZE_CHUNK):
            for name, pixels in transform(torch.from_numpy(np.stack(chunk))).items():
                parts[name].append(pixels)
        return {name: torch.cat(chunks) for name, chunks in parts.items()}

    def assemble(
        self,
        media: Media,
        pixels: dict[str, Tensor],
        positions: np.ndarray,
        geometries: dict[str, Geometry],
        *,
        normalize: bool = True,
        note: str = "",
        frames_used: int | None = None,
    ) -> Prepared:
        """Rows ``positions`` ``(rows, length)`` of each input's pixels -> the model's inputs."""
        inputs = {}
        for spec in self.specs:
            rows = self._rows(spec, pixels[spec.name], positions, geometries[spec.name])
            inputs[spec.name] = self.normalizations[spec.name](rows) if normalize else rows
        return Prepared(
            source=media.source,
            inputs=inputs,
            geometry=geometries[self.specs[0].name],
            rows=len(positions),
            frames_used=len(np.unique(positions)) if frames_used is None else frames_used,
            framewise=not self.video and not media.still,
            note=note,
            normalized=normalize,
        )

    def _windows(self, media: Media) -> tuple[np.ndarray, str]:
        """Frame indices ``(rows, length)`` into the media's frames, and how they were chosen."""
        spec = self.specs[0]
        if self.video:
            if media.still:
                raise InputError(media.source, self.wants_video())
            kept = sampling.resample(media, spec.fps)
            windows = sampling.plan_clips(
                len(kept),
                spec,
                clips=self.clips,
                lag=self.lag,
                source=media.source,
                model=self.card.name,
            )
            return kept[windows], self._describe(windows, spec)
        if media.still:
            return np.zeros((1, 1), dtype=np.int64), ""
        if self.card.task != "image-classification":
            raise InputError(
                media.source,
                f"is {media.describe()}; {self.card.name} ({self.card.task}) takes still images",
            )
        windows = sampling.plan_framewise(media.count, self.clips)
        return windows, (
            f"frame-wise: the image classifier ran on {len(windows)} evenly spaced frames "
            "and their softmax probabilities were averaged over time"
        )

    def wants_video(self) -> str:
        spec = self.specs[0]
        rate = f" at {spec.fps:g} fps" if spec.fps else ""
        return (
            f"is a still image; {self.card.name} is a video model ({spec.layout}, clips of "
            f"{spec.frames} frames{rate}) and takes a video file or frames (T, H, W, 3)"
        )

    def _describe(self, windows: np.ndarray, spec: InputSpec) -> str:
        rate = f" at {spec.fps:g} fps" if spec.fps else ""
        frames = windows.shape[1] - self.lag
        protocol = spec.sampling_protocol.protocol
        if protocol == "whole":
            return f"whole video: one clip of {frames} frames{rate}"
        if protocol == "last":
            return f"the last {frames} frames{rate}"
        clips = len(windows)
        if clips == 1:
            return f"one clip of {frames} frames{rate} from the middle of the video"
        return (
            f"{clips} evenly spaced clips of {frames} frames{rate}; "
            "softmax probabilities averaged over the clips"
        )

    def _rows(
        self, spec: InputSpec, pixels: Tensor, positions: np.ndarray, geometry: Geometry
    ) -> Tensor:
        """Pixels in [0, 1] of one input, in its layout: ``(rows, ...)``."""
        if spec.name in self.derived:
            rows = self._derived(self.derived[spec.name], spec, pixels, positions, geometry)
        else:
            index = torch.from_numpy(positions[:, self.lag :] if self.video else positions)
            rows = gather_rows(pixels, index)
            if not self.video:
                rows = rows[:, 0]
        return to_layout(rows, spec.layout)

    def _derived(
        self,
        derived: DerivedInput,
        spec: InputSpec,
        resized: Tensor,
        positions: np.ndarray,
        geometry: Geometry,
    ) -> Tensor:
        """A computed input (optical flow) per window, cropped, as pixels ``(rows, T, C, H, W)``."""
        function = import_string(derived.function)
        uint8 = resized.mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        skip = self.lag - derived.lag
        values = [
            torch.from_numpy(np.asarray(function(uint8[window[skip:]]))) for window in positions
        ]
        stacked = crop(torch.stack(values), geometry)  # (rows, C, T, H, W)
        pixels = self.normalizations[spec.name].values_to_pixels(stacked)
        return pixels.transpose(1, 2)
