"""A checked float32 ONNX file -> a QDQ int8 file that onnxruntime and OpenVINO both run.

NNCF's post-training quantization (``nncf.quantize``) on the user's calibration rows; a
graph with attention (a Softmax feeding a MatMul) is quantized with NNCF's transformer
scheme (``model_type=TRANSFORMER``), which keeps the parts that lose most in int8 in
float. The file keeps the float32 file's inputs, outputs and metadata, plus
``zoo.precision: int8``. Then the gate (:mod:`zoo.quantize.gate`) compares it with
float32 on held-out rows, on onnxruntime and, when it is installed, on OpenVINO: a model
below the threshold is refused with its numbers unless the drop is accepted.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from importlib.metadata import version
from os import PathLike
from pathlib import Path
from typing import Any

from zoo.architecture import Architecture
from zoo.cards import Card
from zoo.errors import QuantizationError, RuntimeCompileError
from zoo.inference.exported import PRECISION_KEY
from zoo.quantize import gate
from zoo.quantize.inputs import HOLD_OUT_EVERY, Split, prepared_rows, split
from zoo.quantize.report import INT8_FILE, QuantizationReport

INT8_EXTRA = "pip install 'zoo-models[int8]'"


def quantize(
    float32: Path,
    card: Card,
    architecture: Architecture,
    *,
    calibrate: str | PathLike[str],
    validate: str | PathLike[str] | None = None,
    accept_drop: bool = False,
    threshold: float = gate.DEFAULT_THRESHOLD,
) -> QuantizationReport:
    """Write ``model.int8.onnx`` beside ``float32`` and measure it; refuse it below threshold.

    Nothing is left behind when it is refused.
    """
    started = time.perf_counter()
    files = split(calibrate, validate)
    calibration = prepared_rows(files.calibration, card, architecture)
    validation = prepared_rows(files.validation, card, architecture)
    target = float32.with_name(INT8_FILE)
    method = quantize_graph(float32, target, calibration)
    try:
        accuracy = [
            gate.measure(
                card,
                architecture,
                reference,
                candidate,
                validation,
                precision="int8",
                runtime=runtime,
                threshold=threshold,
            )
            for runtime, reference, candidate in _runtimes(float32, target, card)
        ]
        for result in accuracy:
            gate.enforce(result, card.name, accept_drop=accept_drop)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return QuantizationReport(
        file=target.name,
        method=method,
        nncf=version("nncf"),
        calibration=str(calibrate),
        calibration_inputs=len(files.calibration),
        calibration_rows=len(calibration),
        validation=_validation_source(files, validate),
        validation_inputs=len(files.validation),
        validation_rows=len(validation),
        accuracy=accuracy,
        accepted_drop=not all(result.passed for result in accuracy),
        size_bytes=target.stat().st_size,
        seconds=round(time.perf_counter() - started, 3),
    )


def quantize_graph(float32: Path, target: Path, rows: list[dict[str, Any]]) -> str:
    """NNCF's int8 quantization of ``float32`` on ``rows`` into ``target``; what it did."""
    import onnx

    nncf = _nncf()
    model = onnx.load(str(float32))
    transformer = has_attention(model)
    options: dict[str, Any] = {"subset_size": len(rows)}
    if transformer:
        options["model_type"] = nncf.ModelType.TRANSFORMER
    try:
        with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars, off stdout
            quantized = nncf.quantize(model, nncf.Dataset(rows), **options)
    except Exception as error:  # NNCF raises many kinds, all meaning "could not quantize"
        raise QuantizationError(f"NNCF cannot quantize {float32.name}: {error}") from error
    del quantized.metadata_props[:]
    for entry in model.metadata_props:
        quantized.metadata_props.add(key=entry.key, value=entry.value)
    quantized.metadata_props.add(key=PRECISION_KEY, value="int8")
    onnx.save_model(quantized, str(target))
    scheme = "model_type=TRANSFORMER" if transformer else "default scheme"
    return f"nncf.quantize, {scheme}, {len(rows)} calibration rows"


def has_attention(model: Any) -> bool:
    """Whether the graph has attention: a Softmax whose output a MatMul reads."""
    softmax_outputs = {
        output for node in model.graph.node if node.op_type == "Softmax" for output in node.output
    }
    return any(
        node.op_type == "MatMul" and softmax_outputs.intersection(node.input)
        for node in model.graph.node
    )


def _runtimes(float32: Path, int8: Path, card: Card) -> list[tuple[str, Any, Any]]:
    """(runtime, float32 forward, int8 forward): onnxruntime, and OpenVINO when installed."""
    import torch

    from zoo.inference.backends import OnnxRuntimeBackend

    cpu = torch.device("cpu")
    reference = OnnxRuntimeBackend(float32, card, device=cpu)
    runtimes: list[tuple[str, Any, Any]] = [
        ("onnxruntime", reference, OnnxRuntimeBackend(int8, card, device=cpu))
    ]
    try:
        from zoo.inference.openvino_backend import OpenVinoBackend

        runtimes.append(("openvino", reference, OpenVinoBackend(int8, card, precision="int8")))
    except (ModuleNotFoundError, RuntimeCompileError):
        pass  # the predictor runs int8 on onnxruntime then; its figures are above
    return runtimes


def _nncf() -> Any:
    try:
        import nncf
    except ModuleNotFoundError:
        raise QuantizationError(
            f"precision int8 needs NNCF, which is not installed: {INT8_EXTRA}"
        ) from None
    nncf.set_log_level(logging.ERROR)
    return nncf


def _validation_source(files: Split, validate: str | PathLike[str] | None) -> str:
    if files.held_out:
        return f"every {HOLD_OUT_EVERY}th calibration input, held out"
    return str(validate)
