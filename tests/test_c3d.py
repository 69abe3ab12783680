"""C3D: shapes, parameter counts, both upstream layouts, the card, and clear errors.

No package ships the upstream C3D, so this file carries two minimal references written
from facts read in the upstream code (never copied from it):

DavideA/c3d-pytorch, ``C3D_model.py`` and ``predict.py`` (commit 1111ccf0, 2019-03-03):
  * modules ``conv1``, ``conv2``, ``conv3a``, ``conv3b``, ``conv4a``, ``conv4b``,
    ``conv5a``, ``conv5b``: ``nn.Conv3d`` with kernel (3, 3, 3), padding (1, 1, 1), bias;
    widths 3-64-128-256-256-512-512-512-512; ``relu`` after every convolution;
  * ``pool1`` MaxPool3d kernel = stride (1, 2, 2); ``pool2``..``pool4`` kernel = stride
    (2, 2, 2); ``pool5`` kernel = stride (2, 2, 2), padding (0, 1, 1); pools follow conv1,
    conv2, conv3b, conv4b, conv5b;
  * ``h.view(-1, 8192)``, then relu(fc6 8192->4096), dropout(0.5), relu(fc7 4096->4096),
    dropout, fc8 4096->487, and the forward returns ``nn.Softmax()`` of the fc8 output;
  * the README's weights: http://imagelab.ing.unimore.it/files/c3d_pytorch/c3d.pickle,
    loaded by ``net.load_state_dict(torch.load('c3d.pickle'))`` (so its keys are exactly
    the module's); ``labels.txt`` (487 labels, no final newline) has sha256 0df67a13…bedd9;
  * predict.py: skimage RGB frames resized to (112, 200) with preserve_range, columns
    44:156 kept, values 0..255 as float32, no mean subtracted, batch (1, 3, 16, 112, 112).

open-mmlab/mmaction2, ``mmaction/models/backbones/c3d.py``, ``heads/i3d_head.py`` and
``configs/_base_/models/c3d_sports1m_pretrained.py`` (commit 4d6c9347, 2023-10-12):
  * ``ConvModule``s ``conv1a``, ``conv2a``, ``conv3a``, ``conv3b``, ``conv4a``, ``conv4b``,
    ``conv5a``, ``conv5b`` with norm_cfg None, so each is ``.conv`` (Conv3d 3x3x3,
    padding 1, with bias) then ReLU; the same pools as above (pool5 padding (0, 1, 1));
  * ``x.flatten(start_dim=1)``, relu(fc6 out_dim->4096), dropout, relu(fc7 4096->4096):
    the backbone returns fc7 features and has no fc8;
  * the recognizer's keys are prefixed ``backbone.``; the classifier is ``I3DHead`` with
    spatial_type None: dropout, view(N, -1), ``cls_head.fc_cls`` Linear(4096, classes);
  * its README gives 78.4M parameters for the 101-class (UCF-101) recognizer.

Parity measure everywhere: ``(a - b).abs().max() / b.abs().max()`` in float32, eval mode.
"""

from __future__ import annotations

import hashlib
import re
from importlib.resources import files
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import save_file
from torch import Tensor, nn

import zoo
from zoo.loading import count_parameters, empty_model
from zoo_plugins.c3d import C3DConfig, pooled_volume
from zoo_plugins.c3d.convert import from_davidea, from_mmaction2

