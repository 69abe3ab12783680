"""One input of one model, ready for the methods: the model in pixel space and its pixels.

The input goes through the predictor's pre-processing (decode, sample, resize, crop, as
the card says) and stops at pixels in [0, 1]; the card's normalisation then sits inside
the model (:class:`PixelModel`), so every method works in pixel space: occlusion hides a
region with a grey level whatever the model's mean and std, and attacks are bounded in
grey levels. What the card alone can refuse (Grad-CAM of a forecaster, an unknown label)
is refused before a model is built.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from zoo.cards import Card
from zoo.errors import InterpretError
from zoo.interpret.results import Prediction
from zoo.registry import default_registry
from zoo.weights.folder import is_folder_name

METHODS = ("gradcam", "occlusion", "fgsm", "pgd")
CLASSIFICATION = ("image-classification", "video-classification")


class PixelModel(nn.Module):
    """The model with the card's normalisation in front: it takes pixels in [0, 1]."""

    def __init__(self, model: nn.Module, normalizations: list[nn.Module]) -> None:
        super().__init__()
        self.model = model
        self.normalizations = nn.ModuleList(normalizations)

    def forward(self, *pixels: Tensor) -> Tensor:
        normalized = (n(p) for n, p in zip(self.normalizations, pixels, strict=True))
        return self.model(*normalized)


@dataclass
class Subject:
    """One input, prepared: the model in pixel space and the pixels of one row (clip)."""

    predictor: Any
    model: PixelModel
    pixels: tuple[Tensor, ...]
    source: str
    note: str

    @property
    def card(self) -> Any:
        return self.predictor.card

    @property
    def classifies(self) -> bool:
        return self.card.task in CLASSIFICATION

    @property
    def layout(self) -> str:
        return self.card.inputs[0].layout

    def frames(self, pixels: Tensor | None = None) -> np.ndarray:
        """uint8 frames (T, H, W, 3) of the first input (T = 1 for an image)."""
        shown = self.pixels[0] if pixels is None else pixels
        return self.predictor.unrender(shown.cpu(), self.card.inputs[0].name, normalized=False)[0]

    def prediction(self, index: int, probabilities: Tensor) -> Prediction:
        labels = self.card.label_names()
        label = labels[index] if labels and index < len(labels) else None
        return Prediction(index=index, label=label, probability=float(probabilities[index]))

    def probabilities(self) -> Tensor:
        with torch.no_grad():
            return torch.softmax(self.model(*self.pixels), dim=1)[0].float().cpu()


def open_subject(
    name: str,
    source: str | PathLike[str],
    *,
    method: str | None = None,
    target: int | str | None = None,
    weights: str | PathLike[str] | None = None,
    layout: str | None = None,
    pretrained: bool = True,
    device: str = "auto",
) -> Subject:
    """The model NAME in pixel space and the middle row (clip, or frame) of ``source``.

    Given the ``method`` and ``target`` to come, the request is checked against the card
    first, so a request that cannot work fails before a model is built.
    """
    if method is not None and not name.startswith("hf-hub:") and not is_folder_name(name):
        # a Hub or folder card is read later
        check_request(default_registry().card(name), method, target)
    predictor = seeded_predictor(
        name, device=device, weights=weights, layout=layout, pretrained=pretrained
    )
    prepared = predictor.preprocess(source, normalize=False)
    row = prepared.rows // 2
    place = predictor.backend.device
    pixels = tuple(tensor[row : row + 1].to(place) for tensor in prepared.inputs.values())
    normalizations = [predictor.normalizations[key].to(place) for key in prepared.inputs]
    note = prepared.note
    if prepared.rows > 1:
        note += f"; this is row {row + 1} of {prepared.rows}, the middle one"
    model = PixelModel(predictor.model, normalizations).eval()
    return Subject(predictor, model, pixels, str(source), note.strip("; "))


def check_request(card: Card, method: str, target: int | str | None) -> int | None:
    """What the card alone shows about a request: the target's class index (None: the
    top-1), or an error for a method the model cannot serve."""
    if method not in METHODS:
        raise InterpretError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if card.task in CLASSIFICATION:
        index = class_index(target, card.label_names())
        classes = class_count(card)
        if index is not None and classes is not None and not 0 <= index < classes:
            raise InterpretError(
                f"target class {index} is out of range (0 to {classes - 1}): {card.name} "
                f"scores {classes} classes"
            )
        return index
    task = f"{card.name} is a {card.task} model"
    if method in ("fgsm", "pgd"):
        raise InterpretError(f"attacks move a classifier's answer and {task}")
    if method == "gradcam":
        raise InterpretError(
            f"Grad-CAM explains a class score and {task}; occlusion maps where hiding the "
            "input changes its output (--method occlusion)"
        )
    if target is not None:
        raise InterpretError(f"a target names a class and {task}, without classes")
    return None


def class_count(card: Card) -> int | None:
    """How many classes a classifier's card says it scores (its labels, else its output)."""
    labels = card.label_names()
    if labels:
        return len(labels)
    size = card.outputs[0].shape[-1] if card.outputs and card.outputs[0].shape else None
    return size if isinstance(size, int) else None


def seeded_predictor(name: str, *, seed: int = 0, **options: Any) -> Any:
    """The predictor of model NAME on PyTorch, uncompiled (the methods need its gradients).

    Random weights (``pretrained=False``) are drawn from a fixed seed, so that a picture
    made with ``--random`` is made again by the same command; the caller's random state
    is left as it was.
    """
    from zoo.inference import predictor

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return predictor(name, backend="torch", compile=False, **options)


def class_index(target: int | str | None, labels: list[str] | None) -> int | None:
    """A class given by index, by index as text, or by label name (None: the top-1)."""
    if target is None or isinstance(target, int):
        return target
    if target.isdigit():
        return int(target)
    if labels and target in labels:
        return labels.index(target)
    close = difflib.get_close_matches(target, labels or [], n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise InterpretError(
        f"unknown target label {target!r}{hint} (give a label of the model's card or a class index)"
    )
