"""``zoo.predictor(...)``: the card, the weights and the fastest measured way to run them.

The architecture's :class:`~zoo.architecture.InferenceHints` say which backend, memory
format and compilation ran fastest for the family; each can be overridden. An ONNX
backend (onnxruntime, OpenVINO) as the default applies only where it can: a model with
real weights (pretrained or a file) without ``torch.compile``, on a device the runtime
has; a randomly initialised model or compilation runs on PyTorch. The graph is the one
``zoo export`` writes: given as ``onnx=PATH``, or exported on first use into the zoo
cache (:mod:`zoo.inference.exported`); an int8 graph is given the same way or quantized
on first use from ``calibrate=`` inputs (:mod:`zoo.quantize`).

A default that cannot run falls back with a warning, never to a wrong answer: OpenVINO
missing or failing to compile a graph gives onnxruntime (torch autocast for bf16), and a
graph that cannot be exported, or an install without the ``export`` extra, gives torch. A
backend asked for by name never changes: it runs or raises.
"""

from __future__ import annotations

import warnings
from importlib.util import find_spec
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.architecture import InferenceHints
from zoo.cards import Card
from zoo.errors import (
    ExportError,
    OptionError,
    RuntimeCompileError,
    ZooError,
    ZooWarning,
    check_count,
    one_line,
)
from zoo.inference.longvideo import MAX_FRAMES
from zoo.inference.precision import Precision, check_precision, require_bf16_cpu
from zoo.inference.predictor import Predictor
from zoo.registry import Registry, default_registry
from zoo.version import DISTRIBUTION
from zoo.weights.folder import folder_source

if TYPE_CHECKING:
    import torch

    from zoo.inference.backends import TorchBackend

BACKENDS = ("torch", "onnxruntime", "openvino")
ONNX_BACKENDS = ("onnxruntime", "openvino")
EXPORT_PACKAGES = ("onnx", "onnxscript", "onnxruntime")  # what an ONNX default needs
HF_HUB_PREFIX = "hf-hub:"
OPENVINO_EXTRA = "pip install 'zoo-models[openvino]'"
OPENVINO_AREA = "openvino"  # the zoo cache's folder of OpenVINO's compiled models


