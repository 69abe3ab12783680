"""zoo: a plugin-based model zoo for PyTorch video and vision models.

    >>> import zoo
    >>> zoo.list_models("i3d*")
    >>> model = zoo.load("i3d-kinetics")                # card -> verified weights -> eval model
    >>> model = zoo.load("i3d-kinetics", pretrained=False)
    >>> zoo.predictor("i3d-kinetics")("clip.mp4").labels[:3]   # decode, sample, classify

Importing zoo does not import torch; building a model does.
"""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING

from zoo.architecture import (
    Architecture,
    DerivedInput,
    ExportHints,
    FeatureHints,
    InferenceHints,
)
from zoo.cards import Card
from zoo.errors import (
    AmbiguousNameError,
    CardError,
    InputError,
    UnknownNameError,
    WeightsError,
    ZooError,
    ZooWarning,
)
from zoo.hookspecs import hookimpl
from zoo.loading import build, load
from zoo.registry import ZooPluginWarning, default_registry

if TYPE_CHECKING:
    from zoo.inference import Predictor

__all__ = [
    "AmbiguousNameError",
    "Architecture",
    "Card",
    "CardError",
    "DerivedInput",
    "ExportHints",
    "FeatureHints",
    "InferenceHints",
    "InputError",
    "UnknownNameError",
    "WeightsError",
    "ZooError",
    "ZooPluginWarning",
    "ZooWarning",
    "build",
    "card",
    "hookimpl",
    "list_models",
    "load",
    "predictor",
]


def list_models(
    pattern: str | None = None, *, task: str | None = None, architecture: str | None = None
) -> list[str]:
    """Names of the registered models, filtered by an fnmatch ``pattern`` like ``"i3d*"``."""
    cards = default_registry().cards(pattern, task=task, architecture=architecture)
    return [card.name for card in cards]


def card(name: str) -> Card:
    """The validated card of a model, by name, alias or ``plugin:name``."""
    return default_registry().card(name)


def predictor(
    name: str | Card,
    *,
    device: str = "auto",
    dtype: str | None = None,
    backend: str | None = None,
    weights: str | PathLike[str] | None = None,
    layout: str | None = None,
    pretrained: bool = True,
    compile: bool | None = None,
    onnx: str | PathLike[str] | None = None,
    memory_format: str | None = None,
    clips: int | None = None,
) -> Predictor:
    """A predictor for model ``name``: files, images or frames in, typed results out.

    Pre-processing comes from the card, post-processing from the task. ``backend``
    (``"torch"`` or ``"onnxruntime"``), ``memory_format`` and ``compile`` default to the
    fastest option measured for the architecture; ``dtype`` (float32, bfloat16, float16)
    runs under autocast on ``device`` (``"auto"``: CUDA, then MPS, then CPU).
    ``weights``/``layout``/``pretrained`` are those of :func:`load`; ``onnx`` is the file
    ``zoo export`` wrote, for the onnxruntime backend. See :mod:`zoo.inference`.
    """
    from zoo.inference import predictor as build_predictor

    return build_predictor(
        name,
        device=device,
        dtype=dtype,
        backend=backend,
        weights=weights,
        layout=layout,
        pretrained=pretrained,
        compile=compile,
        onnx=onnx,
        memory_format=memory_format,
        clips=clips,
    )
