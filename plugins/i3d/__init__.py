"""I3D (Carreira and Zisserman 2017): inflated Inception-V1, single stream and two-stream.

This module only describes the architectures; the network lives in ``model.py``
and is imported when a model is built, so listing the zoo never imports torch.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

import zoo
from zoo.registry import yaml_cards

#: The clips the network accepts. Time shrinks by 8 before the 2-frame average pool, so at
#: least 9 frames; height and width shrink by 32 before the 7x7 average pool, which must
#: leave one position (as in the authors' graph, which squeezes it away): 193 to 224 pixels.
MIN_FRAMES = 9
MIN_SIZE = 193
MAX_SIZE = 224


class _ClipConfig(BaseModel):
    """What both architectures share: the classifier and the input the pads are fixed for.

    ``frames`` and ``size`` are the clip the TF-"SAME" paddings of the strided layers
    are computed for once (static pads, exported as constants). Other accepted clip
    lengths and sizes still give the authors' result: their paddings are then worked
    out from the input's shape in forward.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_classes: int = Field(default=400, ge=1)
    dropout: float = Field(default=0.5, ge=0.0, lt=1.0, description="drop probability")
    frames: int = Field(default=64, ge=MIN_FRAMES, description="clip length the pads are fixed for")
    size: tuple[int, int] = Field(
        default=(224, 224), description="(height, width) the pads are fixed for"
    )

    @field_validator("size")
    @classmethod
    def _accepted_size(cls, size: tuple[int, int]) -> tuple[int, int]:
        if not all(MIN_SIZE <= side <= MAX_SIZE for side in size):
            raise ValueError(
                f"height and width must be in [{MIN_SIZE}, {MAX_SIZE}] (the 7x7 average pool "
                f"must leave one position), found {size}"
            )
        return size


class I3DConfig(_ClipConfig):
    """One I3D stream."""

    in_channels: int = Field(default=3, ge=1, description="3 for RGB, 2 for optical flow")


class TwoStreamI3DConfig(_ClipConfig):
    """An RGB stream (3 channels) and a flow stream (2 channels) whose logits are summed."""

    def stream(self, in_channels: int) -> I3DConfig:
        """The config of one stream: same classes, dropout and fixed input."""
        return I3DConfig(in_channels=in_channels, **self.model_dump())


def _video_axes(*names: str) -> dict[str, dict[int, str]]:
    """Batch and time vary; each input's time is its own axis (the streams may differ)."""
    return {name: {0: "batch", 2: f"{name}_frames"} for name in names}


# The smallest frame size the network takes, and a clip one frame above the shortest, keep
# the full network's export and checks fast; the check then runs the shortest clip.
TEST_INPUTS = {"frames": 18, "size": (MIN_SIZE, MIN_SIZE)}
TEST_CONFIG = {"frames": 18, "size": (MIN_SIZE, MIN_SIZE)}


#: The flow stream's input is computed, not read: TV-L1 flow from T + 1 resized RGB frames.
#: OpenVINO ran the network fastest (the exported graph keeps the clip length dynamic).
TWO_STREAM_INFERENCE = zoo.InferenceHints(
    derived_inputs={"flow-xy": zoo.DerivedInput(function="zoo_plugins.i3d.flow:tvl1_flow", lag=1)},
    backend="openvino",
    measured=(
        "benchmarks/bench_backends.py --family i3d: OpenVINO float32 2.15x upstream "
        "eager against onnxruntime's 1.55x on one CPU thread, interleaved on a loaded "
        "machine (benchmarks/results/backends.json); onnxruntime runs where OpenVINO "
        "is not installed"
    ),
)
#: One stream also says how it reduces time, so that a whole video too long to run at once
#: runs in windows whose per-time logits are averaged, as the forward averages them. Time
#: shrinks by 8 before the classifier; a logit reaches (measured by perturbing single
#: frames) 41 frames before and 48 frames after its own 8, so 56 frames of context keep
#: every kept logit exact. (The two streams see clips of different lengths, so their sum
#: is not one reduction over time: two-stream declares none.)
INFERENCE = zoo.InferenceHints(
    **TWO_STREAM_INFERENCE.model_dump(exclude={"time_reduction"}),
    time_reduction=zoo.TimeReduction(
        per_time="zoo_plugins.i3d.model:per_time_logits", reduce="mean", stride=8, context=56
    ),
)


@zoo.hookimpl
def zoo_architectures() -> list[zoo.Architecture]:
    return [
        zoo.Architecture(
            name="i3d",
            builder="zoo_plugins.i3d.model:build",
            config=I3DConfig,
            converters={"authors": "zoo_plugins.i3d.convert:from_authors"},
            converter_examples={"authors": "zoo_plugins.i3d.upstream:authors_state"},
            export=zoo.ExportHints(
                output_names=["logits"],
                dynamic_axes={**_video_axes("video"), "logits": {0: "batch"}},
                min_frames=MIN_FRAMES,
            ),
            features=zoo.FeatureHints(
                pooled="zoo_plugins.i3d.model:pooled_features",
                cam_layer="Mixed_4f",
                first_conv="Conv3d_1a_7x7.conv3d",
                classifier="logits.conv3d",
            ),
            test_config=TEST_CONFIG,
            test_inputs=TEST_INPUTS,
            inference=INFERENCE,
            summary="Inflated Inception-V1 (I3D) video classifier; logits averaged over time.",
        ),
        zoo.Architecture(
            name="i3d-two-stream",
            builder="zoo_plugins.i3d.model:build_two_stream",
            config=TwoStreamI3DConfig,
            converters={"authors": "zoo_plugins.i3d.convert:stream_from_authors"},
            converter_examples={"authors": "zoo_plugins.i3d.upstream:two_stream_authors_state"},
            export=zoo.ExportHints(
                output_names=["logits"],
                dynamic_axes={**_video_axes("rgb", "flow"), "logits": {0: "batch"}},
                min_frames=MIN_FRAMES,
            ),
            features=zoo.FeatureHints(
                pooled="zoo_plugins.i3d.model:pooled_two_stream_features",
                cam_layer="rgb.Mixed_4f",
            ),
            test_config=TEST_CONFIG,
            test_inputs=TEST_INPUTS,
            inference=TWO_STREAM_INFERENCE,
            summary="Two-stream I3D: RGB and optical-flow I3D streams, logits summed.",
        ),
    ]


@zoo.hookimpl
def zoo_cards() -> list:
    return yaml_cards("zoo_cards", "i3d")
