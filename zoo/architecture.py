"""What a plugin says about an architecture: data only, nothing imported until it is built."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zoo.errors import ConfigError, PluginError, WeightsError, describe_validation_error

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


class FeatureHints(BaseModel):
    """Where a model's inner representations are, for tools that work on any model.

    Building a video model from an image backbone, embedding inputs, Grad-CAM and
    fine-tuning each need a fact that only the plugin knows; declaring it here keeps
    ``isinstance`` checks and architecture names out of the core. Module paths
    are dotted attribute paths on the built model (``layer4``, ``blocks.-1``:
    negative indices count from the end of a module list).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    pooled: str | None = Field(
        default=None,
        pattern=IMPORT_STRING,
        description=(
            "`module:function` taking (model, *inputs) and returning the penultimate "
            "features (N, D): pooled over space (and time), before the classifier"
        ),
    )
    pooled_width: str | None = Field(
        default=None,
        pattern=IMPORT_STRING,
        description=(
            "`module:function` taking the validated config and returning D, the width of the "
            "pooled features, so a head can be sized without running the network"
        ),
    )
    cam_layer: str | None = Field(
        default=None,
        description="module whose output keeps the input's spatial (and time) axes: "
        "Grad-CAM's default target layer",
    )
    cam_tokens: int | None = Field(
        default=None,
        ge=0,
        description="None: cam_layer's output is (N, C, [T,] H, W); k: it is a token sequence "
        "(N, k + h*w, C) whose k leading tokens (a class token) are not spatial",
    )
    first_conv: str | None = Field(
        default=None,
        description="module path of the convolution that reads the input pixels "
        "(early fusion inflates it to take several frames)",
    )
    channels_field: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_]\w*$",
        description="the config field that sets how many channels first_conv reads: early "
        "fusion builds the model with K times as many, so its input checks agree",
    )
    classifier: str | None = Field(
        default=None,
        description="module path of the layer that turns the pooled features into logits (a "
        "Linear, or a 1x1 convolution holding one weight per class and feature): `zoo "
        "finetune` gives it one output per new class, and in linear mode trains only it",
    )
    classes_field: str = Field(
        default="num_classes",
        pattern=r"^[A-Za-z_]\w*$",
        description="the config field that sets how many outputs the classifier has",
    )

    def resolve_pooled(self) -> Any:
        if self.pooled is None:
            raise ValueError("this architecture declares no pooled features")
        return import_string(self.pooled)

    def resolve_pooled_width(self) -> Any:
        if self.pooled_width is None:
            raise ValueError("this architecture declares no pooled feature width")
        return import_string(self.pooled_width)


class DerivedInput(BaseModel):
    """An input computed from the decoded RGB frames instead of read from them (optical flow).

    ``function`` (an import string) takes uint8 RGB frames ``(T, H, W, 3)``, already resized
    as the card says but not yet cropped, and returns float32 ``(C, T - lag, H, W)`` in the
    input's ``value_range``; the predictor crops, lays out and normalises the result.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    function: str = Field(pattern=IMPORT_STRING)
    lag: int = Field(default=0, ge=0, description="frames in minus frames out (1 for flow)")


class TimeReduction(BaseModel):
    """How a video network reduces time, so that a video too long to run at once can be run
    in windows and give the whole-video answer.

    ``per_time`` is ``module:function`` taking ``(model, *inputs)`` and returning the
    outputs before the network's reduction over time, ``(N, T_out, ...)`` (I3D: the
    classifier's logits at each remaining time step); the network's own output is
    ``reduce`` of them over ``T_out``. Output step ``t`` is centred on input frames
    ``[t * stride, (t + 1) * stride)`` and depends on no frame further than ``context``
    frames from them. The predictor then runs windows that start at multiples of
    ``stride``, whose lengths are congruent to the video's modulo ``stride`` (so that
    padding which depends on the input's length modulo the stride, as TF "SAME" does,
    lays the same grid), keeps from each window only the steps that see no window edge
    but the video's own, and reduces the kept steps: the whole-video result up to the
    order of floating-point additions.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_time: str = Field(pattern=IMPORT_STRING)
    reduce: Literal["mean", "sum", "max"] = Field(
        default="mean", description="the network's own reduction of per_time over time"
    )
    stride: int = Field(ge=1, description="input frames per output time step")
    context: int = Field(
        ge=0, description="frames beyond its own stride that an output step may depend on"
    )