def predictor(
    name: str | Card,
    *,
    device: str = "auto",
    precision: str | None = None,
    backend: str | None = None,
    weights: str | PathLike[str] | None = None,
    layout: str | None = None,
    pretrained: bool = True,
    compile: bool | None = None,
    onnx: str | PathLike[str] | None = None,
    memory_format: str | None = None,
    clips: int | None = None,
    calibrate: str | PathLike[str] | None = None,
    validate: str | PathLike[str] | None = None,
    accept_drop: bool = False,
    max_frames: int | None = None,
    registry: Registry | None = None,
) -> Predictor:
    """A :class:`Predictor` for model ``name`` (name, alias, ``plugin:name``, ``hf-hub:`` or
    a zoo folder such as ``out/``).

    ``backend`` (torch, onnxruntime, openvino), ``memory_format`` and ``compile`` default
    to the fastest option measured for the architecture (its plugin's ``InferenceHints``);
    pass them to override. ``precision`` is fp32 (the default), bf16 (OpenVINO's bfloat16,
    or torch autocast), fp16 (torch autocast on a GPU) or int8 (a quantized graph: ``onnx=``
    a ``model.int8.onnx``, or ``calibrate=`` a folder or manifest of inputs to quantize
    with, checked against float32 on ``validate=`` inputs or a held-out part of them, and
    refused below the agreement threshold unless ``accept_drop``). ``device``: ``auto`` is
    CUDA, then MPS, then CPU. ``weights``/``layout``/``pretrained`` are :func:`zoo.load`'s;
    ``onnx`` is a file ``zoo export`` wrote. ``clips`` overrides how many clips (or, for an
    image classifier on a video, frames) are averaged.
    ``max_frames`` is the longest clip a ``whole``-protocol card runs at once (default
    :data:`~zoo.inference.longvideo.MAX_FRAMES`); a longer video runs in windows combined as
    the network combines time (its plugin's ``InferenceHints.time_reduction``).

    An option that cannot apply is refused (:class:`~zoo.errors.OptionError`), never
    ignored: ``clips`` for a model that sees one clip or still images, ``onnx`` on torch,
    ``memory_format`` and ``compile`` on an ONNX backend (which they steer away from when
    the backend is left to the default), ``calibrate``/``validate`` without int8.
    """
    from zoo.inference.backends import pick_device
    from zoo.inference.preprocess import check_clips, check_max_frames

    check_values(backend=backend, memory_format=memory_format, clips=clips, max_frames=max_frames)
    registry = registry or default_registry()
    local = folder_source(name, weights, pretrained)
    if local is not None:
        name, weights = local
    card = _card(name, registry)
    check_clips(card, clips)
    check_max_frames(card, max_frames)
    architecture = registry.architecture(card.architecture)
    chosen_precision = check_precision(precision)
    given = [
        option for option, value in (("calibrate", calibrate), ("validate", validate)) if value
    ]
    if chosen_precision != "int8" and given:
        raise OptionError(
            " and ".join(f"{{{option}}}" for option in given)
            + " are inputs for {precision} int8, which was not asked",
            *given,
            "precision",
        )
    place = pick_device(device)
    real_weights = weights is not None or pretrained
    chosen = choose_backend(
        backend,
        architecture.inference,
        real_weights,
        chosen_precision,
        compile,
        onnx,
        memory_format,
    )
    if chosen in ONNX_BACKENDS and backend is None and onnx is None:
        chosen = chosen if _export_extra_installed(card, chosen) else "torch"
    if backend is None:
        chosen = _available_here(chosen, place)
    check_applicable(chosen, onnx=onnx, memory_format=memory_format, compile=compile)
    source = {"weights": weights, "layout": layout, "pretrained": pretrained}
    request = _Request(
        name,
        card,
        place,
        chosen_precision,
        source,
        onnx,
        calibrate,
        validate,
        accept_drop,
        registry,
    )
    runner = _onnx_runner(request, chosen, explicit=backend is not None)

    def torch_runner() -> Any:
        model = _model(name, card, weights, layout, pretrained, registry)
        return _torch(
            model, card, architecture.inference, place, request.precision, memory_format, compile
        )

    if runner is None:
        if onnx is not None:
            raise ZooError(f"onnx= names a file for an ONNX backend ({', '.join(ONNX_BACKENDS)})")
        runner = torch_runner()
    return Predictor(
        card,
        architecture,
        runner,
        clips=clips,
        max_frames=max_frames or MAX_FRAMES,
        torch_backend=torch_runner,
    )


def _export_extra_installed(card: Card, backend: str) -> bool:
    """Whether an ONNX default can run: it exports with the export extra's packages.

    Without them the model runs on torch (the default is a speed choice, not a need), and a
    warning says what is missed and how to install it.
    """
    missing = [name for name in EXPORT_PACKAGES if find_spec(name) is None]
    if missing:
        warnings.warn(
            f"{card.name}: running on torch; its faster default, {backend}, needs "
            f"{', '.join(missing)}: pip install '{DISTRIBUTION}[export]'",
            ZooWarning,
            stacklevel=3,
        )
    return not missing


def choose_backend(
    backend: str | None,
    hints: InferenceHints,
    real_weights: bool,
    precision: Precision,
    compile: bool | None,
    onnx: str | PathLike[str] | None,
    memory_format: str | None = None,
) -> str:
    """The backend asked for, else the one the precision and the hint lead to, else torch.

    An int8 graph runs on an ONNX backend (the hint's, else OpenVINO); bf16 runs on
    OpenVINO where the hint names an ONNX backend (onnxruntime has no bfloat16 CPU path),
    else under torch autocast; fp16 is torch autocast. ``onnx=`` picks an ONNX backend.
    A PyTorch-only setting (compilation, a memory format) picks torch.
    """
    if backend is not None:
        if backend not in BACKENDS:
            raise ZooError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        return backend
    onnx_hint = hints.backend in ONNX_BACKENDS
    if precision == "int8":
        return hints.backend if onnx_hint else "openvino"
    if onnx is not None and precision == "bf16":
        return "openvino"
    if onnx is not None:
        return hints.backend if onnx_hint else "onnxruntime"
    if not real_weights or compile or memory_format is not None or precision == "fp16":
        return "torch"
    if precision == "bf16":
        return "openvino" if onnx_hint else "torch"
    return hints.backend


