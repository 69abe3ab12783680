"""Video classifiers from any zoo image model: early fusion, late fusion and CNN+LSTM.

Early and late fusion are Karpathy et al. 2014 ("Large-scale Video Classification with
Convolutional Neural Networks"); pooling frame features over time and an LSTM over them
are Ng et al. 2015 ("Beyond Short Snippets", arXiv 1503.08909). Each model here is an
image network, the *backbone*, named in the config as a zoo model (``backbone:
resnext50_32x4d.tv_in1k``, ``vit-b16-in1k``, a third-party plugin's image model) and
built through the registry, with a new head on top:

- ``early-fusion``: K frames stacked along channels into the backbone's first
  convolution, whose pretrained filters are repeated K times and divided by K, so a
  still video gives exactly the image model's features.
- ``late-fusion``: the backbone on every frame, features pooled over time (average,
  max, or both concatenated), then a linear classifier; any clip length.
- ``late-fusion-concat``: the backbone on a fixed number of frames far apart, their
  features concatenated in order (Karpathy's two towers), then a linear classifier.
- ``cnn-lstm``: per-frame features into an LSTM, its last or mean state to a classifier;
  any clip length.

The plugin reads only what the backbone's plugin declares (:class:`zoo.FeatureHints`:
``pooled``, and ``first_conv`` with ``channels_field`` for early fusion) and fails with
a :class:`zoo.BackboneError` naming what is missing. Pretrained weights: a card's weights
part ``{model: <backbone>, layout: backbone}`` is the backbone's own pretrained weights,
fetched and verified as its card says; the ``backbone`` converter puts them under
``backbone.``, inflates the first convolution for early fusion, and adds the head
initialised from a fixed seed (no public trained heads exist). This module imports no
torch; the networks are in :mod:`zoo_plugins.fusion.model`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

import zoo
from zoo.registry import yaml_cards

MODEL_NAME = r"^([\w.-]+:)?[a-z0-9][a-z0-9_.-]*$"


class FusionConfig(BaseModel):
    """What every fusion model has: the backbone image model and a classifier head."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backbone: str = Field(
        pattern=MODEL_NAME,
        description="the zoo image model (name, alias or plugin:name) applied to the frames; "
        "it is built from its own card's architecture and config",
    )
    num_classes: int = Field(ge=1, description="outputs of the new classifier")
    dropout: float = Field(
        default=0.5, ge=0.0, lt=1.0, description="before the classifier (both papers use it)"
    )
    small_backbone: bool = Field(
        default=False,
        description="build the backbone at its architecture's test_config: the same code in "
        "seconds, for tests and the export suite (no pretrained weights fit it)",
    )


class EarlyFusionConfig(FusionConfig):
    frames: int = Field(
        ge=1, description="K: the clip length, stacked along channels into the first conv"
    )


class LateFusionConfig(FusionConfig):
    pooling: Literal["avg", "max", "avg+max"] = Field(
        default="avg+max",
        description="over time; avg+max concatenates both, so the classifier reads 2 x D",
    )


class LateFusionConcatConfig(FusionConfig):
    frames: int = Field(
        default=2,
        ge=1,
        description="frames whose features are concatenated in order; the classifier reads "
        "frames x D, so the clip length is fixed (Karpathy et al.: 2 frames 15 apart)",
    )


class CNNLSTMConfig(FusionConfig):
    hidden_size: int = Field(default=512, ge=1)
    layers: int = Field(default=1, ge=1, description="stacked LSTM layers")
    bidirectional: bool = False
    readout: Literal["last", "mean"] = Field(
        default="last",
        description="last: the final hidden state (of both directions); mean: the outputs "
        "averaged over time",
    )


SMALL_INPUTS = {"size": (32, 32), "frames": 2}
"""The small cards' clips: 2 frames of 32x32, which every built-in backbone's test size takes
(ResNeXt any size, ViT's test config 32x32); the export suite fails loudly for one that does not."""


INFERENCE = zoo.InferenceHints(
    backend="onnxruntime",
    measured=(
        "zoo bench CARD --compare --random --threads 1 on the shared 2-core CPU while loaded: "
        "onnxruntime over torch eager 1.87x for early-fusion-resnext50-10f, 1.53x "
        "late-fusion-resnext50-8f, 1.78x late-fusion-vit-b16-8f, 1.44x cnn-lstm-resnext50-8f; "
        "channels_last and torch.compile were slower than onnxruntime for each"
    ),
)


def _architecture(
    name: str,
    config: type[FusionConfig],
    dynamic_time: bool,
    summary: str,
    test_config: dict[str, object],
) -> zoo.Architecture:
    video_axes = {0: "batch", 2: "frames"} if dynamic_time else {0: "batch"}
    return zoo.Architecture(
        name=name,
        builder=f"zoo_plugins.fusion.model:build_{name.replace('-', '_')}",
        config=config,
        converters={"backbone": "zoo_plugins.fusion.convert:from_backbone"},
        converter_examples={"backbone": "zoo_plugins.fusion.convert:backbone_example"},
        export=zoo.ExportHints(
            output_names=["logits"],
            dynamic_axes={"video": video_axes, "logits": {0: "batch"}},
            min_frames=1 if dynamic_time else None,
        ),
        features=zoo.FeatureHints(
            pooled="zoo_plugins.fusion.model:pooled_features", classifier="head.fc"
        ),
        inference=INFERENCE,
        test_config={"small_backbone": True, **test_config},
        test_inputs=SMALL_INPUTS,
        summary=summary,
    )


@zoo.hookimpl
def zoo_architectures() -> list[zoo.Architecture]:
    return [
        _architecture(
            "early-fusion",
            EarlyFusionConfig,
            dynamic_time=False,
            summary="K frames stacked into an image model's inflated first conv "
            "(Karpathy et al. 2014)",
            test_config={"frames": SMALL_INPUTS["frames"]},
        ),
        _architecture(
            "late-fusion",
            LateFusionConfig,
            dynamic_time=True,
            summary="an image model on every frame, features pooled over time, linear "
            "classifier (Karpathy et al. 2014; Ng et al. 2015)",
            test_config={},
        ),
        _architecture(
            "late-fusion-concat",
            LateFusionConcatConfig,
            dynamic_time=False,
            summary="an image model on frames far apart, features concatenated in order, "
            "linear classifier (Karpathy et al. 2014)",
            test_config={"frames": SMALL_INPUTS["frames"]},
        ),
        _architecture(
            "cnn-lstm",
            CNNLSTMConfig,
            dynamic_time=True,
            summary="an image model on every frame, an LSTM over the features, linear "
            "classifier (Ng et al. 2015)",
            test_config={"hidden_size": 8, "layers": 1},
        ),
    ]


@zoo.hookimpl
def zoo_cards() -> list:
    return yaml_cards("zoo_cards", "fusion")
