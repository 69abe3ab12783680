"""Typed results of the interpretation layer; each prints as JSON (``model_dump_json``).

Results that carry tensors (the adversarial input, the embeddings) keep them in fields
excluded from the JSON, so one object serves both Python callers and ``--json``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Prediction(Result):
    """One class and the probability the model gives it (softmax of its scores)."""

    index: int
    label: str | None = None
    probability: float

    @property
    def name(self) -> str:
        return self.label or f"class {self.index}"

    def describe(self) -> str:
        return f"{self.name} ({self.probability:.1%})"


class AttackedSample(Result):
    """What an attack did to one sample, in pixel space [0, 1]."""

    target: Prediction = Field(description="the attacked class, scored on the clean input")
    target_after: Prediction = Field(description="the same class, scored on the adversarial one")
    clean: Prediction = Field(description="top-1 on the clean input")
    adversarial: Prediction = Field(description="top-1 on the adversarial input")
    linf: float = Field(description="largest change of any pixel value (L-infinity norm)")

    @property
    def fooled(self) -> bool:
        return self.adversarial.index != self.target.index


class Attack(Result):
    """An FGSM or PGD attack on a batch; ``adversarial`` holds the perturbed pixels."""

    method: Literal["fgsm", "pgd"]
    eps: float
    steps: int
    step_size: float
    samples: list[AttackedSample]
    adversarial: Any = Field(exclude=True, repr=False, description="the adversarial pixels")


class Neighbour(Result):
    """An input of the searched folder and its cosine similarity to the query."""

    name: str
    similarity: float


class MapPoint(Result):
    name: str
    group: str
    x: float
    y: float


class FeatureMap(Result):
    """Embeddings projected to 2-D, and how well the groups separate there."""

    method: Literal["pca", "tsne"]
    points: list[MapPoint]
    knn_accuracy: float | None = Field(
        default=None,
        description="leave-one-out k-NN accuracy of the groups in the 2-D map "
        "(chance: the largest group's share); None with fewer than two groups",
    )
    chance: float | None = None


class Explanation(Result):
    """A Grad-CAM or occlusion map of one input, and the pictures drawn from it."""

    model: str
    input: str
    method: Literal["gradcam", "occlusion"]
    score: Literal["class score", "output change"] = Field(
        description="what the map explains: a class's score, or (a model without classes) "
        "how far the output moves when part of the input is hidden"
    )
    target: Prediction | None = Field(default=None, description="the explained class")
    top: Prediction | None = Field(default=None, description="the top-1 on this input")
    layer: str | None = Field(default=None, description="Grad-CAM's layer")
    window: list[int] | None = Field(default=None, description="occlusion window, map axes")
    stride: list[int] | None = None
    baseline: float | None = Field(default=None, description="occluded pixels' value, [0, 1]")
    axes: str = Field(description="the map's axes, e.g. THW or HW")
    shape: list[int]
    frame_share: list[float] | None = Field(
        default=None, description="for clips, each frame's share of the map's positive mass"
    )
    files: list[str]
    note: str = ""
    heat: Any = Field(exclude=True, repr=False, description="the map, a numpy array")


class AttackReport(Result):
    """An attack on one input, and the files written: the adversarial input and a figure."""

    model: str
    input: str
    attack: Attack
    files: list[str]
    note: str = ""
