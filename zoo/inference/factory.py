"""``zoo.predictor(...)``: the card, the weights and the fastest measured way to run them.

The architecture's :class:`~zoo.architecture.InferenceHints` say which backend, memory
format and compilation ran fastest for the family; each can be overridden. The
onnxruntime default applies only where it can: a model with real weights (pretrained or a
file) in float32 without ``torch.compile``, on a device onnxruntime has a provider for; a
randomly initialised model, autocast or compilation run on PyTorch, and so does a model
whose export fails (with a warning saying why). The graph is the one ``zoo export`` writes: given as
``onnx=PATH``, or exported on first use into the zoo cache (:mod:`zoo.inference.exported`).
"""

from __future__ import annotations

import warnings
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.architecture import InferenceHints
from zoo.cards import Card
from zoo.errors import ExportError, ZooError, ZooWarning, one_line
from zoo.inference.longvideo import MAX_FRAMES
from zoo.inference.predictor import Predictor
from zoo.registry import Registry, default_registry

if TYPE_CHECKING:
    import torch

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
    max_frames: int | None = None,
    registry: Registry | None = None,
) -> Predictor:
    """A :class:`Predictor` for model ``name`` (name, alias, ``plugin:name`` or ``hf-hub:``).

    ``backend``, ``memory_format`` and ``compile`` default to the fastest option measured
    for the architecture (its plugin's ``InferenceHints``); pass them to override.
    ``dtype`` float32, bfloat16 or float16 runs under ``torch.autocast`` on ``device``
    (``auto``: CUDA, then MPS, then CPU). ``weights``/``layout``/``pretrained`` are
    :func:`zoo.load`'s; ``onnx`` is a file ``zoo export`` wrote, for onnxruntime.
    ``clips`` overrides how many clips (or, for an image classifier on a video, frames)
    are averaged. ``max_frames`` is the longest clip a ``whole``-protocol card runs at once
    (default :data:`~zoo.inference.longvideo.MAX_FRAMES`); a longer video runs in windows
    combined as the network combines time (its plugin's ``InferenceHints.time_reduction``).
    """
    from zoo.inference.backends import onnxruntime_runs_on, pick_device

    registry = registry or default_registry()
    card = _card(name, registry)
    architecture = registry.architecture(card.architecture)
    if clips is not None and clips < 1:
        raise ZooError(f"clips must be at least 1, found {clips}")
    if max_frames is not None and max_frames < 1:
        raise ZooError(f"max_frames must be at least 1, found {max_frames}")
    place = pick_device(device)
    real_weights = weights is not None or pretrained
    chosen = choose_backend(backend, architecture.inference, real_weights, dtype, compile, onnx)
    if chosen == "onnxruntime" and backend is None and onnx is None:
        chosen = "onnxruntime" if onnxruntime_runs_on(place) else "torch"
    runner = None
    if chosen == "onnxruntime":
        source = {
            "weights": weights,
            "layout": layout,
            "pretrained": pretrained,
            "registry": registry,
        }
        try:
            runner = _onnxruntime(name, card, place, dtype, onnx, source)
        except ExportError as error:
            if backend is not None:
                raise
            warnings.warn(
                f"{card.name}: running on torch, since the onnxruntime default could not be "
                f"exported: {one_line(str(error))}",
                ZooWarning,
                stacklevel=2,
            )

    def torch_runner() -> Any:
        model = _model(name, card, weights, layout, pretrained, registry)
        return _torch(model, card, architecture.inference, place, dtype, memory_format, compile)

    if runner is None:
        if onnx is not None:
            raise ZooError("onnx= names a file for backend 'onnxruntime', not 'torch'")
        runner = torch_runner()
    return Predictor(
        card,
        architecture,
        runner,
        clips=clips,
        max_frames=max_frames or MAX_FRAMES,
        torch_backend=torch_runner,
    )


def choose_backend(
    backend: str | None,
    hints: InferenceHints,
    real_weights: bool,
    dtype: str | None,
    compile: bool | None,
    onnx: str | PathLike[str] | None,
) -> str:
    """The backend asked for, else onnx='s, else the hint where it applies, else torch."""
    if backend is not None:
        if backend not in BACKENDS:
            raise ZooError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        return backend
    if onnx is not None:
        return "onnxruntime"
    applies = real_weights and dtype in (None, "float32") and not compile
    return hints.backend if applies else "torch"


def _torch(
    model: torch.nn.Module,
    card: Card,
    hints: InferenceHints,
    device: torch.device,
    dtype: str | None,
    memory_format: str | None,
    compile: bool | None,
):
    from zoo.inference.backends import TorchBackend

    return TorchBackend(
        model,
        card,
        device=device,
        dtype=dtype,
        memory_format=memory_format or hints.memory_format,
        compile=hints.compile if compile is None else compile,
    )


def _onnxruntime(
    name: str | Card,
    card: Card,
    device: torch.device,
    dtype: str | None,
    onnx: str | PathLike[str] | None,
    source: dict,
):
    from zoo.inference.backends import OnnxRuntimeBackend
    from zoo.inference.exported import exported_model

    if dtype not in (None, "float32"):
        raise ZooError(
            f"dtype {dtype} is PyTorch's autocast; onnxruntime runs the exported graph as it "
            "is (export it with fp16 for a float16 graph)"
        )
    if onnx is None:
        model_source = name if isinstance(name, str) and name.startswith(HF_HUB_PREFIX) else card
        path = exported_model(model_source, card, **source)
    else:
        path = Path(onnx)
        if not path.is_file():
            raise ZooError(f"no ONNX file at {path}")
    return OnnxRuntimeBackend(path, card, device=device)


def _model(
    name: str | Card,
    card: Card,
    weights: str | PathLike[str] | None,
    layout: str | None,
    pretrained: bool,
    registry: Registry,
) -> torch.nn.Module:
    from zoo.loading import load

    source = name if isinstance(name, str) and name.startswith(HF_HUB_PREFIX) else card
    return load(source, pretrained=pretrained, weights=weights, layout=layout, registry=registry)


def _card(name: str | Card, registry: Registry) -> Card:
    if isinstance(name, Card):
        return name
    if name.startswith(HF_HUB_PREFIX):
        from zoo.weights import fetch_hub_repo

        card, _ = fetch_hub_repo(name.removeprefix(HF_HUB_PREFIX), with_weights=False)
        return card
    return registry.card(name)
