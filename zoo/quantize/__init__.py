"""int8 that proves its accuracy: NNCF post-training quantization and a gate against float32.

:func:`quantize` turns a checked float32 ONNX file into ``model.int8.onnx`` beside it,
calibrated on the user's inputs (pre-processed exactly as the predictor does,
:mod:`zoo.quantize.inputs`), and compares it with float32 on held-out inputs
(:mod:`zoo.quantize.gate`); ``zoo export --precision int8`` and
``zoo.predictor(precision="int8", calibrate=...)`` (through :func:`quantized_model`,
which keeps the result in the zoo cache) both use it. Importing this package imports
neither torch nor NNCF.
"""

from __future__ import annotations

from zoo.quantize.cache import quantized_model
from zoo.quantize.gate import DEFAULT_THRESHOLD, Accuracy
from zoo.quantize.int8 import INT8_FILE, QuantizationReport, quantize

__all__ = [
    "DEFAULT_THRESHOLD",
    "INT8_FILE",
    "Accuracy",
    "QuantizationReport",
    "quantize",
    "quantized_model",
]