def check_values(**options: object) -> None:
    """Each runtime option is one of its values (None: the default), before anything loads."""
    from zoo.inference.backends import MEMORY_FORMATS

    allowed = {"backend": BACKENDS, "memory_format": MEMORY_FORMATS}
    for option, values in allowed.items():
        value = options.get(option)
        if value is not None and value not in values:
            raise OptionError(f"{{{option}}} {value!r} is not one of {', '.join(values)}", option)
    for count in ("clips", "max_frames"):
        if options.get(count) is not None:
            check_count(count, options[count])


def check_applicable(
    backend: str,
    *,
    onnx: str | PathLike[str] | None,
    memory_format: str | None,
    compile: bool | None,
) -> None:
    """Refuse an option the chosen backend would ignore, naming it and why."""
    if backend == "torch" and onnx is not None:
        raise OptionError(
            f"{{onnx}} names a file for an ONNX {{backend}} ({', '.join(ONNX_BACKENDS)}), not "
            "torch, which runs the model itself: drop {onnx}, or choose an ONNX backend",
            "onnx",
            "backend",
        )
    given = [
        option
        for option, asked in (("memory_format", memory_format is not None), ("compile", compile))
        if asked and backend in ONNX_BACKENDS
    ]
    if given:
        named = " and ".join(f"{{{option}}}" for option in given)
        verb = "sets" if len(given) == 1 else "set"
        raise OptionError(
            f"{named} {verb} how PyTorch runs the model; {backend} runs the exported graph as "
            f"it is (drop {'it' if len(given) == 1 else 'them'}, or choose {{backend}} torch)",
            *given,
            "backend",
        )


def _available_here(chosen: str, device: torch.device) -> str:
    """A default ONNX backend only on a device it runs on (OpenVINO: the CPU here)."""
    from zoo.inference.backends import onnxruntime_runs_on

    if chosen == "openvino" and device.type != "cpu":
        chosen = "onnxruntime"
    if chosen == "onnxruntime" and not onnxruntime_runs_on(device):
        return "torch"
    return chosen


class _Request:
    """What every backend builder needs from the predictor's arguments, in one place."""

    def __init__(
        self,
        name: str | Card,
        card: Card,
        device: torch.device,
        precision: Precision,
        source: dict[str, Any],
        onnx: str | PathLike[str] | None,
        calibrate: str | PathLike[str] | None,
        validate: str | PathLike[str] | None,
        accept_drop: bool,
        registry: Registry,
    ) -> None:
        self.name, self.card, self.device, self.precision = name, card, device, precision
        self.source = source  # zoo.load's weights, layout and pretrained
        self.onnx, self.calibrate, self.validate = onnx, calibrate, validate
        self.accept_drop, self.registry = accept_drop, registry

    @property
    def model_source(self) -> str | Card:
        hub = isinstance(self.name, str) and self.name.startswith(HF_HUB_PREFIX)
        return self.name if hub else self.card


def _onnx_runner(request: _Request, chosen: str, *, explicit: bool) -> Any:
    """The ONNX backend ``chosen`` names, a fallback with a warning, or None for torch."""
    try:
        if chosen == "openvino":
            try:
                return _openvino(request)
            except (ModuleNotFoundError, RuntimeCompileError) as error:
                if explicit and isinstance(error, ImportError):
                    raise _openvino_missing() from None
                if explicit:
                    raise
                chosen = "torch" if request.precision == "bf16" else "onnxruntime"
                _fall_back(request, chosen, "OpenVINO " + _why_not(error))
        if chosen == "onnxruntime":
            return _onnxruntime(request)
    except ExportError as error:
        if explicit or request.precision == "int8":
            raise
        _fall_back(request, "torch", f"the default could not be exported: {one_line(str(error))}")
    return None


def _fall_back(request: _Request, backend: str, reason: str) -> None:
    warnings.warn(f"{request.card.name}: running on {backend}, since {reason}", ZooWarning, 4)


def _why_not(error: BaseException) -> str:
    if isinstance(error, ImportError):
        return f"is not installed ({OPENVINO_EXTRA})"
    return f"failed: {one_line(str(error))}"


def _openvino_missing() -> ZooError:
    return ZooError(f"backend openvino needs the Python package 'openvino': {OPENVINO_EXTRA}")


