"""zoo: a plugin-based model zoo for PyTorch video and vision models.

    >>> import zoo
    >>> zoo.list_models("i3d*")
    >>> model = zoo.load("i3d-kinetics")                # card -> verified weights -> eval model
    >>> model = zoo.load("i3d-kinetics", pretrained=False)
    >>> zoo.export("i3d-kinetics", "i3d/")              # checked model.onnx, card.yaml, report
    >>> zoo.predictor("i3d-kinetics")("clip.mp4").labels[:3]   # decode, sample, classify
    >>> zoo.finetune("resnet50", "photos/", "out/", mode="linear")  # a new model folder

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
    FinetuneError,
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
    from collections.abc import Callable

    from zoo.corpus import CorpusReport
    from zoo.corpus import Inputs as CorpusInputs
    from zoo.exporters.report import ExportReport
    from zoo.finetuning import EpochRecord, FinetuneReport
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
    "FinetuneError",
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
    "finetune",
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


def finetune(
    model: str | Card,
    data: str | PathLike[str],
    output: str | PathLike[str],
    *,
    val: str | PathLike[str] | None = None,
    mode: Literal["linear", "full"] = "full",
    epochs: int = 10,
    batch_size: int = 32,
    lr: float | None = None,
    weight_decay: float = 0.05,
    warmup_epochs: float = 1.0,
    label_smoothing: float = 0.1,
    clip_grad: float | None = 1.0,
    freeze_until: str | None = None,
    val_split: float = 0.1,
    precision: Literal["fp32", "bf16", "fp16"] = "fp32",
    seed: int = 0,
    crop_scale: tuple[float, float] = (0.08, 1.0),
    hflip: float = 0.5,
    max_unreadable: float = 0.05,
    workers: int = 2,
    device: str = "auto",
    weights: str | PathLike[str] | None = None,
    layout: str | None = None,
    pretrained: bool = True,
    name: str | None = None,
    resume: bool = False,
    force: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> FinetuneReport:
    """Fine-tune classifier ``model`` on ``data`` and write a new model folder ``output``.

    ``data`` is a folder with one subfolder per class (images or videos), or a ``.csv`` /
    ``.parquet`` manifest with ``path`` and ``label`` columns; the classes are its labels,
    sorted. Validation uses ``val`` (the same form) or holds out ``val_split`` of each
    class, and runs the predictor's own test-time pre-processing. ``mode="linear"``
    freezes the backbone, computes its pooled features once (cached in ``output``) and
    trains the classifier; ``"full"`` trains every weight after ``freeze_until`` with
    AdamW, warm-up and cosine decay, label smoothing, gradient clipping and autocast
    (``precision``), on random resized crops and flips drawn as the card's input says (a
    random window of the clip length at the card's frame rate for videos; ``hflip=0``
    where left and right matter).

    ``output`` receives ``model.safetensors``, ``card.yaml`` (a new ``name``, the parent
    and its weights' hash, the classes, the measured validation metrics and these
    options), ``history.json`` and the best and last checkpoints: ``zoo.load("out/")``
    loads it. A non-empty ``output`` is refused unless ``resume`` (continue from its last
    checkpoint: weights, optimizer, schedule and data order) or ``force`` (write beside
    its files). Under ``torchrun`` it trains with DistributedDataParallel; ``batch_size``
    is per process. ``weights``/``layout``/``pretrained`` choose the parent's weights as
    in :func:`load`; ``on_epoch`` is called with each epoch's record.
    """
    from zoo.finetuning import finetune as run_finetune

    return run_finetune(
        model,
        data,
        output,
        val=val,
        weights=weights,
        layout=layout,
        pretrained=pretrained,
        name=name,
        resume=resume,
        force=force,
        on_epoch=on_epoch,
        mode=mode,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        warmup_epochs=warmup_epochs,
        label_smoothing=label_smoothing,
        clip_grad=clip_grad,
        freeze_until=freeze_until,
        val_split=val_split,
        precision=precision,
        seed=seed,
        crop_scale=crop_scale,
        hflip=hflip,
        max_unreadable=max_unreadable,
        workers=workers,
        device=device,
    )
