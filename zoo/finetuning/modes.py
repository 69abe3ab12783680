"""The two ways to train: every weight on augmented files, or a linear head on frozen features.

Each mode gives the epoch loop the same five things: the module it trains, its batches of
an epoch, its validation scores, the weights to checkpoint, and the finished model with
the metrics its card publishes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from zoo.architecture import Architecture
from zoo.cards import Card
from zoo.finetuning import distributed, loaders, target
from zoo.finetuning.augment import TrainTransform
from zoo.finetuning.features import (
    PooledRows,
    cached_pooled_features,
    file_facts,
    pooled_features,
)
from zoo.finetuning.loop import first_output
from zoo.finetuning.options import FinetuneOptions
from zoo.finetuning.plan import DataPlan
from zoo.finetuning.report import Unreadable
from zoo.finetuning.rows import PreparedFiles, Runner, Scores, run_rows

#: Added to each feature's variance before dividing by its square root (BatchNorm's eps).
STANDARDIZE_EPS = 1e-6


@dataclass
class Validation:
    """The validation files through the predictor's pre-processing, and their labels."""

    files: PreparedFiles
    labels: list[int]
    runner: Runner
    unreadable: list[Unreadable] = field(default_factory=list)

    def scores(self, model: nn.Module, output_names: list[str]) -> dict[str, float]:
        """Top-1, top-5 and loss of ``model`` (its real forward), over every process's share."""
        model.eval()

        def logits(batch: Tensor) -> Tensor:
            return first_output(model(batch), output_names)

        scores = Scores()
        found = run_rows(
            logits, self.files, distributed.shard(range(len(self.labels))), self.runner
        )
        for index, result in found:
            if isinstance(result, Unreadable):
                self.unreadable.append(result)
            else:
                scores.add(result, self.labels[index])
        return Scores.from_tensor(distributed.total(scores.as_tensor())).metrics()


class FullMode:
    """Every weight (after ``freeze_until``) trained on augmented files."""

    def __init__(
        self,
        model: nn.Module,
        card: Card,
        architecture: Architecture,
        plan: DataPlan,
        options: FinetuneOptions,
        validation: Validation,
    ) -> None:
        self.model = model
        self.frozen = (
            target.freeze_until(model, options.freeze_until) if options.freeze_until else []
        )
        transform = TrainTransform(card, options.crop_scale, options.hflip)
        paths = [sample.path for sample in plan.train]
        self.dataset: Dataset = loaders.AugmentedFiles(
            paths, plan.labels(plan.train), transform, options.seed
        )
        self.samples = len(paths)
        self.validation = validation
        self.output_names = list(architecture.export.output_names)

    @property
    def trained(self) -> nn.Module:
        return self.model

    def train(self) -> None:
        self.model.train()
        target.frozen_modules_to_eval(self.model)

    def scores(self) -> dict[str, float]:
        return self.validation.scores(self.model, self.output_names)

    def finished(
        self, best: dict[str, Tensor], metrics: dict[str, float]
    ) -> tuple[nn.Module, dict]:
        self.model.load_state_dict(best)
        return self.model.eval(), metrics


class LinearMode:
    """The backbone frozen; its pooled features computed once; a linear head trained on them."""

    def __init__(
        self,
        model: nn.Module,
        card: Card,
        architecture: Architecture,
        plan: DataPlan,
        options: FinetuneOptions,
        validation: Validation,
        folder: Path,
        facts: dict,
    ) -> None:
        self.model = model.eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        self.architecture = architecture
        self.validation = validation
        train = [sample.path for sample in plan.train]
        val = [sample.path for sample in plan.val]
        runner = validation.runner

        def compute(paths: list[Path]) -> Callable[[], PooledRows]:
            return lambda: pooled_features(model, card, architecture, paths, runner)

        self.train_rows = cached_pooled_features(
            folder, "train", {**facts, "files": file_facts(train)}, compute(train)
        )
        self.val_rows = cached_pooled_features(
            folder, "val", {**facts, "files": file_facts(val)}, compute(val)
        )
        self.unreadable = self.train_rows.unreadable + self.val_rows.unreadable
        train_labels = torch.tensor(plan.labels(plan.train))[self.train_rows.owners]
        features = self.train_rows.features
        # Standardised features (MAE's linear probe puts a BatchNorm without affine before
        # the head): one learning rate suits every backbone; folded into the classifier after.
        self.mean = features.mean(0)
        self.std = (features.var(0, unbiased=False) + STANDARDIZE_EPS).sqrt()
        classifier = target.classifier_module(model, architecture)
        self.head = target.linear_head(classifier, features.shape[1], len(plan.classes)).to(
            validation.runner.device
        )
        if self.head.bias is None:  # no bias to fold a shift into: scale only
            self.mean = torch.zeros_like(self.mean)
        self.dataset = loaders.feature_rows(self.standardized(features), train_labels)
        self.samples = len(train_labels)

    def standardized(self, features: Tensor) -> Tensor:
        return (features - self.mean) / self.std

    @property
    def trained(self) -> nn.Module:
        return self.head

    def train(self) -> None:
        self.head.train()

    def scores(self) -> dict[str, float]:
        """The head on each validation file's feature rows, averaged as the predictor does."""
        self.head.eval()
        rows = self.val_rows
        device = self.validation.runner.device
        with torch.no_grad():
            logits = self.head(self.standardized(rows.features).to(device)).float().cpu()
        scores = Scores()
        for owner in rows.owners.unique().tolist():
            scores.add(logits[rows.owners == owner], self.validation.labels[owner])
        return scores.metrics()

    def finished(
        self, best: dict[str, Tensor], metrics: dict[str, float]
    ) -> tuple[nn.Module, dict]:
        """The best head in the model's own classifier, measured through the model's real
        forward (the features' pooling and the classifier's may differ, as I3D's do)."""
        self.head.load_state_dict(best)
        folded = target.fold_standardization(self.head, self.mean, self.std)
        target.install_head(target.classifier_module(self.model, self.architecture), folded)
        output_names = list(self.architecture.export.output_names)
        return self.model, self.validation.scores(self.model, output_names)


def loader_for(
    mode: FullMode | LinearMode, epoch: int, options: FinetuneOptions, device: torch.device
) -> DataLoader:
    return loaders.epoch_loader(
        mode.dataset,
        epoch=epoch,
        batch_size=options.batch_size,
        seed=options.seed,
        workers=options.workers,
        pin_memory=device.type == "cuda",
    )
