"""What a predictor returns: typed results, one per input, printable as JSON.

``result.to_json_data()`` is the shape ``zoo predict --json`` prints, one object per input:
``{"input", "model", "task", ...}`` with ``predictions`` for classifiers, ``detections``
for detectors and the written GIF's path under ``forecast`` for forecasters. Tensors stay
out of JSON; they are on the result as numpy arrays where a user needs them (forecast
frames, extracted features). This module imports no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class Result(BaseModel):
    """What every result says: which input, which model, which task, and how it was sampled."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, populate_by_name=True)

    input: str
    model: str
    task: str
    note: str = Field(default="", description="how the input was sampled, when it matters")

    def to_json_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class LabelScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    index: int
    score: float = Field(description="softmax probability (averaged over clips or frames)")


class Classification(Result):
    """The top-k classes, best first. JSON calls ``labels`` ``predictions``."""

    labels: list[LabelScore] = Field(
        serialization_alias="predictions",
        validation_alias=AliasChoices("labels", "predictions"),
    )
    clips: int = Field(default=1, description="clips or frames whose probabilities were averaged")
    framewise: bool = Field(
        default=False, description="an image classifier ran on a video's frames one by one"
    )

    @property
    def top(self) -> LabelScore:
        return self.labels[0]


class Detection(BaseModel):
    model_config = ConfigDict(frozen=True)

    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in image pixels")
    label: str
    index: int
    score: float


class Detections(Result):
    """Detected objects, best first, with boxes in pixels of the original image."""

    detections: list[Detection]
    image_size: tuple[int, int] = Field(description="(height, width) of the original image")
    threshold: float

    @property
    def boxes(self) -> list[tuple[float, float, float, float]]:
        return [detection.box for detection in self.detections]

    @property
    def scores(self) -> list[float]:
        return [detection.score for detection in self.detections]

    @property
    def labels(self) -> list[int]:
        return [detection.index for detection in self.detections]

    @property
    def label_names(self) -> list[str]:
        return [detection.label for detection in self.detections]


class Forecast(Result):
    """Forecast frames ``(T, C, H, W)`` in the input's value range; ``forecast`` is the GIF."""

    frames: np.ndarray = Field(exclude=True)
    value_range: tuple[float, float]
    shape: list[int] = Field(description="(frames, channels, height, width)")
    fps: float | None = None
    forecast: str | None = Field(default=None, description="path of the written GIF")

    def pixels(self) -> np.ndarray:
        """uint8 frames ``(T, H, W, 3)``, for showing or writing."""
        low, high = self.value_range
        scaled = np.clip((self.frames - low) / (high - low), 0.0, 1.0)
        uint8 = np.rint(scaled * 255).astype(np.uint8).transpose(0, 2, 3, 1)
        return np.repeat(uint8, 3, axis=-1) if uint8.shape[-1] == 1 else uint8[..., :3]

    def write_gif(self, path: str | Path) -> Forecast:
        """Write the frames as an animated GIF; returns the result with ``forecast`` set."""
        from zoo.inference.render import write_gif

        target = write_gif(self.pixels(), Path(path), fps=self.fps or 10.0)
        return self.model_copy(update={"forecast": str(target)})


class Features(Result):
    """Feature maps of a feature extractor; their shapes in JSON, the arrays in ``arrays``."""

    shapes: dict[str, list[int]]
    arrays: dict[str, np.ndarray] = Field(exclude=True)
