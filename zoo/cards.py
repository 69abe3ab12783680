"""Model cards: one YAML file per pretrained model, validated before anything trusts it.

A card is data. It says what a user or a tool needs without reading code: what
the model is, what it eats (layout, clip length, frame rate, size, value range),
what it returns, where its weights are and how to check them, and how well it
does according to whom.
"""

from __future__ import annotations

import re
from importlib.resources.abc import Traversable
from os import PathLike
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from zoo import yamltext
from zoo.architecture import NAME
from zoo.errors import CardError, UnknownNameError, describe_validation_error, one_line
from zoo.labels import available_label_sets, load_label_set

Task = Literal[
    "image-classification",
    "video-classification",
    "object-detection",
    "feature-extraction",
    "video-forecasting",
]
SHA256 = r"^[0-9a-f]{64}$"
Integrity = Literal["sha256", "hash-in-url", "hub-lfs", "first-use", "model"]
INTEGRITY_MEANING: dict[str, str] = {
    "sha256": "the file's sha256 is compared with the card's",
    "hash-in-url": "the URL's file name carries the first hex digits of the file's sha256 "
    "(torchvision's convention), checked as torch.hub's check_hash does",
    "hub-lfs": "the file's hash is compared with the one the Hub announces for it (the LFS "
    "sha256, or the git blob sha1 of a small file); a full integrity check when the revision "
    "is a commit, a check against corruption in transit or on disk when it is a branch or tag",
    "first-use": "nothing to check against: the first download's sha256 is recorded and a "
    "later file that differs is refused",
    "model": "another zoo model's weights: each of its files is checked as that model's card says",
}
# torch.hub's HASH_REGEX; zoo asks for 8 digits or more so that "-1." or "-v2." is not a hash.
HASH_IN_URL = re.compile(r"-([a-f0-9]*)\.")
MIN_HASH_PREFIX = 8
AXES = {"N": "batch", "C": "channels", "T": "frames", "H": "height", "W": "width"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TemporalSampling(Strict):
    """Which frames of a video a model sees at test time, stated so that code can follow it.

    The free-text ``sampling`` of the input says the same for people; this is what the
    predictor runs. Frames are first resampled to the input's ``fps`` (when it has one).

    - ``clips``: ``clips`` clips of ``frames`` consecutive frames, evenly spaced over the
      video (mmaction2's test-mode ``SampleFrames``); a video-level prediction averages
      their softmax probabilities (mmaction2's ``average_clips='prob'``). One clip is the
      centre one.
    - ``whole``: the whole video as one clip (the network takes any length of at least
      ``min_frames``), as the I3D authors test.
    - ``last``: the most recent ``frames`` frames (forecasting), or all of them when the
      video is shorter but has at least ``min_frames``.

    ``too_short`` says what happens when a video has fewer frames than that: ``loop`` it
    (mmaction2's default), ``pad`` by repeating the last frame, or refuse it (``error``)
    with a message naming the minimum.
    """

    protocol: Literal["clips", "whole", "last"] = "clips"
    clips: int = Field(default=1, ge=1, description="evenly spaced clips averaged (protocol clips)")
    min_frames: int | None = Field(
        default=None, ge=1, description="fewest frames the network takes (whole, last)"
    )
    too_short: Literal["loop", "pad", "error"] = "loop"


class InputSpec(Strict):
    """One model input and the preprocessing that produces it from raw pixels.

    The spatial steps, in order: ``resize`` the shorter side (capping the longer side at
    ``max_size``), or, with no ``resize`` and a fixed ``size``, resize the whole image to
    ``size`` (aspect ratio not kept); a ``dynamic_size`` input without ``resize`` is used
    as it comes. Then the ``center`` crop to ``size``, pixels to ``value_range``, ``mean``
    and ``std`` per channel (in ``channel_order``), and the axes to ``layout``.
    """

    name: str = "input"
    layout: str = Field(pattern=r"^N[CTHW]{3,4}$", description="e.g. NCHW, NCTHW, NTCHW")
    channels: int = Field(ge=1)
    channel_order: Literal["RGB", "BGR", "gray", "flow-xy"] = "RGB"
    frames: int | None = Field(default=None, ge=1, description="clip length, for T layouts")
    fps: float | None = Field(default=None, gt=0)
    sampling: str | None = Field(default=None, description="how frames are chosen from a video")
    temporal: TemporalSampling | None = Field(
        default=None, description="the test-time frame sampling as data (T layouts only)"
    )
    size: tuple[int, int] = Field(description="(height, width) the model is fed")
    resize: int | None = Field(default=None, ge=1, description="shorter side before the crop")
    max_size: int | None = Field(
        default=None, ge=1, description="cap on the longer side when resizing the shorter"
    )
    crop: Literal["center", "none"] = "center"
    interpolation: Literal["nearest", "bilinear", "bicubic"] = "bilinear"
    antialias: bool = Field(default=True, description="low-pass filter when shrinking")
    value_range: tuple[float, float] = Field(
        default=(0.0, 1.0), description="range pixel values are scaled to before mean/std"
    )
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    dynamic_size: bool = Field(default=False, description="any height/width is accepted")
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.layout)) != len(self.layout) or not {"C", "H", "W"} <= set(self.layout):
            raise ValueError(f"layout {self.layout!r} must hold N, C, H and W once each")
        if ("T" in self.layout) != (self.frames is not None):
            raise ValueError(
                f"frames must be given exactly when the layout has a T axis "
                f"(layout {self.layout!r}, frames {self.frames!r})"
            )
        if self.temporal is not None and self.frames is None:
            raise ValueError(f"temporal sampling needs a T axis in the layout ({self.layout!r})")
        minimum = self.temporal.min_frames if self.temporal else None
        if minimum is not None and self.frames is not None and minimum > self.frames:
            raise ValueError(
                f"temporal.min_frames ({minimum}) exceeds the clip length frames ({self.frames})"
            )
        if self.max_size is not None and (self.resize is None or self.max_size < self.resize):
            raise ValueError(
                f"max_size caps a resize of the shorter side: it needs resize <= max_size, "
                f"found resize {self.resize}, max_size {self.max_size}"
            )
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std must be given together")
        for field in ("mean", "std"):
            values = getattr(self, field)
            if values is not None and len(values) != self.channels:
                raise ValueError(
                    f"{field} has {len(values)} values, expected one per channel ({self.channels})"
                )
        low, high = self.value_range
        if low >= high:
            raise ValueError(f"value_range must rise, found {self.value_range}")
        return self

    @property
    def sampling_protocol(self) -> TemporalSampling:
        """The stated temporal sampling, or the default (one centre clip, looped if short)."""
        return self.temporal or TemporalSampling()

    def example_shape(self, batch: int = 1) -> tuple[int, ...]:
        """The input's shape for ``batch`` samples, in the card's layout."""
        sizes = {"N": batch, "C": self.channels, "H": self.size[0], "W": self.size[1]}
        if self.frames is not None:  # given exactly when the layout has a T axis
            sizes["T"] = self.frames
        return tuple(sizes[axis] for axis in self.layout)


