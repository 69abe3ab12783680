"""int8 that proves its accuracy: NNCF post-training quantization and a gate against float32.

:func:`zoo.quantize.int8.quantize` turns a checked float32 ONNX file into
``model.int8.onnx`` beside it, calibrated on the user's inputs (pre-processed exactly
as the predictor does, :mod:`zoo.quantize.inputs`), and compares it with float32 on
held-out inputs (:mod:`zoo.quantize.gate`). ``zoo export --precision int8`` uses it,
and ``zoo.predictor(precision="int8", calibrate=...)`` through
:func:`zoo.quantize.cache.quantized_model`, which keeps the result in the zoo cache.
Importing this package imports neither torch nor NNCF: only the typed results.
"""

from __future__ import annotations

from zoo.quantize.gate import DEFAULT_THRESHOLD, Accuracy
from zoo.quantize.report import INT8_FILE, QuantizationReport

__all__ = ["DEFAULT_THRESHOLD", "INT8_FILE", "Accuracy", "QuantizationReport"]
