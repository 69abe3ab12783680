"""zoo: a plugin-based model zoo for PyTorch video and vision models.

    >>> import zoo
    >>> zoo.list_models("i3d*")
    >>> model = zoo.load("i3d-kinetics")                # card -> verified weights -> eval model
    >>> model = zoo.load("i3d-kinetics", pretrained=False)
    >>> zoo.export("i3d-kinetics", "i3d/")              # checked model.onnx, card.yaml, report
    >>> zoo.predictor("i3d-kinetics")("clip.mp4").labels[:3]   # decode, sample, classify

Importing zoo does not import torch; building a model does.
"""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING, Any, Literal

from zoo.architecture import (
    Architecture,
    DerivedInput,
    ExportHints,
    FeatureHints,
    InferenceHints,
    TimeReduction,
)
from zoo.cards import Card
from zoo.errors import (
    AmbiguousNameError,
    BackboneError,
    CardError,
    ExportCheckError,
    ExportError,
    InputError,
    InterpretError,
    UnknownNameError,
    WeightsError,
    ZooError,
    ZooWarning,
)
from zoo.hookspecs import hookimpl
from zoo.loading import build, load
from zoo.registry import ZooPluginWarning, default_registry
from zoo.version import __version__

if TYPE_CHECKING:
    from zoo.corpus import CorpusReport
    from zoo.corpus import Inputs as CorpusInputs
    from zoo.exporters.report import ExportReport
    from zoo.inference import Predictor