class OutputSpec(Strict):
    """One model output; ``shape`` is per sample, a string marks a size that varies."""

    name: str
    shape: list[int | str]
    description: str = ""


class Weights(Strict):
    """Where the pretrained weights are and how to check them.

    Exactly one source: a file in a Hub repo (``repo_id`` + ``filename`` at
    ``revision``), a plain ``url``, a file ``bundled`` in an installed package
    (``"package:path/in/package"``, for weights small enough to ship), or
    another zoo ``model``: its pretrained weights, fetched and verified as its own
    card says and in the zoo layout, which ``layout`` then converts (a video
    model built around a pretrained image backbone starts from that backbone).
    ``format: pickle`` marks an upstream checkpoint that enters the zoo once,
    through the safe converter, and is cached as safetensors.
    """

    repo_id: str | None = Field(default=None, pattern=r"^[\w.-]+(/[\w.-]+)?$")
    filename: str = "model.safetensors"
    revision: str = "main"
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    bundled: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[\w./-]+$")
    model: str | None = Field(
        default=None,
        pattern=r"^([\w.-]+:)?[a-z0-9][a-z0-9_.-]*$",
        description="a zoo model (name, alias or plugin:name) whose pretrained weights this is",
    )
    format: Literal["safetensors", "pickle"] = "safetensors"
    sha256: str | None = Field(default=None, pattern=SHA256)
    layout: str = Field(default="zoo", description="upstream key layout the converter reads")
    prefix: str = Field(
        default="",
        description="prepended to this part's converted keys, for models assembled from parts",
    )
    integrity: Integrity | None = Field(
        default=None,
        description="how the file is verified (see INTEGRITY_MEANING); follows from the source "
        "and sha256, and a card that states it must state what applies",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        sources = ("repo_id", "url", "bundled", "model")
        given = [key for key in sources if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one weights source of repo_id, url, bundled or model, "
                f"found {given or 'none'}"
            )
        if self.model is not None and (self.format != "safetensors" or self.sha256):
            raise ValueError(
                f"weights from model {self.model!r} are fetched and checked as that model's "
                "own card says: give no format or sha256 here"
            )
        if self.integrity is not None and self.integrity != self.verification():
            raise ValueError(
                f"integrity {self.integrity!r} does not apply to this source: "
                f"{self.verification()!r} does ({INTEGRITY_MEANING[self.verification()]})"
            )
        return self

    @property
    def url_hash_prefix(self) -> str | None:
        """The sha256 prefix in the URL's file name (``x-8ba56ff5.pth``), as torch.hub finds it."""
        if self.url is None:
            return None
        name = urlsplit(self.url).path.rsplit("/", 1)[-1]
        found = HASH_IN_URL.search(name)
        return found.group(1) if found and len(found.group(1)) >= MIN_HASH_PREFIX else None

    def verification(self) -> Integrity:
        """The strongest check that applies to this file: the card's own hash first."""
        if self.model is not None:
            return "model"
        if self.sha256 is not None:
            return "sha256"
        if self.repo_id is not None:
            return "hub-lfs"
        if self.url_hash_prefix is not None:
            return "hash-in-url"
        return "first-use"


class Metric(Strict):
    name: str
    value: float
    dataset: str
    split: str
    source: str = Field(description="where the figure comes from: paper, URL, or 'measured'")
    notes: str = ""


class Paper(Strict):
    title: str
    url: str = Field(pattern=r"^https?://\S+$")


class Parent(Strict):
    """The model a fine-tuned card started from, and exactly which weights it started with."""

    model: str = Field(description="the parent's name, hf-hub: repo or folder")
    architecture: str
    weights: str = Field(
        description="'pretrained' (the parent card's own), 'random', or the weights file given"
    )
    sha256: str | None = Field(
        default=None, pattern=SHA256, description="of the parent's weights file(s), when known"
    )


class CardCheck(BaseModel):
    """The verdict on one card file: valid, or the one-line reason it is not."""

    file: str
    valid: bool
    problem: str | None = None


class Card(Strict):
    """A pretrained model, as data. Unknown fields are errors, not silently ignored."""

    name: str = Field(pattern=NAME)
    aliases: list[str] = Field(default_factory=list)
    architecture: str
    config: dict[str, Any] = Field(default_factory=dict)
    task: Task
    summary: str
    inputs: list[InputSpec] = Field(min_length=1)
    outputs: list[OutputSpec] = Field(min_length=1)
    labels: str | list[str] | None = Field(
        default=None, description="a label set shipped with zoo, or the labels themselves"
    )
    weights: list[Weights] = Field(
        default_factory=list,
        description="one source, or several parts (each with its key prefix) that add up",
    )
    metrics: list[Metric] = Field(default_factory=list)
    parameters: int = Field(ge=1, description="parameter count of the built model")
    datasets: list[str] = Field(default_factory=list, description="what the weights learned on")
    license: str
    paper: Paper | None = None
    parent: Parent | None = Field(
        default=None, description="for a fine-tuned model: the model its training started from"
    )
    training: dict[str, Any] | None = Field(
        default=None, description="for a fine-tuned model: the options it was trained with"
    )

    @field_validator("weights", mode="before")
    @classmethod
    def _one_source_is_a_list_of_one(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        prefixes = [part.prefix for part in self.weights]
        if len(prefixes) > 1 and ("" in prefixes or len(set(prefixes)) != len(prefixes)):
            raise ValueError(f"weights parts need distinct, non-empty prefixes, found {prefixes}")
        for alias in self.aliases:
            if not re.match(NAME, alias):
                raise ValueError(f"alias {alias!r} must match {NAME}")
        names = [spec.name for spec in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"input names must be unique, found {names}")
        if isinstance(self.labels, str) and self.labels not in available_label_sets():
            raise ValueError(
                f"unknown label set {self.labels!r}; shipped sets: "
                f"{', '.join(sorted(available_label_sets()))}"
            )
        return self

    @classmethod
    def from_yaml(cls, source: PathLike[str] | Traversable | str) -> Card:
        """Read and validate one YAML card; errors name the file and the field path."""
        path = source if isinstance(source, Traversable) else Path(source)
        try:
            data = yamltext.load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            raise CardError(
                f"{path}: not a YAML card: not UTF-8 text (byte {error.start} is "
                f"{error.object[error.start : error.start + 1]!r})"
            ) from None
        except yaml.YAMLError as error:
            raise CardError(f"{path}: not valid YAML: {one_line(str(error))}") from None
        except OSError as error:
            raise CardError(f"{path}: cannot read card: {error.strerror or error}") from None
        return cls.from_data(data, origin=str(path))

    @classmethod
    def from_data(cls, data: Any, origin: str = "<card>") -> Card:
        if not isinstance(data, dict):
            raise CardError(f"{origin}: a card is a mapping, found {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise CardError(f"{origin}: {describe_validation_error(error)}") from None

    def to_data(self) -> dict[str, Any]:
        """Plain data (lists, not tuples) ready for YAML or JSON, defaults left out."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_data(), sort_keys=False, allow_unicode=True)

    def label_names(self) -> list[str] | None:
        if isinstance(self.labels, str):
            return load_label_set(self.labels)
        return self.labels

    def input(self, name: str | None = None) -> InputSpec:
        if name is None:
            return self.inputs[0]
        for spec in self.inputs:
            if spec.name == name:
                return spec
        known = ", ".join(spec.name for spec in self.inputs)
        raise UnknownNameError(
            "input", name, [], hint=f" of card {self.name!r} (its inputs: {known})"
        )
