"""One inference interface for every model: files in, typed results out, driven by the card.

    >>> import zoo
    >>> predict = zoo.predictor("i3d-kinetics")
    >>> predict("clip.mp4").labels[0]             # Classification
    >>> predict(["a.jpg", "b.jpg"], topk=3)       # one result per input

A :class:`Predictor` is three halves a user can call one by one: :meth:`~Predictor.preprocess`
(decode, sample frames, resize, crop, normalise, as the card says), the backend (PyTorch or
onnxruntime, any device) and :meth:`~Predictor.postprocess` (by task). Calling it on many
inputs packs their rows into batches and decodes the next inputs in a background thread
while the model runs, so decoding overlaps compute.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from zoo.architecture import Architecture
from zoo.cards import Card
from zoo.errors import InputError, OptionError, ZooError, check_count
from zoo.inference import postprocess as post
from zoo.inference.decode import as_media
from zoo.inference.longvideo import MAX_FRAMES, LongVideo, run_in_windows, too_long
from zoo.inference.preprocess import Prepared, Preprocessor
from zoo.inference.render import write_picture
from zoo.inference.results import Result
from zoo.inference.transforms import from_layout

DEFAULT_BATCH_SIZE = 8
#: Inputs decoded ahead of the one the model is running.
PREFETCH = 2


class Predictor:
    """Pre-processing from the card, a backend, and post-processing by task."""

    def __init__(
        self,
        card: Card,
        architecture: Architecture,
        backend: Any,
        *,
        clips: int | None = None,
        max_frames: int = MAX_FRAMES,
        torch_backend: Callable[[], Any] | None = None,
    ) -> None:
        self.card = card
        self.architecture = architecture
        self.backend = backend
        self.preprocessor = Preprocessor(card, architecture.inference, clips=clips)
        self.max_frames = max_frames
        self._torch_backend = torch_backend
        self._modules_backend: Any = None

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value}" for key, value in self.backend.describe().items())
        return f"Predictor({self.card.name!r}, {settings})"

    @property
    def model(self) -> Any:
        """The ``nn.Module`` of a PyTorch backend (None for onnxruntime)."""
        return getattr(self.backend, "module", None)

    @property
    def normalizations(self) -> dict[str, Any]:
        """Per input, the step from pixels in [0, 1] to the model's input (an ``nn.Module``)."""
        return self.preprocessor.normalizations

    # --- the three halves ---------------------------------------------------------------

    def preprocess(self, item: Any, *, normalize: bool = True) -> Prepared:
        """One input (path, PIL image, uint8 array or tensor) -> the model's input tensors.

        With ``normalize=False`` the tensors are pixels in [0, 1] in the card's layout;
        ``self.normalize`` turns them into the model's input.
        """
        return self.preprocessor(as_media(item), normalize=normalize)

    def normalize(self, pixels: dict[str, Tensor]) -> dict[str, Tensor]:
        """Pixels in [0, 1] per input -> the model's inputs (value range, mean/std, order)."""
        return {name: self.normalizations[name](value) for name, value in pixels.items()}

    def forward(self, inputs: dict[str, Tensor]) -> Any:
        """The backend's raw outputs for a batch of model inputs."""
        return self.backend(inputs)

    def postprocess(
        self, outputs: Any, prepared: Prepared, *, topk: int = 5, threshold: float = 0.5
    ) -> Result:
        """Raw outputs of the model on ``prepared.inputs`` -> the input's typed result."""
        rows = post.standardize(outputs, prepared.inputs, self.card, self.architecture)
        return post.finish(rows, prepared, self.card, topk=topk, threshold=threshold)

    def torch_backend(self) -> Any:
        """A PyTorch backend of the same model: this one, or one loaded on first use for
        what only the module can do (a plugin's pooled or per-time features) when the
        predictor runs another backend."""
        if getattr(self.backend, "module", None) is not None:
            return self.backend
        if self._modules_backend is None:
            if self._torch_backend is None:
                raise ZooError(f"{self.card.name}: this predictor has no PyTorch module to run")
            self._modules_backend = self._torch_backend()
        return self._modules_backend

    # --- seeing what the model sees -----------------------------------------------------

    def unrender(
        self, tensor: Tensor, input_name: str | None = None, *, normalized: bool = True
    ) -> np.ndarray:
        """A model input (card layout) -> uint8 frames ``(rows, T, H, W, 3)``.

        Undoes the normalisation exactly (``normalized=False``: ``tensor`` holds pixels
        already), so the picture is the tensor the network gets. Gray inputs are shown
        gray; two-channel flow shows x in red and y in green.
        """
        name = input_name or self.card.inputs[0].name
        spec = self.card.input(name)
        pixels = tensor.detach().float().cpu()
        if normalized:
            pixels = self.normalizations[name].inverse(pixels)
        rows = from_layout(pixels, spec.layout).clamp(0, 1)
        channels = rows.shape[2]
        if channels == 1:
            rows = rows.expand(-1, -1, 3, -1, -1)
        elif channels == 2:
            rows = _with_blue(rows)
        uint8 = rows[:, :, :3].mul(255).round().byte()
        return uint8.permute(0, 1, 3, 4, 2).numpy()

    def show_input(self, prepared: Prepared, path: str | Path) -> list[Path]:
        """Write each model input of ``prepared`` as a contact sheet (or a GIF for ``.gif``).

        A model with several inputs gets one file per input, ``<stem>-<input>.<suffix>``.
        """
        path = Path(path)
        written = []
        fps = self.card.inputs[0].fps or 10.0
        for name, tensor in prepared.inputs.items():
            frames = self.unrender(tensor, name, normalized=prepared.normalized)
            target = path if len(prepared.inputs) == 1 else _suffixed(path, name)
            written.append(write_picture(frames, target, fps=fps))
        return written

    # --- many inputs --------------------------------------------------------------------

    def __call__(
        self,
        inputs: Any,
        *,
        topk: int = 5,
        threshold: float = 0.5,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> Result | list[Result]:
        """Results for one input, or a list of results for a list of inputs.

        The first input that cannot be used raises :class:`~zoo.errors.InputError`; use
        :meth:`stream` to get every result and every error in order instead.
        """
        single = not isinstance(inputs, list | tuple)
        results = []
        for outcome in self.stream(
            [inputs] if single else inputs, topk=topk, threshold=threshold, batch_size=batch_size
        ):
            if isinstance(outcome, InputError):
                raise outcome
            results.append(outcome)
        return results[0] if single else results

    def stream(
        self,
        inputs: Iterable[Any],
        *,
        topk: int = 5,
        threshold: float = 0.5,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> Iterator[Result | InputError]:
        """A result, or the input's error, per input in order; one bad input stops nothing."""
        check_call_options(topk=topk, threshold=threshold, batch_size=batch_size)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoo-decode") as pool:
            prepared = _prefetched(pool, self._prepare_or_error, inputs)
            yield from self._batched(prepared, batch_size, topk, threshold)

    def _prepare_or_error(self, item: Any) -> Prepared | LongVideo | InputError:
        """The input prepared, or (a whole video past ``max_frames``) left to run in windows."""
        try:
            media = as_media(item)
            return too_long(self.preprocessor, media, self.max_frames) or self.preprocess(media)
        except InputError as error:
            return error

    def _batched(
        self,
        items: Iterator[Prepared | LongVideo | InputError],
        batch_size: int,
        topk: int,
        threshold: float,
    ) -> Iterator[Result | InputError]:
        batches = RowBatches(batch_size)
        waiting = _Waiting()
        for item in items:
            if isinstance(item, InputError | LongVideo):
                yield from self._run(batches.take(), waiting, topk, threshold)
                yield item if isinstance(item, InputError) else self._long(item, topk, threshold)
                continue
            waiting.add(item)
            for chunks in batches.add(item):
                yield from self._run(chunks, waiting, topk, threshold)
        yield from self._run(batches.take(), waiting, topk, threshold)

    def _run(
        self, chunks: list[Chunk], waiting: _Waiting, topk: int, threshold: float
    ) -> Iterator[Result]:
        """Run one batch, hand its rows back to their inputs, finish every complete input."""
        if chunks:
            import torch

            batch = {
                name: torch.cat([item.inputs[name][start:stop] for item, start, stop in chunks])
                for name in chunks[0][0].inputs
            }
            rows = post.standardize(self.forward(batch), batch, self.card, self.architecture)
            offset = 0
            for item, start, stop in chunks:
                waiting.deliver(item, post.take_rows(rows, offset, offset + stop - start))
                offset += stop - start
        for item, rows in waiting.complete():
            yield post.finish(rows, item, self.card, topk=topk, threshold=threshold)

    def _long(self, video: LongVideo, topk: int, threshold: float) -> Result | InputError:
        """A whole video past ``max_frames``, run in windows (:mod:`zoo.inference.longvideo`)."""
        hints = self.architecture.inference.time_reduction
        try:
            backend = self.torch_backend() if hints is not None else None
            rows, summary = run_in_windows(
                video, self.preprocessor, backend, hints, self.max_frames
            )
        except InputError as error:
            return error
        return post.finish(rows, summary, self.card, topk=topk, threshold=threshold)


Chunk = tuple[Prepared, int, int]


def check_call_options(*, topk: Any, threshold: Any, batch_size: Any) -> None:
    """What a call takes, checked as the CLI checks its options: counts of at least 1 and a
    finite threshold in [0, 1] (NaN would pass every comparison and keep nothing)."""
    check_count("topk", topk)
    check_count("batch_size", batch_size)
    if isinstance(threshold, bool) or not isinstance(threshold, Real):
        raise OptionError(f"{{threshold}} must be a number, found {threshold!r}", "threshold")
    if not math.isfinite(float(threshold)) or not 0 <= float(threshold) <= 1:
        raise OptionError(
            f"{{threshold}} must be a score between 0 and 1, found {threshold!r}", "threshold"
        )


class RowBatches:
    """Consecutive inputs' rows packed into batches of at most ``size`` rows of one shape."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.chunks: list[Chunk] = []
        self.rows = 0

    def add(self, item: Prepared) -> Iterator[list[Chunk]]:
        """Batches that became full (or had to close for a new shape) while adding ``item``."""
        shape = _row_shape(item)
        start = 0
        while start < item.rows:
            if self.chunks and _row_shape(self.chunks[0][0]) != shape:
                yield self.take()
            stop = min(item.rows, start + self.size - self.rows)
            self.chunks.append((item, start, stop))
            self.rows += stop - start
            start = stop
            if self.rows == self.size:
                yield self.take()

    def take(self) -> list[Chunk]:
        chunks, self.chunks, self.rows = self.chunks, [], 0
        return chunks


class _Waiting:
    """Inputs whose rows are being computed, finished strictly in input order."""

    def __init__(self) -> None:
        self.queue: deque[Prepared] = deque()
        self.parts: dict[int, list[post.Rows]] = {}
        self.done: dict[int, int] = {}

    def add(self, item: Prepared) -> None:
        self.queue.append(item)
        self.parts[id(item)] = []
        self.done[id(item)] = 0

    def deliver(self, item: Prepared, rows: post.Rows) -> None:
        self.parts[id(item)].append(rows)
        self.done[id(item)] += post.row_count(rows)

    def complete(self) -> Iterator[tuple[Prepared, post.Rows]]:
        while self.queue and self.done[id(self.queue[0])] == self.queue[0].rows:
            item = self.queue.popleft()
            del self.done[id(item)]
            yield item, post.join_rows(self.parts.pop(id(item)))


def _row_shape(item: Prepared) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(tensor.shape[1:]) for tensor in item.inputs.values())


def _prefetched(pool: ThreadPoolExecutor, function: Any, items: Iterable[Any]) -> Iterator[Any]:
    """``function`` over ``items`` in order, computed up to ``PREFETCH`` items ahead."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) > PREFETCH:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _with_blue(rows: Tensor) -> Tensor:
    """Two channels (flow x, y) as red and green over a constant mid-level blue."""
    import torch

    return torch.cat([rows, torch.full_like(rows[:, :, :1], 0.5)], dim=2)


def _suffixed(path: Path, name: str) -> Path:
    return path.with_name(f"{path.stem}-{name}{path.suffix}")
