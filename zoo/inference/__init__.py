"""The inference layer: from a file on disk to labels, boxes or forecast frames, by the card.

``zoo.predictor(name)`` (this module's :func:`predictor`) builds a :class:`Predictor`;
``zoo/inference`` holds its parts: decoding (``decode``), frame sampling (``sampling``),
the card's spatial transforms and normalisation (``transforms``, ``preprocess``), the
backends, post-processing by task, typed results, pictures of the model input and the
benchmark. Importing this package imports torch; ``import zoo`` does not.
"""

from __future__ import annotations

from os import PathLike

from zoo.cards import Card
from zoo.errors import ZooError
from zoo.inference.predictor import Predictor
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
from zoo.registry import Registry, default_registry

__all__ = [
    "BACKENDS",
    "Classification",
    "Detection",
    "Detections",
    "Features",
    "Forecast",
    "LabelScore",
    "Predictor",
    "Prepared",
    "Result",
    "predictor",
]

BACKENDS = ("torch", "onnxruntime")
HF_HUB_PREFIX = "hf-hub:"


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
    registry: Registry | None = None,
) -> Predictor:
    """A :class:`Predictor` for model ``name`` (name, alias, ``plugin:name`` or ``hf-hub:``).

    ``backend``, ``memory_format`` and ``compile`` default to the fastest option measured
    for the architecture (its plugin's ``InferenceHints``); pass them to override.
    ``dtype`` float32, bfloat16 or float16 runs under ``torch.autocast`` on ``device``
    (``auto``: CUDA, then MPS, then CPU). ``weights``/``layout``/``pretrained`` are
    :func:`zoo.load`'s. ``clips`` overrides how many clips (or, for an image classifier
    on a video, frames) are averaged.
    """
    from zoo.inference.backends import TorchBackend, pick_device

    registry = registry or default_registry()
    card = _card(name, registry)
    architecture = registry.architecture(card.architecture)
    hints = architecture.inference
    chosen = backend or hints.backend
    if chosen not in BACKENDS:
        raise ZooError(f"unknown backend {chosen!r}; expected one of {', '.join(BACKENDS)}")
    if clips is not None and clips < 1:
        raise ZooError(f"clips must be at least 1, found {clips}")
    place = pick_device(device)
    if chosen == "onnxruntime":
        raise ZooError("the onnxruntime backend needs zoo.export, which is not available yet")
    from zoo.loading import load

    model = load(
        name if isinstance(name, str) and name.startswith(HF_HUB_PREFIX) else card,
        pretrained=pretrained,
        weights=weights,
        layout=layout,
        registry=registry,
    )
    runner = TorchBackend(
        model,
        card,
        device=place,
        dtype=dtype,
        memory_format=memory_format or hints.memory_format,
        compile=hints.compile if compile is None else compile,
    )
    return Predictor(card, architecture, runner, clips=clips)


def _card(name: str | Card, registry: Registry) -> Card:
    if isinstance(name, Card):
        return name
    if name.startswith(HF_HUB_PREFIX):
        from zoo.weights import fetch_hub_repo

        card, _ = fetch_hub_repo(name.removeprefix(HF_HUB_PREFIX), with_weights=False)
        return card
    return registry.card(name)
