"""Raw model outputs -> typed results, by task.

Two steps. :func:`standardize` turns whatever the backend returned (a tensor, a tuple or
dict of named outputs, onnxruntime's list of arrays, a detector's per-image dicts) into the
task's standard form, row by row, so that a batch can be split back into its inputs.
:func:`finish` turns one input's rows into its result: softmax probabilities averaged over
clips or frames and the top k labels; detections above the threshold with boxes in the
original image's pixels; forecast frames in the input's value range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from zoo.architecture import Architecture, import_string
from zoo.cards import Card
from zoo.errors import ZooError
from zoo.inference.preprocess import Prepared
from zoo.inference.results import (
    Classification,
    Detection,
    Detections,
    Features,
    Forecast,
    LabelScore,
    Result,
)
from zoo.inference.transforms import from_layout

CLASSIFICATION = ("image-classification", "video-classification")
DETECTION_KEYS = ("boxes", "scores", "labels")

#: A task's standard rows: a tensor (N, ...), per-image detection dicts, or named tensors.
Rows = Tensor | list[dict[str, Tensor]] | dict[str, Tensor]


def named_outputs(raw: Any, names: Sequence[str]) -> dict[str, Tensor] | list[dict[str, Tensor]]:
    """Outputs by name (ExportHints.output_names order); per-image dicts pass through."""
    if isinstance(raw, Tensor | np.ndarray):
        return {names[0]: torch.as_tensor(raw)}
    if isinstance(raw, Mapping):
        values = [raw[name] for name in names] if set(names) <= set(raw) else list(raw.values())
        return {name: torch.as_tensor(value) for name, value in zip(names, values, strict=False)}
    if isinstance(raw, Sequence) and raw and all(isinstance(item, Mapping) for item in raw):
        return [dict(item) for item in raw]
    if isinstance(raw, Sequence):
        return {name: torch.as_tensor(value) for name, value in zip(names, raw, strict=False)}
    raise ZooError(f"cannot read model outputs of type {type(raw).__name__}")


def standardize(
    raw: Any, inputs: Mapping[str, Tensor], card: Card, architecture: Architecture
) -> Rows:
    """The task's standard rows of one batch, as float32 CPU tensors."""
    outputs = named_outputs(raw, architecture.export.output_names)
    if card.task == "object-detection":
        return _detections(outputs, inputs, architecture)
    if isinstance(outputs, list):
        raise ZooError(f"{card.name}: a {card.task} model returned per-image dicts")
    if card.task == "feature-extraction":
        return {name: value.detach().float().cpu() for name, value in outputs.items()}
    return next(iter(outputs.values())).detach().float().cpu()


def _detections(
    outputs: dict[str, Tensor] | list[dict[str, Tensor]],
    inputs: Mapping[str, Tensor],
    architecture: Architecture,
) -> list[dict[str, Tensor]]:
    """Per image: xyxy boxes in model-input pixels, scores, labels (nothing dropped yet)."""
    first = next(iter(inputs.values()))
    images: list[dict[str, Tensor]]
    if architecture.inference.postprocess is not None:
        sizes = [tuple(first.shape[-2:])] * first.shape[0]
        images = import_string(architecture.inference.postprocess)(outputs, sizes, 0.0)
    elif isinstance(outputs, dict):
        if not set(DETECTION_KEYS) <= set(outputs):
            raise ZooError(
                f"detector {architecture.name!r} returned {sorted(outputs)}; expected "
                f"{list(DETECTION_KEYS)} or an InferenceHints.postprocess function"
            )
        images = [outputs]
    else:
        images = outputs
    return [
        {
            "boxes": image["boxes"].detach().float().cpu(),
            "scores": image["scores"].detach().float().cpu(),
            "labels": image["labels"].detach().long().cpu(),
        }
        for image in images
    ]


def take_rows(rows: Rows, start: int, stop: int) -> Rows:
    if isinstance(rows, dict):
        return {name: value[start:stop] for name, value in rows.items()}
    return rows[start:stop]


def row_count(rows: Rows) -> int:
    return len(next(iter(rows.values()))) if isinstance(rows, dict) else len(rows)


def join_rows(parts: list[Rows]) -> Rows:
    """The rows of consecutive batches as one; every part of a run is of the first's kind."""
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, dict):
        named = cast(list[dict[str, Tensor]], parts)
        return {name: torch.cat([part[name] for part in named]) for name in first}
    if isinstance(first, list):
        return [image for part in cast(list[list[dict[str, Tensor]]], parts) for image in part]
    return torch.cat(cast(list[Tensor], parts))


def finish(
    rows: Rows, prepared: Prepared, card: Card, *, topk: int = 5, threshold: float = 0.5
) -> Result:
    """One input's standard rows -> its typed result."""
    common = {"input": prepared.source, "model": card.name, "task": card.task}
    match rows:
        case Tensor() if card.task in CLASSIFICATION:
            return _classification(rows, prepared, card, topk, common)
        case list() if card.task == "object-detection":
            return _detections_result(rows[0], prepared, card, threshold, common)
        case Tensor() if card.task == "video-forecasting":
            return _forecast(rows, prepared, card, common)
        case dict():
            return Features(
                **common,
                shapes={name: list(value.shape[1:]) for name, value in rows.items()},
                arrays={name: value[0].numpy() for name, value in rows.items()},
            )
    raise ZooError(f"{card.name}: no {card.task} result from rows of {type(rows).__name__}")


def label_name(labels: list[str] | None, index: int) -> str:
    return labels[index] if labels is not None and index < len(labels) else str(index)


def _classification(
    logits: Tensor, prepared: Prepared, card: Card, topk: int, common: dict
) -> Classification:
    probabilities = logits.softmax(-1).mean(0)
    scores, indices = probabilities.topk(min(topk, probabilities.numel()))
    labels = card.label_names()
    return Classification(
        **common,
        note=prepared.note,
        labels=[
            LabelScore(label=label_name(labels, index), index=index, score=score)
            for score, index in zip(scores.tolist(), indices.tolist(), strict=True)
        ],
        clips=prepared.rows,
        framewise=prepared.framewise,
    )


def _detections_result(
    image: dict[str, Tensor], prepared: Prepared, card: Card, threshold: float, common: dict
) -> Detections:
    keep = image["scores"] > threshold
    scores, order = image["scores"][keep].sort(descending=True, stable=True)
    boxes = prepared.geometry.boxes_to_original(image["boxes"][keep][order])
    indices = image["labels"][keep][order]
    labels = card.label_names()
    return Detections(
        **common,
        detections=[
            Detection(box=tuple(box), label=label_name(labels, index), index=index, score=score)
            for box, index, score in zip(
                boxes.tolist(), indices.tolist(), scores.tolist(), strict=True
            )
        ],
        image_size=prepared.geometry.original,
        threshold=threshold,
    )


def _forecast(frames: Tensor, prepared: Prepared, card: Card, common: dict) -> Forecast:
    spec = card.inputs[0]
    first = from_layout(frames, spec.layout)[0].numpy()
    return Forecast(
        **common,
        note=prepared.note,
        frames=first,
        value_range=spec.value_range,
        shape=list(first.shape),
        fps=spec.fps,
    )
