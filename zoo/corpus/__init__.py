"""Whole datasets through a model: dense features and predictions, resumable, on any engine.

    >>> import zoo
    >>> zoo.features("c3d", "videos/", "feats/", window=16, stride=8)     # feats/<key>.npy
    >>> zoo.predict("i3d-kinetics", "clips.txt", "results.parquet", engine="ray")

Both take files, folders, globs and manifests (:mod:`zoo.corpus.inputs`), run on this
machine's processes or a Ray cluster (:mod:`zoo.corpus.engines`), skip what an earlier run
finished, record each bad input and go on, and return a :class:`CorpusReport`. Their
keyword arguments beyond the job's own are :func:`zoo.predictor`'s (``device``,
``backend``, ``weights``, ``pretrained``, ...). Importing this module imports no torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from zoo.cards import Card
from zoo.corpus.inputs import CorpusInput, expand_inputs
from zoo.corpus.job import Engine, run_job
from zoo.corpus.records import CorpusReport, Failure, Identity, card_hash, weights_identity
from zoo.corpus.store import Store
from zoo.errors import ArgumentError

__all__ = [
    "CorpusInput",
    "CorpusReport",
    "PooledFeatures",
    "features",
    "pooled_features",
    "predict",
]

Inputs = str | PathLike[str] | Iterable[str | PathLike[str]]
#: Predictor options that choose where and how fast a model runs, or how a reduced
#: precision is vetted, not what it computes: they may change between runs into one folder.
PLACEMENT = frozenset(
    {"device", "backend", "onnx", "memory_format", "compile", "weights", "layout", "pretrained"}
    | {"max_frames", "validate", "accept_drop"}
)
#: Option values that mean what leaving the option out means.
DEFAULTS = {"precision": "fp32"}


def features(
    model: str | Card,
    inputs: Inputs,
    output: str | PathLike[str],
    *,
    layer: str = "pooled",
    pool: str = "avg",
    window: int | None = None,
    stride: int | None = None,
    fps: float | None = None,
    pad_last: bool = False,
    batch_size: int = 8,
    engine: Engine = "local",
    workers: int | None = None,
    address: str | None = None,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    overwrite: bool = False,
    force: bool = False,
    progress: bool = False,
    **options: Any,
) -> CorpusReport:
    """Dense features of every input into ``output/<key>.npy`` (float32, windows x D) and
    ``output/index.parquet`` (one row per input: status, error, windows' frames and times).

    A video gives one row per window of ``window`` frames every ``stride`` frames at
    ``fps`` (defaults: the card's clip length, one window's stride, the card's frame rate);
    an image one row; an image model one row per frame of a video. ``layer`` is
    ``"pooled"`` (what the classifier reads), ``"logits"`` or a module path, whose output is
    pooled by ``pool`` (``"avg"``, ``"max"``, ``"none"``). Only whole windows are kept
    unless ``pad_last``.
    """
    from zoo.corpus import layers, windows
    from zoo.corpus.tasks import FeatureTask, ModelSource

    card, architecture, options = _resolve(model, options)
    _check_batch(batch_size)
    layers.check_layer(card, architecture, layer, pool)
    window_options = windows.resolve(
        card.inputs[0], window=window, stride=stride, fps=fps, pad_last=pad_last, model=card.name
    )
    if layers.needs_module(layer) and options.get("backend") is None:
        options = {**options, "backend": "torch"}
    computed = {
        "layer": layer,
        "pool": pool if layer != "pooled" else "",
        **{key: value for key, value in vars(window_options).items()},
    }
    identity = _identity("features", card, options, computed)
    folder = Path(output)
    store = Store.features(folder, identity)
    items = expand_inputs(inputs)
    task = FeatureTask(
        source=ModelSource(_source(model, card), dict(options)),
        layer=layer,
        pool=pool,
        windows=window_options,
        batch_size=batch_size,
        folder=str(folder),
    )
    return run_job(
        task,
        store,
        items,
        [f"{item.key}.npy" for item in items],
        chunk=1,
        **_engine_options(engine, workers, address, num_cpus, num_gpus),
        overwrite=overwrite,
        force=force,
        progress=progress,
    )


def predict(
    model: str | Card,
    inputs: Inputs,
    output: str | PathLike[str],
    *,
    topk: int = 5,
    threshold: float = 0.5,
    batch_size: int = 8,
    engine: Engine = "local",
    workers: int | None = None,
    address: str | None = None,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    overwrite: bool = False,
    force: bool = False,
    progress: bool = False,
    **options: Any,
) -> CorpusReport:
    """The predictor's result for every input as one row of the table ``output`` (a
    ``.parquet`` file): top-k labels and scores; boxes, labels and scores; or the path of
    the forecast GIF (written into ``<output stem>.zoo/forecasts/``).
    """
    from zoo.corpus.tasks import ModelSource, PredictTask

    table = Path(output)
    if table.suffix.lower() != ".parquet":
        raise ArgumentError(f"the results table must be a .parquet file, found {table}")
    if topk < 1:
        raise ArgumentError(f"topk must be at least 1, found {topk}")
    if not 0 <= threshold <= 1:
        raise ArgumentError(f"threshold must be in [0, 1], found {threshold}")
    card, _, options = _resolve(model, options)
    _check_batch(batch_size)
    identity = _identity("predict", card, options, {"topk": topk, "threshold": threshold})
    store = Store.results(table, identity)
    task = PredictTask(
        source=ModelSource(_source(model, card), dict(options)),
        topk=topk,
        threshold=threshold,
        batch_size=batch_size,
        folder=str(store.state),
    )
    return run_job(
        task,
        store,
        expand_inputs(inputs),
        [],
        chunk=batch_size,
        **_engine_options(engine, workers, address, num_cpus, num_gpus),
        overwrite=overwrite,
        force=force,
        progress=progress,
    )


@dataclass(frozen=True)
class PooledFeatures:
    """One feature vector per input that succeeded (the mean of its windows' rows)."""

    paths: list[str]
    features: np.ndarray
    failures: list[Failure]
    report: CorpusReport


def pooled_features(
    model: str | Card, inputs: Inputs, cache: str | PathLike[str], **kwargs: Any
) -> PooledFeatures:
    """One vector per input, as a linear probe or a retrieval index needs: :func:`features`
    into the folder ``cache`` (computed once, reused by every later call with the same
    model and options), then each input's rows averaged. ``kwargs`` are :func:`features`'s.
    """
    from zoo.corpus.tables import read_index

    report = features(model, inputs, cache, **kwargs)
    rows = {row["path"]: row for row in read_index(report.index)}
    paths, vectors = [], []
    for item in expand_inputs(inputs):
        row = rows.get(item.path)
        if row is not None and row["status"] == "ok":
            paths.append(item.path)
            vectors.append(np.load(Path(cache) / row["output"]).mean(axis=0))
    failures = [
        Failure(path=row["path"], error=row["error"])
        for row in rows.values()
        if row["status"] == "failed"
    ]
    width = vectors[0].shape[0] if vectors else 0
    stacked = np.stack(vectors) if vectors else np.zeros((0, width), dtype=np.float32)
    return PooledFeatures(paths, stacked.astype(np.float32), failures, report)


def _resolve(model: str | Card, options: dict[str, Any]) -> tuple[Card, Any, dict[str, Any]]:
    """The card, the architecture and the predictor options. A model folder (``out/``)
    becomes its card, its weights file added to the options as ``weights=``, so every
    worker loads the same file, wherever it runs, and the job's identity holds its hash."""
    from zoo.registry import default_registry
    from zoo.weights.folder import folder_source

    if not isinstance(model, str | Card):
        raise ArgumentError(f"expected a model name or a zoo.Card, found {type(model).__name__}")
    if "registry" in options:
        raise ArgumentError("registry= cannot travel to worker processes; install the plugin")
    registry = default_registry()
    folder = folder_source(model, options.get("weights"), options.get("pretrained", True))
    if isinstance(model, Card):
        card = model
    elif folder is not None:
        card, weights = folder
        if weights is not None:
            options = {**options, "weights": str(Path(weights).resolve())}
    elif model.startswith("hf-hub:"):
        from zoo.weights import fetch_hub_repo

        card, _ = fetch_hub_repo(model.removeprefix("hf-hub:"), with_weights=False)
    else:
        card = registry.card(model)
    return card, registry.architecture(card.architecture), options


def _source(model: str | Card, card: Card) -> str | Card:
    return model if isinstance(model, str) and model.startswith("hf-hub:") else card


def _identity(kind: str, card: Card, options: dict[str, Any], computed: dict[str, Any]) -> Identity:
    weights = weights_identity(
        options.get("weights"), options.get("layout"), options.get("pretrained", True)
    )
    chosen = {
        key: value
        for key, value in options.items()
        if key not in PLACEMENT and value is not None and DEFAULTS.get(key) != value
    }
    return Identity(
        kind=kind,
        model=card.name,
        card_hash=card_hash(card),
        weights=weights,
        options={**chosen, **computed},
    )


def _engine_options(
    engine: Engine,
    workers: int | None,
    address: str | None,
    num_cpus: float | None,
    num_gpus: float | None,
) -> dict[str, Any]:
    if workers is not None and workers < 1:
        raise ArgumentError(f"workers must be at least 1, found {workers}")
    return {
        "engine": engine,
        "workers": workers,
        "address": address,
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
    }


def _check_batch(batch_size: int) -> None:
    if batch_size < 1:
        raise ArgumentError(f"batch_size must be at least 1, found {batch_size}")
