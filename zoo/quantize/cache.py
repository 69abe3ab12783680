"""The int8 file ``zoo.predictor(precision="int8", calibrate=...)`` runs: made once, then reused.

It is quantized from the float32 file the ONNX backends run (exported on first use into
the zoo cache, :mod:`zoo.inference.exported`) and kept in the zoo cache's ``int8/``
folder under a key of everything it depends on: that export (its folder's own key), each
calibration and validation file's path, size and modification time, the threshold and
NNCF's version. Its report is kept beside it, so a later use that does not accept a drop
is refused with the same numbers. Randomly initialised weights are quantized into a
temporary folder, as their export is.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from contextlib import nullcontext
from importlib.metadata import PackageNotFoundError, version
from os import PathLike
from pathlib import Path

from zoo.cards import Card
from zoo.errors import ZooWarning
from zoo.inference.exported import exported_model
from zoo.output import write_text_atomic
from zoo.quantize import gate
from zoo.quantize.inputs import fingerprint, input_files
from zoo.quantize.int8 import quantize
from zoo.quantize.report import INT8_FILE, QuantizationReport
from zoo.registry import Registry, current_registry, using_registry

AREA = "int8"
REPORT_FILE = "quantization.json"


def quantized_model(
    source: str | Card,
    card: Card,
    *,
    calibrate: str | PathLike[str],
    validate: str | PathLike[str] | None,
    accept_drop: bool,
    weights: str | PathLike[str] | None,
    layout: str | None,
    pretrained: bool,
    registry: Registry | None = None,
    threshold: float = gate.DEFAULT_THRESHOLD,
) -> Path:
    """``model.int8.onnx`` for this model, weights and calibration, quantized on first use."""
    import warnings

    from zoo.weights.cache import area_folder, model_entry

    registry = registry or current_registry()
    float32 = exported_model(
        source, card, weights=weights, layout=layout, pretrained=pretrained, registry=registry
    )
    key = _key(float32, calibrate, validate, threshold)
    folder = area_folder(AREA) / model_entry(card.name, key)
    if weights is None and not pretrained:
        folder = float32.parent / AREA  # beside the temporary export, removed with it
    report_path = folder / REPORT_FILE
    if not report_path.is_file():
        with using_registry(registry) if registry else nullcontext():
            report = _quantized_into(
                folder, float32, card, registry, calibrate, validate, threshold
            )
        write_text_atomic(report_path, report.model_dump_json(indent=2))
    report = QuantizationReport.model_validate_json(report_path.read_text(encoding="utf-8"))
    for accuracy in report.accuracy:
        gate.enforce(accuracy, card.name, accept_drop=accept_drop)
        if not accuracy.passed:
            warnings.warn(f"{card.name}: {accuracy.describe()}, below the threshold", ZooWarning, 2)
    return folder / INT8_FILE


def _quantized_into(
    folder: Path,
    float32: Path,
    card: Card,
    registry: Registry,
    calibrate: str | PathLike[str],
    validate: str | PathLike[str] | None,
    threshold: float,
) -> QuantizationReport:
    """Quantize next to a copy of the float32 file, then keep only the int8 one."""
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / float32.name
    shutil.copyfile(float32, staged)
    try:
        return quantize(
            staged,
            card,
            registry.architecture(card.architecture),
            calibrate=calibrate,
            validate=validate,
            accept_drop=True,  # kept with its numbers; each use decides (quantized_model)
            threshold=threshold,
        )
    finally:
        staged.unlink(missing_ok=True)


def _key(
    float32: Path,
    calibrate: str | PathLike[str],
    validate: str | PathLike[str] | None,
    threshold: float,
) -> str:
    facts = {
        "float32": float32.parent.name,
        "calibrate": fingerprint(input_files(calibrate)),
        "validate": None if validate is None else fingerprint(input_files(validate)),
        "threshold": threshold,
        "nncf": _nncf_version(),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def _nncf_version() -> str | None:
    try:
        return version("nncf")
    except PackageNotFoundError:
        return None
