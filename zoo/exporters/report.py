"""What an export wrote and how it was checked, as data (written beside the model as export.json).

The report is built by the export layer and only rendered by the CLI. It says
enough to trust the file without rerunning anything: the graph's inputs and
outputs with their dynamic axes, the exporter (and why, for a fallback), and
each check's largest differences against the tolerance.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from zoo.quantize.report import QuantizationReport

Format = Literal["onnx", "triton"]
FilePrecision = Literal["fp32", "fp16", "int8"]
Exporter = Literal["dynamo", "legacy"]


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TensorInfo(Report):
    """One graph input or output: a string in ``shape`` is a dynamic axis's name."""

    name: str
    dtype: str
    shape: list[int | str]


class OutputDifference(Report):
    """onnxruntime against PyTorch for one output of one check."""

    name: str
    shape: list[int]
    expected_shape: list[int] | None = Field(
        default=None, description="PyTorch's shape, given only when the shapes differ"
    )
    max_abs: float | None = Field(default=None, description="None when the shapes differ")
    max_rel: float | None = Field(
        default=None, description="max |onnx - torch| / max |torch|; None when the shapes differ"
    )
    passed: bool

    def describe(self) -> str:
        if self.max_abs is None or self.max_rel is None:
            return f"{self.name} shape {self.shape}, PyTorch's {self.expected_shape}"
        return f"{self.name} max_abs {self.max_abs:.3g}, max_rel {self.max_rel:.3g}"


class Check(Report):
    """One run of both on the same fresh random inputs."""

    name: str
    input_shapes: dict[str, list[int]]
    outputs: list[OutputDifference]
    reordered: bool = Field(
        default=False, description="set entries (detections) came in another order and were matched"
    )
    passed: bool


class ExportReport(Report):
    """Everything :func:`zoo.export` wrote and measured."""

    model: str
    architecture: str
    format: Format
    output_dir: str
    files: list[str] = Field(description="paths relative to output_dir")
    weights: str = Field(description="'pretrained', 'random' or the weights file used")
    exporter: Exporter
    exporter_reason: str = ""
    opset: int
    dynamic: bool
    precision: FilePrecision = Field(
        description="fp32; fp16 (the graph in float16, float32 inputs and outputs); int8 (a "
        "QDQ model.int8.onnx beside the checked float32 model.onnx)"
    )
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    checked: bool
    tolerance: float = Field(description="the max_rel each output must stay within")
    checks: list[Check] = Field(default_factory=list)
    passed: bool
    openvino_checks: list[Check] = Field(
        default_factory=list,
        description="the same checks run by OpenVINO in float32, when it is installed and "
        "compiles the graph; the OpenVINO backend runs the file only if they passed",
    )
    size_bytes: int
    seconds: float
    versions: dict[str, str]
    warnings: list[str] = Field(
        default_factory=list, description="what torch and the converters warned about, once each"
    )
    quantization: QuantizationReport | None = Field(
        default=None, description="int8: how it was calibrated and how close it stays to fp32"
    )

    def failures(self) -> list[str]:
        """One line per output that missed the tolerance, with its numbers."""
        return [
            f"{check.name}: {output.describe()} (tolerance {self.tolerance:g})"
            for check in self.checks
            for output in check.outputs
            if not output.passed
        ]
