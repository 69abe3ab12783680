"""What a fine-tuning run returns and writes: the epoch records, the report, the new card."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from zoo.architecture import NAME, Architecture
from zoo.cards import Card, Metric, Parent
from zoo.errors import ArgumentError, FinetuneError

#: The card shows top-5 only where it says something (more than five classes).
TOP5_FROM = 6


class Unreadable(BaseModel):
    """A file that was skipped, and why."""

    path: str
    error: str


class EpochRecord(BaseModel):
    """One line of history: training loss and accuracy, validation top-1/top-5 and loss."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_top1: float
    val_top5: float
    val_loss: float
    lr: float
    samples_per_second: float
    seconds: float

    def line(self, epochs: int) -> str:
        return (
            f"epoch {self.epoch}/{epochs}  train loss {self.train_loss:.4f} "
            f"acc {self.train_accuracy:.1f}%  val top1 {self.val_top1:.1f}% "
            f"top5 {self.val_top5:.1f}% loss {self.val_loss:.4f}  "
            f"{self.samples_per_second:.1f} samples/s  {self.seconds:.1f} s"
        )


class FinetuneReport(BaseModel):
    """The result of ``zoo.finetune``: the new model, how it was trained, how well it does."""

    model: str
    output: str
    files: list[str]
    parent: Parent
    mode: str
    classes: list[str]
    train_files: int
    val_files: int
    validation: str
    unreadable: list[Unreadable]
    epochs: int
    best_epoch: int
    metrics: dict[str, float]
    history: list[EpochRecord]
    resumed_from: int | None
    processes: int
    global_batch_size: int
    seconds: float


def card_name(name: str | None, output_name: str, parent: str) -> str:
    """``name``, else the output folder's name made a valid model name."""
    if name is not None:
        if not re.match(NAME, name):
            raise ArgumentError(f"a model name matches {NAME} (lowercase), found {name!r}")
        return name
    slug = re.sub(r"[^a-z0-9_.-]+", "-", output_name.lower()).strip("-._")
    return slug or f"{parent.rsplit('/', 1)[-1]}-finetuned"


def output_card(
    parent_card: Card,
    architecture: Architecture,
    *,
    name: str,
    classes: list[str],
    parent: Parent,
    metrics: dict[str, float],
    dataset: str,
    split: str,
    best_epoch: int,
    training: dict[str, Any],
    parameters: int,
) -> Card:
    """The parent's card with the new name, classes, outputs, metrics, parent and recipe."""
    old = getattr(
        architecture.validate_config(parent_card.config), architecture.features.classes_field
    )
    measured = [
        Metric(
            name=metric,
            value=round(metrics[metric], 2),
            dataset=dataset,
            split=split,
            source="measured",
            notes=f"zoo finetune, best of {training['epochs']} epochs (epoch {best_epoch}), "
            "the predictor's test-time pre-processing",
        )
        for metric in ("top1", "top5")
        if metric == "top1" or len(classes) >= TOP5_FROM
    ]
    data = {
        **parent_card.to_data(),
        "name": name,
        "aliases": [],
        "config": {**parent_card.config, architecture.features.classes_field: len(classes)},
        "summary": _summary(parent_card, training["mode"], dataset, classes, metrics, split),
        "outputs": _outputs(parent_card, old, len(classes)),
        "labels": classes,
        "weights": [],
        "metrics": [metric.model_dump() for metric in measured],
        "parameters": parameters,
        "datasets": list(dict.fromkeys([dataset, *parent_card.datasets])),
        "parent": parent.model_dump(),
        "training": training,
    }
    return Card.from_data(data, origin=f"fine-tuned card {name!r}")


def _outputs(card: Card, old: int | None, classes: int) -> list[dict]:
    """The parent's outputs, the class axis of the logits resized to the new classes."""
    outputs = [spec.model_dump(mode="json") for spec in card.outputs]
    for output in outputs:
        if output["shape"] == [old] or (old is None and len(output["shape"]) == 1):
            output["shape"] = [classes]
            output["description"] = f"class scores (logits) of the {classes} fine-tuned classes"
            return outputs
    raise FinetuneError(
        f"{card.name}: no output of shape [{old}] holds the class scores; cannot say what the "
        "fine-tuned model returns"
    )


def _summary(
    card: Card, mode: str, dataset: str, classes: list[str], metrics: dict, split: str
) -> str:
    shown = ", ".join(classes[:8]) + (", …" if len(classes) > 8 else "")
    how = "the classifier trained on frozen features" if mode == "linear" else "every layer"
    return (
        f"{card.name} fine-tuned on {dataset} ({how}): {len(classes)} classes ({shown}). "
        f"Validation top-1 {metrics['top1']:.1f}% on {split}, measured by zoo finetune."
    )
