"""Files through the predictor's test-time pre-processing, in batches of rows, on any function.

Validation and the linear mode's features see exactly what ``zoo predict`` feeds the model:
the card's :class:`~zoo.inference.preprocess.Preprocessor` (frame rate, clips, resize,
centre crop, normalisation) turns each file into rows (its clips, or the frames an image
model sees of a video), rows are packed into batches as the predictor packs them, and a
file's result is its rows' outputs. Decoding runs in DataLoader worker processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from zoo.architecture import Architecture
from zoo.cards import Card
from zoo.errors import InputError
from zoo.finetuning.report import Unreadable
from zoo.inference.decode import as_media
from zoo.inference.predictor import Chunk, RowBatches
from zoo.inference.preprocess import Prepared, Preprocessor


class PreparedFiles(Dataset):
    """Item ``i``: ``(i, Prepared)``, or ``(i, the one-line problem)`` for a file that fails."""

    def __init__(self, card: Card, architecture: Architecture, paths: Sequence[Path]) -> None:
        self.preprocessor = Preprocessor(card, architecture.inference)
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, Prepared | str]:
        try:
            return index, self.preprocessor(as_media(self.paths[index]))
        except InputError as error:
            return index, error.problem


@dataclass
class Runner:
    """How the rows are run: batch size, device, autocast dtype and loader workers."""

    batch_size: int
    device: torch.device
    autocast: torch.dtype | None
    workers: int

    def autocasting(self) -> AbstractContextManager:
        if self.autocast is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)


def run_rows(
    function: Callable[[Tensor], Tensor],
    files: PreparedFiles,
    indices: Sequence[int],
    runner: Runner,
) -> Iterator[tuple[int, Tensor | Unreadable]]:
    """``(index, function's float32 CPU output for the file's rows)`` per file of ``indices``,
    in order; a file that cannot be prepared gives ``(index, Unreadable)``."""
    loader = DataLoader(
        torch.utils.data.Subset(files, list(indices)),
        batch_size=None,
        num_workers=runner.workers,
        collate_fn=_as_is,
    )
    batches = RowBatches(runner.batch_size)
    waiting: Waiting = {}
    order: list[int] = []
    for index, item in loader:
        if isinstance(item, str):
            yield from _finished(batches.take(), function, runner, waiting, order)
            yield index, Unreadable(path=str(files.paths[index]), error=item)
            continue
        waiting[id(item)] = (index, item, [])
        order.append(id(item))
        for chunks in batches.add(item):
            yield from _finished(chunks, function, runner, waiting, order)
    yield from _finished(batches.take(), function, runner, waiting, order)


Waiting = dict[int, tuple[int, Prepared, list[Tensor]]]


def _finished(
    chunks: list[Chunk],
    function: Callable[[Tensor], Tensor],
    runner: Runner,
    waiting: Waiting,
    order: list[int],
) -> Iterator[tuple[int, Tensor]]:
    """Run one batch of chunks, then hand back every file whose rows are all done, in order."""
    if chunks:
        batch = torch.cat([item.tensor[start:stop] for item, start, stop in chunks])
        with torch.no_grad(), runner.autocasting():
            outputs = function(batch.to(runner.device)).float().cpu()
        offset = 0
        for item, start, stop in chunks:
            waiting[id(item)][2].append(outputs[offset : offset + stop - start])
            offset += stop - start
    while order and sum(len(part) for part in waiting[order[0]][2]) == waiting[order[0]][1].rows:
        index, _, parts = waiting.pop(order.pop(0))
        yield index, torch.cat(parts)


def _as_is(item: Any) -> Any:
    """With ``batch_size=None`` the loader hands over one item at a time, as it is."""
    return item


@dataclass
class Scores:
    """Sums over files, so that shards from several processes add up."""

    correct1: float = 0.0
    correct5: float = 0.0
    loss: float = 0.0
    count: float = 0.0

    def add(self, logits: Tensor, label: int) -> None:
        """One file: softmax probabilities averaged over its rows, as the predictor does."""
        probabilities = logits.softmax(-1).mean(0)
        top = probabilities.topk(min(5, probabilities.numel())).indices.tolist()
        self.correct1 += float(top[0] == label)
        self.correct5 += float(label in top)
        self.loss -= float(probabilities[label].clamp_min(1e-12).log())
        self.count += 1

    def as_tensor(self) -> Tensor:
        return torch.tensor(
            [self.correct1, self.correct5, self.loss, self.count], dtype=torch.float64
        )

    @classmethod
    def from_tensor(cls, values: Tensor) -> Scores:
        return cls(*(float(value) for value in values))

    def metrics(self) -> dict[str, float]:
        count = max(self.count, 1.0)
        return {
            "top1": 100 * self.correct1 / count,
            "top5": 100 * self.correct5 / count,
            "loss": self.loss / count,
        }