TOLERANCE = 1e-5
PORT_CONVS = ("conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")
MMACTION2_CONVS = ("conv1a", "conv2a", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")
POOL_AFTER = {"conv1": 1, "conv2": 2, "conv3b": 3, "conv4b": 4, "conv5b": 5}
FULL_WIDTHS = (3, 64, 128, 256, 256, 512, 512, 512, 512)
# The port's state dict at full size, key by key (C3D_model.py).
DAVIDEA_SHAPES = {
    **{
        f"{name}.{kind}": shape
        for name, c_in, c_out in zip(PORT_CONVS, FULL_WIDTHS[:-1], FULL_WIDTHS[1:], strict=True)
        for kind, shape in (("weight", (c_out, c_in, 3, 3, 3)), ("bias", (c_out,)))
    },
    "fc6.weight": (4096, 8192),
    "fc6.bias": (4096,),
    "fc7.weight": (4096, 4096),
    "fc7.bias": (4096,),
    "fc8.weight": (487, 4096),
    "fc8.bias": (487,),
}
SPORTS1M_PARAMETERS = 79_991_015  # 487 classes: the c3d-sports1m card
UCF101_PARAMETERS = 78_409_573  # 101 classes: mmaction2's published "78.4M"
BACKBONE_PARAMETERS = 77_995_776  # up to fc7, as mmaction2's backbone
PORT_LABELS_SHA256 = "0df67a130a1adb5b1c5177a070f3b347eb638ed05b3d16999514c50b548bedd9"
PORT_WEIGHTS_URL = "http://imagelab.ing.unimore.it/files/c3d_pytorch/c3d.pickle"
# A narrow C3D of the same code: the full 16x112x112 clip, so pool5 is 1x4x4 as at full size.
SMALL = {"channels": (4, 8, 8, 8, 16, 16, 16, 16), "hidden": 32, "num_classes": 10}


class PortC3D(nn.Module):
    """DavideA's C3D, written from the facts in the module docstring, widths as parameters."""

    def __init__(self, widths: tuple[int, ...], fc6_inputs: int, hidden: int, classes: int):
        super().__init__()
        for name, c_in, c_out in zip(PORT_CONVS, widths[:-1], widths[1:], strict=True):
            setattr(self, name, nn.Conv3d(c_in, c_out, kernel_size=(3, 3, 3), padding=(1, 1, 1)))
        self.pool1 = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        for number in (2, 3, 4):
            setattr(self, f"pool{number}", nn.MaxPool3d(kernel_size=2, stride=2))
        self.pool5 = nn.MaxPool3d(kernel_size=2, stride=2, padding=(0, 1, 1))
        self.fc6_inputs = fc6_inputs
        self.fc6 = nn.Linear(fc6_inputs, hidden)
        self.fc7 = nn.Linear(hidden, hidden)
        self.fc8 = nn.Linear(hidden, classes)
        self.dropout = nn.Dropout(p=0.5)
        self.relu = nn.ReLU()

    def pooled(self, x: Tensor) -> Tensor:
        for name in PORT_CONVS:
            x = self.relu(getattr(self, name)(x))
            if name in POOL_AFTER:
                x = getattr(self, f"pool{POOL_AFTER[name]}")(x)
        return x

    def logits(self, x: Tensor) -> Tensor:
        h = self.pooled(x).view(-1, self.fc6_inputs)
        h = self.dropout(self.relu(self.fc6(h)))
        h = self.dropout(self.relu(self.fc7(h)))
        return self.fc8(h)

    def forward(self, x: Tensor) -> Tensor:
        """What the port returns: the softmax over classes (nn.Softmax() picks dim 1 on 2-D)."""
        return torch.softmax(self.logits(x), dim=1)


class MMAction2ConvModule(nn.Module):
    """mmcv's ConvModule without norm: ``.conv`` with bias, then ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, kernel_size=3, padding=1, bias=True)
        self.activate = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.activate(self.conv(x))


class MMAction2Backbone(nn.Module):
    """mmaction2's C3D backbone: ends with relu(fc7), no classifier."""

    def __init__(self, widths: tuple[int, ...], fc6_inputs: int, hidden: int) -> None:
        super().__init__()
        for name, c_in, c_out in zip(MMACTION2_CONVS, widths[:-1], widths[1:], strict=True):
            setattr(self, name, MMAction2ConvModule(c_in, c_out))
        self.pools = {
            "conv1a": nn.MaxPool3d((1, 2, 2), (1, 2, 2)),
            "conv2a": nn.MaxPool3d(2, 2),
            "conv3b": nn.MaxPool3d(2, 2),
            "conv4b": nn.MaxPool3d(2, 2),
            "conv5b": nn.MaxPool3d(2, 2, padding=(0, 1, 1)),
        }
        self.fc6 = nn.Linear(fc6_inputs, hidden)
        self.fc7 = nn.Linear(hidden, hidden)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: Tensor) -> Tensor:
        for name in MMACTION2_CONVS:
            x = getattr(self, name)(x)
            if name in self.pools:
                x = self.pools[name](x)
        x = self.dropout(self.relu(self.fc6(x.flatten(start_dim=1))))
        return self.relu(self.fc7(x))


