"""Training batches: augmented files (full mode) or cached feature rows (linear mode).

Both go through a :class:`~torch.utils.data.distributed.DistributedSampler` (one process:
a world of one), so the data order of an epoch is the permutation drawn from (seed,
epoch) in every case, and N processes at batch B see exactly the batches one process
sees at batch N x B. Incomplete last batches are dropped, as timm does, so that every
step averages the same number of samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from zoo.errors import InputError
from zoo.finetuning import distributed
from zoo.finetuning.augment import TrainTransform, sample_generator
from zoo.finetuning.report import Unreadable
from zoo.inference.decode import as_media


class AugmentedFiles(Dataset):
    """Item ``i``: the augmented input of file ``i`` in the current epoch and its label."""

    def __init__(
        self, paths: Sequence[Path], labels: Sequence[int], transform: TrainTransform, seed: int
    ) -> None:
        self.paths = list(paths)
        self.labels = list(labels)
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor | None, int, Unreadable | None]:
        rng = sample_generator(self.seed, self.epoch, index)
        try:
            return self.transform(as_media(self.paths[index]), rng), self.labels[index], None
        except InputError as error:
            return (
                None,
                self.labels[index],
                Unreadable(path=str(self.paths[index]), error=error.problem),
            )


def collate_files(
    items: list[tuple[Tensor | None, int, Unreadable | None]],
) -> tuple[Tensor, Tensor, list[Unreadable]]:
    """Stack the inputs that were read; files that failed are handed on to be counted."""
    kept = [(tensor, label) for tensor, label, _ in items if tensor is not None]
    failed = [problem for _, _, problem in items if problem is not None]
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.int64), failed
    inputs = torch.stack([tensor for tensor, _ in kept])
    return inputs, torch.tensor([label for _, label in kept]), failed


def collate_rows(items: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, list[Unreadable]]:
    features, labels = zip(*items, strict=True)
    return torch.stack(features), torch.stack(labels), []


def feature_rows(features: Tensor, labels: Tensor) -> TensorDataset:
    return TensorDataset(features, labels)


def epoch_loader(
    dataset: Dataset,
    *,
    epoch: int,
    batch_size: int,
    seed: int,
    workers: int,
    pin_memory: bool,
) -> DataLoader:
    """This process's batches of one epoch."""
    if isinstance(dataset, AugmentedFiles):
        dataset.epoch = epoch
    sampler: DistributedSampler = DistributedSampler(
        dataset,
        num_replicas=distributed.world(),
        rank=distributed.rank(),
        shuffle=True,
        seed=seed,
        drop_last=True,
    )
    sampler.set_epoch(epoch)
    files = isinstance(dataset, AugmentedFiles)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=workers if files else 0,
        collate_fn=collate_files if files else collate_rows,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed * 100_003 + epoch),
    )


def steps_per_epoch(samples: int, batch_size: int) -> int:
    """Optimizer steps in one epoch, every process taking ``batch_size`` of each batch."""
    per_process = samples // distributed.world()
    return per_process // batch_size