__all__ = [
    "AmbiguousNameError",
    "Architecture",
    "BackboneError",
    "Card",
    "CardError",
    "DerivedInput",
    "ExportCheckError",
    "ExportError",
    "ExportHints",
    "FeatureHints",
    "InferenceHints",
    "InputError",
    "InterpretError",
    "TimeReduction",
    "UnknownNameError",
    "WeightsError",
    "ZooError",
    "ZooPluginWarning",
    "ZooWarning",
    "__version__",
    "build",
    "card",
    "export",
    "features",
    "hookimpl",
    "list_models",
    "load",
    "predict",
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


def export(
    name_or_card: str | Card,
    output_dir: str | PathLike[str],
    *,
    format: Literal["onnx", "triton"] = "onnx",
    weights: str | PathLike[str] | None = None,
    layout: str | None = None,
    pretrained: bool = True,
    batch: int | None = None,
    frames: int | None = None,
    opset: int | None = None,
    dynamic: bool = True,
    precision: str = "fp32",
    calibrate: str | PathLike[str] | None = None,
    validate: str | PathLike[str] | None = None,
    accept_drop: bool = False,
    check: bool = True,
    force: bool = False,
) -> ExportReport:
    """Export a model to ONNX, check it against PyTorch, and return what was written.

    ``format="onnx"`` writes ``output_dir/model.onnx`` (one self-contained file),
    ``card.yaml`` and ``export.json`` (the report). ``format="triton"`` treats
    ``output_dir`` as a Triton model repository and writes ``<name>/config.pbtxt``,
    ``<name>/1/model.onnx`` (and ``labels.txt`` for classifiers) beside any models
    already there. Graph inputs are the card's inputs (float32, the card's layout),
    outputs are the architecture's ``ExportHints.output_names`` in that order, and
    the card's preprocessing and labels are in the file's ``metadata_props``.

    Weights are chosen as in :func:`load` (``pretrained``, ``weights``, ``layout``).
    ``batch`` and ``frames`` set the example shapes (batch defaults to 2 for a
    dynamic batch axis, which torch would freeze at 1); ``dynamic=False`` fixes
    every axis. ``precision="fp16"`` converts the graph to float16 with float32 inputs
    and outputs; ``precision="int8"`` also writes ``model.int8.onnx``, quantized by NNCF
    on the ``calibrate`` inputs (a folder or manifest, pre-processed as the predictor
    does) and compared with float32 on ``validate``'s inputs (or a held-out fifth of
    ``calibrate``'s): below 99% agreement (top-1 for classifiers, the task's analogue
    otherwise) it is refused with the numbers unless ``accept_drop``. Unless
    ``check=False`` the file is checked with ``onnx.checker`` and with onnxruntime
    against PyTorch at the export shapes and at other sizes of every dynamic axis; a
    failure raises :class:`ExportCheckError` with the numbers, and nothing is written.
    The output folder follows :mod:`zoo.output`'s rule: new, empty or zoo's own files
    only; ``force=True`` writes beside a user's files, and no file of the user's is ever
    replaced or deleted. An ``opset`` the exporter cannot write is refused, never
    silently replaced.
    """
    from zoo.exporters.pipeline import export as run_export

    return run_export(
        name_or_card,
        output_dir,
        format=format,
        weights=weights,
        layout=layout,
        pretrained=pretrained,
        batch=batch,
        frames=frames,
        opset=opset,
        dynamic=dynamic,
        precision=precision,
        calibrate=calibrate,
        validate=validate,
        accept_drop=accept_drop,
        check=check,
        force=force,
    )


def predictor(
    name: str | Card,
    *,
    device: str = "auto",
    precision: Literal["fp32", "bf16", "fp16", "int8"] | None = None,
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
) -> Predictor:
    """A predictor for model ``name``: files, images or frames in, typed results out.

    Pre-processing comes from the card, post-processing from the task. ``backend``
    (``"torch"``, ``"onnxruntime"`` or ``"openvino"``), ``memory_format`` and ``compile``
    default to the fastest option measured for the architecture. ``precision`` is
    ``"fp32"`` unless asked: ``"bf16"`` (OpenVINO's bfloat16 or torch autocast; a CPU
    needs AVX512-BF16 or AMX), ``"fp16"`` (torch autocast on a GPU) or ``"int8"`` (a
    quantized graph: ``onnx=`` a ``model.int8.onnx``, or quantized from the ``calibrate=``
    inputs and checked against float32 on ``validate=`` inputs, refused below the
    agreement threshold unless ``accept_drop``). ``device``: ``"auto"`` is CUDA, then
    MPS, then CPU. ``weights``/``layout``/``pretrained`` are those of :func:`load`;
    ``onnx`` is a file ``zoo export`` wrote. ``max_frames`` is the longest clip a whole-video
    card (I3D) runs at once; a longer video runs in windows whose per-time outputs are
    combined as the network combines them. An option that cannot apply to the model or the
    backend (``clips`` for a model that averages none, ``memory_format`` on an ONNX backend)
    raises :class:`zoo.errors.OptionError`. See :mod:`zoo.inference`.
    """
    from zoo.inference import predictor as build_predictor

    return build_predictor(
        name,
        device=device,
        precision=precision,
        backend=backend,
        weights=weights,
        layout=layout,
        pretrained=pretrained,
        compile=compile,
        onnx=onnx,
        memory_format=memory_format,
        clips=clips,
        calibrate=calibrate,
        validate=validate,
        accept_drop=accept_drop,
        max_frames=max_frames,
    )


def features(
    model: str | Card, inputs: CorpusInputs, output: str | PathLike[str], **options: Any
) -> CorpusReport:
    """Dense features of every input (files, folders, globs, manifests) into ``output``:
    ``<key>.npy`` per input (float32, one row per window) and ``index.parquet``.

    Resumable (a rerun computes only what is missing), one bad input never stops it, on
    this machine's cores or a Ray cluster (``engine="ray"``). ``options`` are
    :func:`zoo.corpus.features`'s (``layer``, ``window``, ``stride``, ``fps``, ...) and
    :func:`predictor`'s.
    """
    from zoo.corpus import features as run

    return run(model, inputs, output, **options)


def predict(
    model: str | Card, inputs: CorpusInputs, output: str | PathLike[str], **options: Any
) -> CorpusReport:
    """The prediction for every input (files, folders, globs, manifests) as one row of the
    Parquet table ``output``; resumable, one bad input never stops it, local or on Ray.
    ``options`` are :func:`zoo.corpus.predict`'s (``topk``, ``engine``, ...) and
    :func:`predictor`'s. For a few inputs in memory, :func:`predictor` returns results.
    """
    from zoo.corpus import predict as run

    return run(model, inputs, output, **options)