def _openvino(request: _Request) -> Any:
    import openvino  # noqa: F401  (missing: the caller falls back before exporting anything)

    from zoo.inference.openvino_backend import OpenVinoBackend

    if request.precision not in ("fp32", "bf16", "int8"):
        raise ZooError(f"precision {request.precision} runs on torch; use --backend torch")
    if request.device.type != "cpu":
        raise ZooError(f"backend openvino runs on the CPU here, not on {request.device}")
    if request.precision == "bf16":
        require_bf16_cpu()  # before an export that would be wasted
    path = _graph(request)
    _openvino_checked(path)
    return OpenVinoBackend(
        path, request.card, precision=request.precision, cache_dir=_compiled_cache(path)
    )


def _compiled_cache(path: Path) -> Path | None:
    """The zoo cache's ``openvino/`` for OpenVINO's compiled models; none for a temporary
    export (random weights) or where the cache cannot be written."""
    from zoo.inference.exported import is_temporary
    from zoo.weights.cache import area_folder

    if is_temporary(path):
        return None
    folder = area_folder(OPENVINO_AREA)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder


def _openvino_checked(path: Path) -> None:
    """Refuse a file whose export report says OpenVINO differs from PyTorch (it falls back)."""
    from zoo.exporters.report import ExportReport

    report_path = path.with_name("export.json")
    if not report_path.is_file() or path.name != "model.onnx":
        return
    try:
        report = ExportReport.model_validate_json(report_path.read_text(encoding="utf-8"))
    except ValueError:
        return  # another zoo version's report: nothing to go by
    failed = [
        f"{check.name}: {output.describe()}"
        for check in report.openvino_checks
        for output in check.outputs
        if not output.passed
    ]
    if failed:
        raise RuntimeCompileError(
            f"OpenVINO differs from PyTorch beyond the tolerance {report.tolerance:g} on "
            f"{path}: {'; '.join(failed)}"
        )


def _onnxruntime(request: _Request) -> Any:
    from zoo.inference.backends import OnnxRuntimeBackend

    if request.precision not in ("fp32", "int8"):
        raise ZooError(
            f"precision {request.precision} is not an onnxruntime precision here: bf16 runs "
            "on backend openvino (or torch autocast), fp16 on torch with a GPU"
        )
    return OnnxRuntimeBackend(
        _graph(request), request.card, device=request.device, precision=request.precision
    )


def _graph(request: _Request) -> Path:
    """The ONNX file to run: the one given, the first-use export, or the int8 quantization."""
    from zoo.inference.exported import exported_model, graph_precision

    if request.onnx is not None:
        path = Path(request.onnx)
        if not path.is_file():
            raise ZooError(f"no ONNX file at {path}")
        found = graph_precision(path)
        wanted = "int8" if request.precision == "int8" else "fp32"
        if found != wanted:
            hint = (
                " (zoo export --precision int8 writes model.int8.onnx)" if wanted == "int8" else ""
            )
            raise ZooError(
                f"{path} is an {found} graph, but precision {request.precision} was asked{hint}"
            )
        return path
    if request.precision == "int8":
        return _quantized(request)
    return exported_model(
        request.model_source, request.card, registry=request.registry, **request.source
    )


def _quantized(request: _Request) -> Path:
    if request.calibrate is None:
        raise ZooError(
            "precision int8 needs a quantized graph: calibrate= inputs to quantize with "
            "(--calibrate DIR), or onnx= the model.int8.onnx `zoo export --precision int8` wrote"
        )
    from zoo.quantize.cache import quantized_model

    return quantized_model(
        request.model_source,
        request.card,
        calibrate=request.calibrate,
        validate=request.validate,
        accept_drop=request.accept_drop,
        registry=request.registry,
        **request.source,
    )


def _torch(
    model: torch.nn.Module,
    card: Card,
    hints: InferenceHints,
    device: torch.device,
    precision: Precision,
    memory_format: str | None,
    compile: bool | None,
) -> TorchBackend:
    from zoo.inference.backends import TorchBackend

    return TorchBackend(
        model,
        card,
        device=device,
        precision=precision,
        memory_format=memory_format or hints.memory_format,
        compile=hints.compile if compile is None else compile,
    )


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
