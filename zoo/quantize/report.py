"""What an int8 quantization did and measured, as data: in export.json and the zoo cache.

Importing this module imports neither torch nor NNCF, so the CLI and the export report
can describe a quantization without them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from zoo.quantize.gate import Accuracy

INT8_FILE = "model.int8.onnx"


class QuantizationReport(BaseModel):
    """How an int8 file was made and how close it stays to float32 (in export.json)."""

    model_config = ConfigDict(extra="forbid")

    file: str
    method: str
    nncf: str
    calibration: str = Field(description="the folder or manifest given")
    calibration_inputs: int
    calibration_rows: int
    validation: str = Field(description="--validate's source, or the held-out calibration part")
    validation_inputs: int
    validation_rows: int
    accuracy: list[Accuracy]
    accepted_drop: bool = Field(description="used although below the threshold (--accept-drop)")
    size_bytes: int
    seconds: float

    @property
    def passed(self) -> bool:
        return all(accuracy.passed for accuracy in self.accuracy)