class MMAction2Head(nn.Module):
    """I3DHead with spatial_type None: dropout, flatten, fc_cls."""

    def __init__(self, hidden: int, classes: int) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.5)
        self.fc_cls = nn.Linear(hidden, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc_cls(self.dropout(x).view(x.shape[0], -1))


class MMAction2Recognizer(nn.Module):
    """The parts of Recognizer3D whose keys a checkpoint holds: ``backbone.``, ``cls_head.``."""

    def __init__(self, widths: tuple[int, ...], fc6_inputs: int, hidden: int, classes: int):
        super().__init__()
        self.backbone = MMAction2Backbone(widths, fc6_inputs, hidden)
        self.cls_head = MMAction2Head(hidden, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.cls_head(self.backbone(x))


def relative_difference(found: Tensor, expected: Tensor) -> float:
    return ((found - expected).abs().max() / expected.abs().max()).item()


def small_config(**changes: object) -> C3DConfig:
    return C3DConfig(**{**SMALL, **changes})


def reference_sizes(config: C3DConfig) -> dict[str, object]:
    return {
        "widths": (config.in_channels, *config.channels),
        "fc6_inputs": config.fc6_inputs,
        "hidden": config.hidden,
    }


def randomised(module: nn.Module, seed: int) -> nn.Module:
    """Weights and biases of a spread that keeps activations of order one through the net."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            fan_in = parameter[0].numel() if parameter.dim() > 1 else 1
            parameter.copy_(torch.randn(parameter.shape, generator=generator) / fan_in**0.5)
    return module.eval()


def clip(config: C3DConfig, batch: int = 2, seed: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, config.in_channels, config.frames, config.size, config.size)
    return torch.randn(shape, generator=generator)


def saved(state: dict[str, Tensor], folder: Path) -> Path:
    path = folder / "upstream.safetensors"
    save_file({key: value.contiguous() for key, value in state.items()}, path)
    return path


def test_pooling_arithmetic_gives_the_papers_8192_fc6_inputs() -> None:
    assert pooled_volume(16, 112) == (1, 4, 4)
    assert C3DConfig().fc6_inputs == 512 * 1 * 4 * 4 == 8192


def test_full_size_clip_gives_487_logits_and_pool5_is_512x1x4x4() -> None:
    model = empty_model(zoo.default_registry().architecture("c3d"), {})
    pooled = {}
    model.pool5.register_forward_hook(lambda _m, _i, output: pooled.setdefault("shape", output))
    logits = model(torch.empty(2, 3, 16, 112, 112, device="meta"))
    assert tuple(pooled["shape"].shape) == (2, 512, 1, 4, 4)
    assert tuple(logits.shape) == (2, 487)


def test_full_size_state_dict_is_the_ports_key_for_key() -> None:
    model = empty_model(zoo.default_registry().architecture("c3d"), {})
    assert {key: tuple(value.shape) for key, value in model.state_dict().items()} == (
        DAVIDEA_SHAPES
    )


@pytest.mark.parametrize(
    ("num_classes", "expected"),
    [(487, SPORTS1M_PARAMETERS), (101, UCF101_PARAMETERS), (None, BACKBONE_PARAMETERS)],
)
def test_parameter_counts(num_classes: int | None, expected: int) -> None:
    """487 classes: 79,991,015 (~80.0M). The often-quoted "78.4M" is mmaction2's count for
    its 101-class UCF-101 recognizer, 78,409,573; the backbone alone is 77,995,776 (~78.0M)."""
    model = empty_model(zoo.default_registry().architecture("c3d"), {"num_classes": num_classes})
    assert count_parameters(model) == expected


def test_a_101_class_c3d_has_the_78_4m_parameters_mmaction2_publishes() -> None:
    model = empty_model(zoo.default_registry().architecture("c3d"), {"num_classes": 101})
    assert round(count_parameters(model) / 1e6, 1) == 78.4


def test_davidea_parity(tmp_path: Path) -> None:
    config = small_config()
    port = randomised(PortC3D(**reference_sizes(config), classes=10), seed=1)
    model = zoo.build("c3d", config, weights=saved(port.state_dict(), tmp_path), layout="davidea")
    video = clip(config)
    with torch.no_grad():
        logits = model.eval()(video)
        expected_logits, expected_probabilities = port.logits(video), port(video)
    assert logits.shape == (2, 10)
    assert relative_difference(logits, expected_logits) <= TOLERANCE
    assert relative_difference(logits.softmax(dim=1), expected_probabilities) <= TOLERANCE


def test_mmaction2_recognizer_parity(tmp_path: Path) -> None:
    config = small_config()
    upstream = randomised(MMAction2Recognizer(**reference_sizes(config), classes=10), seed=2)
    path = saved(upstream.state_dict(), tmp_path)
    model = zoo.build("c3d", config, weights=path, layout="mmaction2")
    video = clip(config, seed=3)
    with torch.no_grad():
        difference = relative_difference(model.eval()(video), upstream(video))
    assert difference <= TOLERANCE


def test_mmaction2_backbone_loads_as_fc7_features(tmp_path: Path) -> None:
    config = small_config(num_classes=None)
    backbone = randomised(MMAction2Backbone(**reference_sizes(config)), seed=4)
    model = zoo.build(
        "c3d", config, weights=saved(backbone.state_dict(), tmp_path), layout="mmaction2"
    )
    video = clip(config, seed=5)
    with torch.no_grad():
        features = model.eval()(video)
        assert features.shape == (2, config.hidden)
        assert relative_difference(features, backbone(video)) <= TOLERANCE


def test_davidea_weights_without_classifier_give_fc7_features(tmp_path: Path) -> None:
    config = small_config()
    port = randomised(PortC3D(**reference_sizes(config), classes=10), seed=6)
    path = saved(port.state_dict(), tmp_path)
    features = zoo.build("c3d", small_config(num_classes=None), weights=path, layout="davidea")
    video = clip(config, seed=7)
    with torch.no_grad():
        expected = port.relu(port.fc7(port.relu(port.fc6(port.pooled(video).flatten(1)))))
        assert relative_difference(features.eval()(video), expected) <= TOLERANCE


def test_full_size_mmaction2_keys_convert_to_the_zoos() -> None:
    meta = torch.device("meta")
    with meta:
        recognizer = MMAction2Recognizer(FULL_WIDTHS, 8192, 4096, classes=487)
    converted = from_mmaction2(recognizer.state_dict(), C3DConfig())
    assert {key: tuple(value.shape) for key, value in converted.items()} == DAVIDEA_SHAPES
    assert "backbone.conv1a.conv.weight" in recognizer.state_dict()
    assert "cls_head.fc_cls.weight" in recognizer.state_dict()


def test_wrong_layout_is_named(tmp_path: Path) -> None:
    config = small_config()
    upstream = MMAction2Recognizer(**reference_sizes(config), classes=10)
    path = saved(upstream.state_dict(), tmp_path)
    with pytest.raises(zoo.WeightsError, match=r"not in the 'davidea' layout.*conv1\.weight"):
        zoo.build("c3d", config, weights=path, layout="davidea")
    with pytest.raises(ValueError, match="known layouts: davidea, mmaction2, zoo"):
        zoo.build("c3d", config, weights=path, layout="caffe")


def test_missing_and_mis_shaped_keys_are_reported(tmp_path: Path) -> None:
    config = small_config()
    state = PortC3D(**reference_sizes(config), classes=10).state_dict()
    del state["fc8.bias"]
    state["fc7.weight"] = torch.zeros(3, 3)
    with pytest.raises(zoo.WeightsError, match=r"missing keys \[fc8\.bias\].*fc7\.weight"):
        zoo.build("c3d", config, weights=saved(state, tmp_path), layout="davidea")


def test_mmaction2_backbone_needs_num_classes_none() -> None:
    config = small_config()
    backbone = MMAction2Backbone(**reference_sizes(config))
    with pytest.raises(zoo.WeightsError, match=r"num_classes=None"):
        from_mmaction2(backbone.state_dict(), config)


def test_davidea_converter_keeps_the_ports_keys() -> None:
    config = small_config()
    state = PortC3D(**reference_sizes(config), classes=10).state_dict()
    assert from_davidea(state, config).keys() == state.keys()


@pytest.mark.parametrize("shape", [(1, 3, 8, 112, 112), (1, 3, 16, 128, 171), (3, 16, 112, 112)])
def test_wrong_clip_size_is_a_clear_error(shape: tuple[int, ...]) -> None:
    model = empty_model(zoo.default_registry().architecture("c3d"), {})
    expected = r"\(N, 3, 16, 112, 112\).*found " + re.escape(str(shape)) + r".*fc6"
    with pytest.raises(ValueError, match=expected):
        model(torch.empty(shape, device="meta"))


def test_a_clip_too_small_to_pool_is_refused_by_the_config() -> None:
    with pytest.raises(ValidationError, match="at least 16 frames"):
        C3DConfig(frames=8)


def test_card_matches_the_model_and_the_port() -> None:
    card = zoo.card("c3d-sports1m")
    spec = card.input()
    config = C3DConfig(**card.config)
    assert spec.example_shape(1) == (1, config.in_channels, config.frames, config.size, config.size)
    assert (spec.value_range, spec.mean, spec.channel_order) == ((0.0, 255.0), None, "RGB")
    assert card.outputs[0].shape == [config.num_classes] == [len(card.label_names())]
    labels = (files("zoo") / "labels" / "sports1m.txt").read_bytes()
    assert hashlib.sha256(labels).hexdigest() == PORT_LABELS_SHA256
    (weights,) = card.weights
    assert (weights.url, weights.format, weights.layout) == (PORT_WEIGHTS_URL, "pickle", "davidea")
    assert {(m.name, m.value) for m in card.metrics if m.source == "paper"} >= {
        ("clip hit@1", 46.1),
        ("video hit@1", 61.1),
        ("video hit@5", 85.2),
    }
    assert card.parameters == SPORTS1M_PARAMETERS


@pytest.mark.heavy
def test_full_size_card_parity_with_the_port(tmp_path: Path) -> None:
    torch.manual_seed(0)
    port = PortC3D(FULL_WIDTHS, 8192, 4096, classes=487).eval()
    model = zoo.load("c3d-sports1m", weights=saved(port.state_dict(), tmp_path), layout="davidea")
    video = torch.rand(1, 3, 16, 112, 112) * 255
    with torch.no_grad():
        logits = model(video)
        assert logits.shape == (1, 487)
        assert relative_difference(logits, port.logits(video)) <= TOLERANCE
        assert relative_difference(logits.softmax(dim=1), port(video)) <= TOLERANCE
