"""What a plugin says about an architecture: data only, nothing imported until it is built."""

from __future__ import annotations

import importlib
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

IMPORT_STRING = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
NAME = r"^[a-z0-9][a-z0-9_.-]*$"


class ExportHints(BaseModel):
    """How the architecture's forward maps onto an ONNX graph: what the card cannot say.

    The card gives the example input (names, layout, sizes, value range); these
    hints give the names of the outputs, which axes may vary, the clip lengths
    the network accepts, how close onnxruntime must come to PyTorch, and which
    exporter to use. Every field has a default, so a plugin written before a
    field existed keeps working.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    output_names: list[str] = Field(default_factory=lambda: ["output"], min_length=1)
    dynamic_axes: dict[str, dict[int, str]] = Field(
        default_factory=dict,
        description=(
            "input or output name -> {axis index: symbolic name}; an axis not named here is "
            "fixed at the card's size. Axes sharing a name must have the same size."
        ),
    )
    opset: int = Field(default=18, ge=13)
    exporter: Literal["dynamo", "legacy"] = Field(
        default="dynamo",
        description="torch.onnx's dynamo exporter, or the deprecated TorchScript one as a fallback",
    )
    exporter_reason: str = Field(
        default="", description="why the legacy exporter is needed; required with it"
    )
    tolerance: float = Field(
        default=1e-4,
        gt=0,
        description="largest accepted max|onnx - torch| / max|torch| per output, in float32",
    )
    fp16_tolerance: float = Field(
        default=1e-2, gt=0, description="the same bound after conversion to float16"
    )
    min_frames: int | None = Field(
        default=None, ge=1, description="shortest clip (T axis) the network accepts"
    )
    max_frames: int | None = Field(
        default=None, ge=1, description="longest clip (T axis) the network accepts"
    )
    batch: int | None = Field(
        default=None,
        ge=1,
        description=(
            "the one batch size the graph takes, for forwards whose outputs are per-image "
            "lists (a detector returning boxes of any count: 1); None: batch is an axis"
        ),
    )
    set_axis: str | None = Field(
        default=None,
        description=(
            "a dynamic output axis whose entries form a set (a detector's detections): the "
            "check matches entries before comparing, as two with tied scores may come in "
            "either order"
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.exporter == "legacy" and not self.exporter_reason.strip():
            raise ValueError("exporter 'legacy' needs exporter_reason: say why dynamo fails")
        if self.min_frames and self.max_frames and self.min_frames > self.max_frames:
            raise ValueError(f"min_frames {self.min_frames} exceeds max_frames {self.max_frames}")
        if len(set(self.output_names)) != len(self.output_names):
            raise ValueError(f"output names must be unique, found {self.output_names}")
        return self


class Architecture(BaseModel):
    """An architecture a plugin provides.

    ``builder`` and each converter are ``"module:attribute"`` import strings so
    that listing the zoo never imports torch. The builder is called with one
    validated instance of ``config``; a converter maps an upstream state dict
    (and that config) to the zoo's own key layout.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    builder: str = Field(pattern=IMPORT_STRING)
    config: type[BaseModel]
    converters: dict[str, str] = Field(
        default_factory=dict, description="upstream layout name -> converter import string"
    )
    export: ExportHints = Field(default_factory=ExportHints)
    test_config: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "config values merged (recursively) over a card's config to give a small model of "
            "the same code paths, for tests and conformance checks that must run in seconds"
        ),
    )
    test_inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="InputSpec fields (size, frames) replaced in every input of a small card",
    )
    summary: str = ""

    def validate_config(self, values: dict[str, Any] | BaseModel | None) -> BaseModel:
        if isinstance(values, self.config):
            return values
        if isinstance(values, BaseModel):
            values = values.model_dump()
        return self.config.model_validate(values or {})

    def resolve_builder(self) -> Any:
        return import_string(self.builder)

    def resolve_converter(self, layout: str) -> Any:
        try:
            return import_string(self.converters[layout])
        except KeyError:
            known = ", ".join(sorted(["zoo", *self.converters])) or "zoo"
            raise ValueError(
                f"architecture {self.name!r} has no converter for layout {layout!r}; "
                f"known layouts: {known}"
            ) from None


def import_string(spec: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute."""
    module_name, _, qualname = spec.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target
