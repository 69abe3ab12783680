"""Every knob of a fine-tuning run, with its default, in one place.

``zoo finetune --help`` shows these defaults and ``zoo.finetune(...)`` takes the same
names; the output card records the options a model was trained with, and ``--resume``
refuses to continue a run under different ones (a changed recipe is a new run).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zoo.errors import ArgumentError, describe_validation_error

Mode = Literal["linear", "full"]
Precision = Literal["fp32", "bf16", "fp16"]

#: The learning rate when none is given: a linear probe takes larger steps than the whole net.
DEFAULT_LR: dict[str, float] = {"full": 1e-4, "linear": 1e-3}
#: Options that may change between a run and its ``--resume``: where and how fast it runs.
RUNTIME_ONLY = frozenset({"device", "workers"})


class FinetuneOptions(BaseModel):
    """The recipe: timm's ``train.py`` and torchvision's classification reference defaults,
    scaled to fine-tuning (fewer epochs, a smaller learning rate)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Field(
        default="full",
        description="full: train every weight (or those after freeze_until); linear: freeze "
        "the backbone, compute its features once, train only the classifier",
    )
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(
        default=32, ge=1, description="per process; under torchrun the global batch is N times it"
    )
    lr: float | None = Field(
        default=None,
        gt=0,
        description=f"peak learning rate of AdamW (default {DEFAULT_LR['full']:g} for full, "
        f"{DEFAULT_LR['linear']:g} for linear)",
    )
    weight_decay: float = Field(
        default=0.05, ge=0, description="AdamW's, on weights only (not on biases and norms)"
    )
    warmup_epochs: float = Field(
        default=1.0, ge=0, description="linear warm-up from lr/100 before the cosine decay to 0"
    )
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    clip_grad: float | None = Field(
        default=1.0, ge=0, description="largest gradient norm (0 or None: no clipping)"
    )
    freeze_until: str | None = Field(
        default=None,
        description="module path: it and every parameter registered before it stay frozen "
        "(full mode)",
    )
    val_split: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        description="share of each class held out for validation when no validation data is given",
    )
    precision: Precision = Field(
        default="fp32", description="bf16/fp16: autocast (fp16 needs a GPU and scales the loss)"
    )
    seed: int = Field(default=0, ge=0, description="head init, split, data order, augmentation")
    crop_scale: tuple[float, float] = Field(
        default=(0.08, 1.0),
        description="random resized crop: the range of the crop's share of the frame's area",
    )
    hflip: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="probability of a horizontal flip; 0 when left and right matter "
        "(direction of motion, text)",
    )
    max_unreadable: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="largest share of the data that may be unreadable (skipped and counted)",
    )
    workers: int = Field(default=2, ge=0, description="data loading processes per training process")
    device: str = Field(default="auto", description="auto: CUDA, then MPS, then the CPU")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise ValueError(
                f"crop_scale must satisfy 0 < min <= max <= 1, found {self.crop_scale}"
            )
        if self.mode == "linear" and self.freeze_until is not None:
            raise ValueError(
                "freeze_until chooses what full mode trains; linear mode trains the classifier only"
            )
        return self

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.mode]

    def recipe(self) -> dict:
        """The options that decide the weights (all but where and how fast the run goes)."""
        return self.model_dump(mode="json", exclude=set(RUNTIME_ONLY))


def make_options(**values: object) -> FinetuneOptions:
    """Options from keyword arguments; a bad value is one ArgumentError naming each field."""
    try:
        return FinetuneOptions(**values)
    except ValidationError as error:
        raise ArgumentError(f"fine-tuning options: {describe_validation_error(error)}") from None
