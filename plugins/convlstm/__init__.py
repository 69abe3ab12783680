"""ConvLSTM (Shi et al. 2015): the encoding–forecasting network for spatiotemporal forecasting.

This module holds only data (the config and the architecture's description); the model,
converters, data generator and training script are submodules imported when used, so that
listing the zoo never imports torch.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

import zoo
from zoo.registry import yaml_cards


class ConvLSTMConfig(BaseModel):
    """An encoding–forecasting ConvLSTM network.

    The defaults are the paper's best Moving-MNIST model, "ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64"
    (64x64 frames cut into 4x4 patches, 10 frames in, 10 out, 7,585,296 parameters).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_channels: int = Field(default=1, ge=1, description="channels of one input frame")
    hidden_channels: list[int] = Field(
        default_factory=lambda: [128, 64, 64],
        min_length=1,
        description="hidden channels of each stacked ConvLSTM layer, bottom first",
    )
    kernel_size: int = Field(default=5, ge=1, description="odd; input-to-state and state-to-state")
    patch_size: int = Field(
        default=4, ge=1, description="frames are cut into patch x patch blocks stacked as channels"
    )
    output_frames: int = Field(default=10, ge=1, description="frames the forecaster produces")
    peephole: bool = Field(
        default=True, description="per-channel peephole weights on the cell state, as the paper"
    )

    @model_validator(mode="after")
    def _odd_kernel(self) -> ConvLSTMConfig:
        if self.kernel_size % 2 == 0:
            raise ValueError(
                "kernel_size must be odd so that 'same' padding keeps the frame size, "
                f"found {self.kernel_size}"
            )
        if any(channels < 1 for channels in self.hidden_channels):
            raise ValueError(f"hidden_channels must be positive, found {self.hidden_channels}")
        return self


@zoo.hookimpl
def zoo_architectures() -> list[zoo.Architecture]:
    return [
        zoo.Architecture(
            name="convlstm",
            builder="zoo_plugins.convlstm.model:build",
            config=ConvLSTMConfig,
            converters={"conv-lstm": "zoo_plugins.convlstm.convert:from_conv_lstm"},
            converter_examples={"conv-lstm": "zoo_plugins.convlstm.upstream:conv_lstm_state"},
            export=zoo.ExportHints(
                output_names=["forecast"],
                dynamic_axes={"frames": {0: "batch", 1: "time"}, "forecast": {0: "batch"}},
                min_frames=1,
            ),
            test_config={"hidden_channels": [4, 4]},
            inference=zoo.InferenceHints(
                backend="onnxruntime",
                measured=(
                    "benchmarks/bench_backends.py --family convlstm: onnxruntime (one Scan "
                    "node) beat torch eager and channels_last on one CPU thread "
                    "(benchmarks/results/backends.json)"
                ),
            ),
            expected_failures={
                "runs_on_openvino": (
                    "OpenVINO 2026.4 returns one forecast frame where the exported graph's "
                    "loop makes ten (an OpenVINO bug); the export check catches it and the "
                    "predictor runs onnxruntime"
                )
            },
            summary="ConvLSTM encoding–forecasting network (Shi et al. 2015), frames in NTCHW",
        )
    ]


@zoo.hookimpl
def zoo_cards() -> list:
    return yaml_cards("zoo_cards", "convlstm")
