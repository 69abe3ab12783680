"""A video's frames for a run of windows, decoded once and held only while a window needs them.

Dense features (a window every few frames over an hour of video) and a whole video too long
to run at once both need the frames of many windows, in order. Decoding the video once per
window would be quadratic; decoding it whole would hold every frame. :class:`WindowFrames`
decodes the frames the windows use in one pass, shrinks each chunk to the model's size as
it comes (the card's resize and crop), and lets a frame go as soon as the last window that
uses it has been handed over. Memory is then bounded by the frames of the windows in
flight, whatever the video's length; :attr:`WindowFrames.peak` records the most frames
ever held, so a test can prove it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from zoo.inference.decode import Media
from zoo.inference.preprocess import FrameTransform, Prepared, Preprocessor, chunked
from zoo.inference.transforms import RESIZE_CHUNK


class WindowFrames:
    """Each window's frames, as a list of each input's pixels ``(C, h, w)``, in window order.

    ``windows`` are index arrays into the media's frames; each may repeat or skip frames
    (resampling to a frame rate, padding a tail), but a window may only be handed over
    once every frame before its own first frame that an earlier window used is done with.
    Frames are decoded a chunk at a time and transformed together; the frames held are
    views of their chunk's pixels (no copy), so besides them only one chunk exists at the
    decoded size.
    """

    def __init__(
        self, media: Media, windows: Sequence[np.ndarray], transform: FrameTransform
    ) -> None:
        self.windows = windows
        self.transform = transform
        self.last_use = _last_use(windows)
        needed = np.array(sorted(self.last_use), dtype=np.int64)
        frames = zip(needed.tolist(), media.stream(needed), strict=True)
        self._decoded = chunked(frames, RESIZE_CHUNK)
        self.held: dict[int, dict[str, Tensor]] = {}
        self.highest = -1
        self.peak = 0

    def __iter__(self) -> Iterator[list[dict[str, Tensor]]]:
        for number, window in enumerate(self.windows):
            self._decode_through(int(window.max()))
            yield [self.held[index] for index in window.tolist()]
            for index in [index for index in self.held if self.last_use[index] <= number]:
                del self.held[index]

    def _decode_through(self, index: int) -> None:
        while self.highest < index:
            chunk = next(self._decoded)
            numbers = [number for number, _ in chunk]
            frames = torch.from_numpy(np.stack([frame for _, frame in chunk]))
            pixels = self.transform(frames)
            for position, number in enumerate(numbers):
                self.held[number] = {name: value[position] for name, value in pixels.items()}
            self.highest = numbers[-1]
            self.peak = max(self.peak, len(self.held))


def _last_use(windows: Sequence[np.ndarray]) -> dict[int, int]:
    """For each frame any window uses, the number of the last window using it."""
    last: dict[int, int] = {}
    for number, window in enumerate(windows):
        for index in np.unique(window).tolist():
            last[index] = number
    return last


def window_batches(
    preprocessor: Preprocessor,
    media: Media,
    windows: Sequence[np.ndarray],
    *,
    batch_size: int,
    normalize: bool = True,
    frames: WindowFrames | None = None,
) -> Iterator[Prepared]:
    """``windows`` (frame indices, each of the model's clip length plus its lag) as the
    model's inputs, ``batch_size`` windows per :class:`Prepared`, decoded in one pass.

    Pass ``frames`` (a :class:`WindowFrames` over the same windows) to see what was held.
    """
    geometries = preprocessor.geometries(media)
    frames = frames or WindowFrames(media, windows, preprocessor.frame_transform(geometries))
    for batch in chunked(iter(frames), batch_size):
        lengths = {len(window) for window in batch}
        if len(lengths) > 1:
            raise ValueError(f"windows of one batch must have one length, found {lengths}")
        length = lengths.pop()
        pixels = {
            name: torch.stack([frame[name] for window in batch for frame in window])
            for name in batch[0][0]
        }
        positions = np.arange(len(batch) * length).reshape(len(batch), length)
        prepared = preprocessor.assemble(media, pixels, positions, geometries, normalize=normalize)
        batch.clear()  # only the model's inputs (and the frames held) live on while it runs
        del pixels
        yield prepared
