"""The ONNX file the onnxruntime backend runs: exported once per model and weights, then reused.

``zoo export`` (:func:`zoo.export`) writes and checks the file; this module decides where
it lives. A model with real weights (the card's, or a file) is exported into the zoo
cache under a key of everything the graph depends on: the card, the weights file's path,
size and modification time (or the card's weights), the layout, and the zoo's and torch's
versions. Randomly initialised weights cannot be found again, so their export goes to a
temporary folder that is removed when the process ends.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import tempfile
from contextlib import nullcontext
from os import PathLike
from pathlib import Path

from zoo.cards import Card
from zoo.errors import ZooError
from zoo.registry import Registry, current_registry, using_registry
from zoo.version import __version__

MODEL_FILE = "model.onnx"
TEMPORARY_PREFIX = "zoo-onnx-"
#: The metadata key an int8 graph carries (``zoo.quantize``); a float32 graph has none.
PRECISION_KEY = "zoo.precision"


def exported_model(
    source: str | Card,
    card: Card,
    *,
    weights: str | PathLike[str] | None,
    layout: str | None,
    pretrained: bool,
    registry: Registry | None = None,
) -> Path:
    """``model.onnx`` for this model and weights, exporting (and checking) it on first use.

    The export runs in the predictor's ``registry``, so a model made of other models (a
    fusion model's backbone) is exported from the registry it is run from.
    """
    import zoo

    if weights is None and not pretrained:
        target = _temporary_folder(card) / "export"
    else:
        target = cache_folder(card, weights, layout, registry)
        if (target / MODEL_FILE).is_file():
            return target / MODEL_FILE
    with using_registry(registry) if registry else nullcontext():
        zoo.export(source, target, weights=weights, layout=layout, pretrained=pretrained)
    return target / MODEL_FILE


def cache_folder(
    card: Card,
    weights: str | PathLike[str] | None,
    layout: str | None,
    registry: Registry | None = None,
) -> Path:
    """Where the export of ``card`` with these weights is kept in the zoo cache.

    The key holds everything the graph depends on besides the code of this zoo: the
    card, the weights file, the architecture's export hints and the version of the
    plugin that declares them, so upgrading a plugin makes a new export.
    """
    import torch

    from zoo.weights.cache import area_folder, model_entry

    registry = registry or current_registry()
    architecture = registry.architecture(card.architecture)
    if weights is None:
        source: object = "pretrained"
    else:
        path = Path(weights).resolve()
        stat = path.stat()
        source = [str(path), stat.st_size, stat.st_mtime_ns]
    facts = {
        "card": card.to_data(),
        "weights": source,
        "layout": layout,
        "export": architecture.export.model_dump(mode="json"),
        "plugin": registry.plugin_version(architecture),
        "zoo": __version__,
        "torch": torch.__version__,
    }
    key = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    return area_folder("onnx") / model_entry(card.name, key)


def _temporary_folder(card: Card) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"{TEMPORARY_PREFIX}{card.name}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def graph_precision(path: Path) -> str:
    """``int8`` for a graph :mod:`zoo.quantize` wrote, else ``fp32`` (read from its metadata)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf's DecodeError and friends
        raise ZooError(f"{path} is not an ONNX file: {error}") from None
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    return metadata.get(PRECISION_KEY, "fp32")


def is_temporary(path: Path) -> bool:
    """Whether ``path`` lies in a temporary export folder (random weights), gone at exit."""
    return any(part.startswith(TEMPORARY_PREFIX) for part in Path(path).parts)
