"""``zoo.predictor(...)``: the card, the weights and the fastest measured way to run them.

The architecture's :class:`~zoo.architecture.InferenceHints` say which backend, memory
format and compilation ran fastest for the family; each can be overridden. The
onnxruntime default applies only where it can: a model with real weights (pretrained or a
file) in float32 without ``torch.compile``, on a device onnxruntime has a provider for. A
randomly initialised model, autocast or compilation run on PyTorch, and so does a model
whose export fails or an install without the ``export`` extra, each with a warning that
says why. The graph is the one ``zoo export`` writes: given as ``onnx=PATH``, or exported
on first use into the zoo cache (:mod:`zoo.inference.exported`).
"""

from __future__ import annotations

import warnings
from importlib.util import find_spec
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.architecture import InferenceHints
from zoo.cards import Card
from zoo.errors import ExportError, OptionError, ZooError, ZooWarning, check_count, one_line
from zoo.inference.predictor import Predictor
from zoo.registry import Registry, default_registry
from zoo.version import DISTRIBUTION

if TYPE_CHECKING:
    import torch

    from zoo.inference.backends import OnnxRuntimeBackend, TorchBackend

BACKENDS = ("torch", "onnxruntime")
EXPORT_PACKAGES = ("onnx", "onnxscript", "onnxruntime")  # what the onnxruntime default needs
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
    :func:`zoo.load`'s; ``onnx`` is a file ``zoo export`` wrote, for onnxruntime.
    ``clips`` overrides how many clips (or, for an image classifier on a video, frames)
    are averaged.

    An option that cannot apply is refused (:class:`~zoo.errors.OptionError`), never
    ignored: ``clips`` for a model that sees one clip or still images, ``onnx`` on
    torch, and on onnxruntime the PyTorch-only ``dtype``, ``memory_format`` and
    ``compile`` (which choose PyTorch when the backend is left to the default).
    """
    from zoo.inference.backends import onnxruntime_runs_on, pick_device
    from zoo.inference.preprocess import check_clips

    check_values(backend=backend, dtype=dtype, memory_format=memory_format, clips=clips)
    registry = registry or default_registry()
    card = _card(name, registry)
    check_clips(card, clips)
    architecture = registry.architecture(card.architecture)
    place = pick_device(device)
    real_weights = weights is not None or pretrained
    chosen = choose_backend(
        backend, architecture.inference, real_weights, dtype, compile, onnx, memory_format
    )
    if chosen == "onnxruntime" and backend is None and onnx is None:
        usable = _export_extra_installed(card) and onnxruntime_runs_on(place)
        chosen = "onnxruntime" if usable else "torch"
    check_applicable(chosen, onnx=onnx, dtype=dtype, memory_format=memory_format, compile=compile)
    runner: TorchBackend | OnnxRuntimeBackend | None = None
    if chosen == "onnxruntime":
        source = {
            "weights": weights,
            "layout": layout,
            "pretrained": pretrained,
            "registry": registry,
        }
        try:
            runner = _onnxruntime(name, card, place, onnx, source)
        except ExportError as error:
            if backend is not None:
                raise
            warnings.warn(
                f"{card.name}: running on torch, since the onnxruntime default could not be "
                f"exported: {one_line(str(error))}",
                ZooWarning,
                stacklevel=2,
            )
    if runner is None:
        model = _model(name, card, weights, layout, pretrained, registry)
        runner = _torch(model, card, architecture.inference, place, dtype, memory_format, compile)
    return Predictor(card, architecture, runner, clips=clips)


def _export_extra_installed(card: Card) -> bool:
    """Whether the onnxruntime default can run: it exports with the export extra's packages.

    Without them the model runs on torch (the default is a speed choice, not a need), and a
    warning says what is missed and how to install it.
    """
    missing = [name for name in EXPORT_PACKAGES if find_spec(name) is None]
    if missing:
        warnings.warn(
            f"{card.name}: running on torch; its faster default, onnxruntime, needs "
            f"{', '.join(missing)}: pip install '{DISTRIBUTION}[export]'",
            ZooWarning,
            stacklevel=3,
        )
    return not missing


def choose_backend(
    backend: str | None,
    hints: InferenceHints,
    real_weights: bool,
    dtype: str | None,
    compile: bool | None,
    onnx: str | PathLike[str] | None,
    memory_format: str | None = None,
) -> str:
    """The backend asked for, else onnx='s, else the hint where it applies, else torch.

    The hint (onnxruntime, for most families) applies to real weights in float32 when no
    PyTorch-only setting was asked for: autocast, a memory format or compilation choose
    PyTorch, since onnxruntime runs the exported graph as it is.
    """
    if backend is not None:
        if backend not in BACKENDS:
            raise ZooError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        return backend
    if onnx is not None:
        return "onnxruntime"
    torch_only = dtype not in (None, "float32") or memory_format is not None or compile
    return hints.backend if real_weights and not torch_only else "torch"


def check_values(**options: object) -> None:
    """Each runtime option is one of its values (None: the default), before anything loads."""
    from zoo.inference.backends import DTYPES, MEMORY_FORMATS

    allowed = {"backend": BACKENDS, "dtype": tuple(DTYPES), "memory_format": MEMORY_FORMATS}
    for option, values in allowed.items():
        value = options.get(option)
        if value is not None and value not in values:
            raise OptionError(f"{{{option}}} {value!r} is not one of {', '.join(values)}", option)
    if options.get("clips") is not None:
        check_count("clips", options["clips"])


def check_applicable(
    backend: str,
    *,
    onnx: str | PathLike[str] | None,
    dtype: str | None,
    memory_format: str | None,
    compile: bool | None,
) -> None:
    """Refuse an option the chosen backend would ignore, naming it and why."""
    if backend == "torch" and onnx is not None:
        raise OptionError(
            "{onnx} names a file for {backend} 'onnxruntime', not 'torch', which runs the "
            "model itself: drop {onnx}, or choose onnxruntime",
            "onnx",
            "backend",
        )
    if backend != "onnxruntime":
        return
    ignored = {
        "dtype": dtype not in (None, "float32"),
        "memory_format": memory_format is not None,
        "compile": bool(compile),
    }
    given = [option for option, asked in ignored.items() if asked]
    if given:
        named = " and ".join(f"{{{option}}}" for option in given)
        verb = "sets" if len(given) == 1 else "set"
        raise OptionError(
            f"{named} {verb} how PyTorch runs the model; onnxruntime runs the exported graph as "
            "it is (drop them, or choose {backend} torch; for a float16 graph, export it "
            "with fp16)",
            *given,
            "backend",
        )


def _torch(
    model: torch.nn.Module,
    card: Card,
    hints: InferenceHints,
    device: torch.device,
    dtype: str | None,
    memory_format: str | None,
    compile: bool | None,
) -> TorchBackend:
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
    onnx: str | PathLike[str] | None,
    source: dict[str, Any],
) -> OnnxRuntimeBackend:
    from zoo.inference.backends import OnnxRuntimeBackend
    from zoo.inference.exported import exported_model

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
