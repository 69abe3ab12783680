"""The export layer: every registered model to a checked ONNX file or a Triton model folder.

:func:`zoo.export` is the entry point; :mod:`zoo.exporters.pipeline` runs the
steps, :mod:`zoo.exporters.plan` reads the shapes from the card and the
architecture's export hints, :mod:`zoo.exporters.onnx` exports and describes the
graph, :mod:`zoo.exporters.checks` compares onnxruntime with PyTorch,
:mod:`zoo.exporters.triton` writes the model repository entry and
:mod:`zoo.exporters.report` is the typed result. Importing this package does not
import torch.
"""

from __future__ import annotations

from zoo.exporters.report import Check, ExportReport, OutputDifference, TensorInfo

__all__ = ["Check", "ExportReport", "OutputDifference", "TensorInfo"]