class InferenceHints(BaseModel):
    """What the predictor needs to know about an architecture that no card says.

    The default way to run it (backend, memory format, ``torch.compile``) is the fastest
    one measured for the family; ``measured`` says where. ``postprocess`` names a function
    that turns the raw outputs into the task's standard form when they are not in it
    already: for object detection, ``(outputs: dict[str, Tensor], image_sizes: list of
    (height, width), threshold: float) -> list of {"boxes" (K, 4) xyxy pixels of the model
    input, "scores" (K,), "labels" (K,)}``, one per image. ``derived_inputs`` maps a card's
    ``channel_order`` (such as ``flow-xy``) to the function computing it from RGB frames.
    ``time_reduction`` says how the network reduces time (:class:`TimeReduction`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["torch", "onnxruntime", "openvino"] = Field(
        default="torch",
        description="openvino and onnxruntime run the exported graph in float32; where "
        "openvino is not installed (or cannot compile the graph) onnxruntime runs it",
    )
    memory_format: Literal["contiguous", "channels_last"] = Field(
        default="contiguous", description="channels_last: 4-D and 5-D tensors channels last"
    )
    compile: bool = False
    postprocess: str | None = Field(default=None, pattern=IMPORT_STRING)
    derived_inputs: dict[str, DerivedInput] = Field(default_factory=dict)
    time_reduction: TimeReduction | None = Field(
        default=None,
        description="how the network reduces time: lets a `whole`-protocol card run a long "
        "video in windows (without it, a video longer than the predictor's max_frames is "
        "refused)",
    )
    measured: str = Field(default="", description="where the default choice was measured")


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
    features: FeatureHints = Field(default_factory=FeatureHints)
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
    inference: InferenceHints = Field(default_factory=InferenceHints)
    converter_examples: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "upstream layout -> import string of a function (config) -> a state dict in that "
            "layout (or (the config it fits, state dict) when the layout cannot express the "
            "config), made by the upstream code where it is installable: the conformance kit "
            "feeds it to the layout's converter"
        ),
    )
    expected_failures: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "conformance check name -> why this architecture cannot pass it; zoo.testing "
            "reports such a check as an expected failure (xfail), and as an error if it passes"
        ),
    )
    summary: str = ""

    def validate_config(self, values: Mapping[str, Any] | BaseModel | None) -> BaseModel:
        """The config as the architecture's model; a refusal is a ConfigError naming each field."""
        if isinstance(values, self.config):
            return values
        if isinstance(values, BaseModel):
            values = values.model_dump()
        if values is not None and not isinstance(values, Mapping):
            raise ConfigError(
                f"config for architecture {self.name!r} must be a mapping, "
                f"found {type(values).__name__}"
            )
        try:
            return self.config.model_validate(dict(values or {}))
        except ValidationError as error:
            problems = describe_validation_error(error, prefix="config.")
            raise ConfigError(f"architecture {self.name!r}: {problems}") from None

    def resolve_builder(self) -> Any:
        return import_string(self.builder, f"the builder of architecture {self.name!r}")

    def check_layout(self, layout: str) -> None:
        """Raise unless ``layout`` is ``"zoo"`` or one this architecture converts from."""
        if layout != "zoo" and layout not in self.converters:
            known = ", ".join(sorted(["zoo", *self.converters]))
            raise WeightsError(
                f"architecture {self.name!r} has no converter for layout {layout!r}; "
                f"known layouts: {known}"
            )

    def resolve_converter(self, layout: str) -> Any:
        self.check_layout(layout)
        spec = self.converters[layout]
        return import_string(spec, f"the {layout!r} converter of architecture {self.name!r}")


def submodule(model: Any, path: str) -> Any:
    """The module at a dotted path such as ``blocks.-1.attn``; errors name what exists."""
    target = model
    for part in path.split("."):
        try:
            target = target[int(part)] if part.lstrip("-").isdigit() else getattr(target, part)
        except (AttributeError, IndexError, TypeError):
            children = ", ".join(name for name, _ in target.named_children()) or "none"
            raise ValueError(
                f"{type(model).__name__} has no module {path!r} (no {part!r} under "
                f"{type(target).__name__}; its children: {children})"
            ) from None
    return target


def import_string(spec: str, role: str = "") -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute.

    A plugin's missing module or attribute is a :class:`PluginError` naming
    ``role``, so it reaches a user as one line, not as a traceback.
    """
    module_name, _, qualname = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except Exception as error:  # a plugin's module may fail to import in any way
        what = role or repr(spec)
        raise PluginError(
            f"cannot import {what} ({spec}): {type(error).__name__}: {error}"
        ) from error
    return target
